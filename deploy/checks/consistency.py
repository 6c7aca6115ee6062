"""Cross-checks the deployment artefacts against each other and the docs.

Run by scripts/check-deploy.sh after the schema validators, with the Helm
renders it produced:

    python deploy/checks/consistency.py RENDER.yaml[:VALUES.yaml] ...

The schema validators say each file is well-formed; this says they describe
the same system: the same environment variable names everywhere (and each one
documented), the chart rendering the objects the plain manifests hold, probes
on the paths the server serves, selectors that select, and the hardening the
image relies on (non-root, read-only root file system, resources set).
Exits 1 listing every failure; prints one line per check that held.
"""

import os
import re
import sys
from pathlib import Path

import yaml

# VERIFACE_DEPLOY_ROOT points the checks at a copy (check-deploy.sh's negative
# control mutates one to prove they fail).
ROOT = Path(os.environ.get("VERIFACE_DEPLOY_ROOT") or Path(__file__).resolve().parents[2])
K8S = ROOT / "deploy" / "k8s"

failures: list[str] = []
passes = 0


def check(ok: bool, what: str, detail: str = "") -> None:
    global passes
    if ok:
        passes += 1
        print(f"  ok   {what}")
    else:
        failures.append(f"{what}: {detail}" if detail else what)
        print(f"  FAIL {what}: {detail}")


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# --- the set of environment variables: docker-compose.yml's x-veriface-env ---

compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
env_names = set(compose["x-veriface-env"])
docs = (ROOT / "docs" / "configuration.md").read_text() if (ROOT / "docs" / "configuration.md").exists() else ""
undocumented = sorted(n for n in env_names if f"`{n}`" not in docs)
check(not undocumented, "every deployment variable is in docs/configuration.md", f"missing {undocumented}")


def subset(names: set, where: str) -> None:
    unknown = sorted(names - env_names)
    check(not unknown, f"{where} uses only the variables of x-veriface-env", f"unknown {unknown}")


# --- Dockerfile: final stage ---

dockerfile = (ROOT / "Dockerfile").read_text()
# Join continuation lines, drop comments.
lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
instructions = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
stages: list[list[str]] = []
for ins in instructions:
    if ins.upper().startswith("FROM "):
        stages.append([])
    if stages:
        stages[-1].append(ins)
final = stages[-1]
args = {m.group(1): m.group(2) for m in (re.match(r"ARG (\w+)=(\S+)", i) for i in instructions) if m}
base = final[0].split()[1]
base = args.get(base.strip("${}"), base)
check(base.startswith("debian:") and base.endswith("-slim"), "the runtime stage is a slim Debian image", base)
user = [i.split()[1] for i in final if i.upper().startswith("USER ")]
check(bool(user) and user[-1].split(":")[0] not in ("root", "0"), "the image runs as a non-root user", str(user))
check(any(i.upper().startswith("HEALTHCHECK ") for i in final), "the image has a HEALTHCHECK")
docker_env: dict[str, str] = {}
for i in final:
    if i.upper().startswith("ENV "):
        docker_env.update(dict(re.findall(r"(\w+)=(\S+)", i)))
subset(set(docker_env), "Dockerfile ENV")
exposed = [i.split()[1] for i in final if i.upper().startswith("EXPOSE ")]
check(exposed == [docker_env.get("PORT")], "EXPOSE is the image's PORT", f"{exposed} vs {docker_env.get('PORT')}")
secretish = [i for i in instructions if re.match(r"(ARG|ENV) .*(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY)", i, re.I)]
check(not secretish, "no ARG or ENV of the Dockerfile carries a credential", str(secretish))
cmd = [i for i in final if i.upper().startswith(("ENTRYPOINT ", "CMD "))]
check(cmd == ['ENTRYPOINT ["/usr/local/bin/veriface"]', 'CMD ["serve"]'], "the image runs `veriface serve`", str(cmd))

# --- docker-compose.yml ---

services = compose["services"]
for name in ("api", "worker"):
    check(services[name].get("environment") == compose["x-veriface-env"], f"compose {name} takes its environment from x-veriface-env")
for name, svc in services.items():
    for dep in svc.get("depends_on", {}):
        check(dep in services, f"compose {name} depends on a defined service ({dep})")
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        check(src in (compose.get("volumes") or {}), f"compose {name} mounts the named volume {src}", "bind mounts keep state outside compose")
    one_shot = svc.get("restart") == "no"
    if not one_shot and name != "worker":
        check("test" in svc.get("healthcheck", {}), f"compose {name} has a health check")
check(services["worker"].get("healthcheck") == {"disable": True}, "compose worker turns off the image's HTTP health check")
check(services["api"].get("healthcheck", {}).get("test") == ["CMD", "/usr/local/bin/veriface-healthcheck"], "compose api probes with the image's health check")

# --- Kubernetes: plain manifests ---

kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
listed = set(kustomization["resources"])
on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
check(listed == on_disk, "kustomization.yaml lists every manifest", f"listed {sorted(listed)} vs {sorted(on_disk)}")
plain = [d for f in sorted(listed) for d in load_all(K8S / f)]
secret_example = load_all(K8S / "secret.example.yaml")[0]
configmap_text = (K8S / "configmap.yaml").read_text()


def env_keys(objs: list[dict]) -> set:
    keys = set()
    for o in objs:
        if o["kind"] == "ConfigMap":
            keys |= set(o.get("data") or {})
        if o["kind"] == "Secret":
            keys |= set(o.get("stringData") or {}) | set(o.get("data") or {})
    return keys


k8s_env = env_keys(plain + [secret_example])
subset(k8s_env, "deploy/k8s")
# A variable may be left unset in the ConfigMap (S3 endpoint on AWS), but then
# it must appear there as a commented example so operators find it.
missing = sorted(n for n in env_names - k8s_env if not re.search(rf"^\s*#\s*{re.escape(n)}:", configmap_text, re.M))
check(not missing, "deploy/k8s sets or shows every variable", f"missing {missing}")


def component(o: dict) -> str:
    return (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component", "")


def shape(objs: list[dict]) -> set:
    return {(o["kind"], component(o)) for o in objs}


def check_objects(objs: list[dict], where: str, external_secret: bool, external_claim: str = "") -> None:
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    deployments = by_kind.get("Deployment", [])
    for d in deployments:
        dn = d["metadata"]["name"]
        spec = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        sel = d["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), f"{where} {dn}: selector matches its pods")
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{where} {dn}: runs as non-root")
        check(spec.get("automountServiceAccountToken") is False, f"{where} {dn}: mounts no service-account token")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False,
                  f"{where} {dn}/{c['name']}: read-only root, no privilege escalation")
            res = c.get("resources", {})
            check(all(res.get(a, {}).get(r) for a in ("requests", "limits") for r in ("cpu", "memory")),
                  f"{where} {dn}/{c['name']}: cpu and memory requests and limits", str(res))
            check(not c["image"].endswith(":latest") and ":" in c["image"], f"{where} {dn}/{c['name']}: pinned image tag", c["image"])
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    check(("ConfigMap", ref["configMapRef"]["name"]) in names, f"{where} {dn}: its ConfigMap exists")
                if "secretRef" in ref and not external_secret:
                    check(("Secret", ref["secretRef"]["name"]) in names, f"{where} {dn}: its Secret exists")
            ports = {p["name"] for p in c.get("ports", [])}
            if component(d) == "api":
                check(c.get("args") == ["serve"], f"{where} {dn}: runs `veriface serve`")
                port = [p["containerPort"] for p in c.get("ports", []) if p["name"] == "http"]
                env_port = [(o.get("data") or {}).get("PORT") for o in by_kind.get("ConfigMap", [])]
                check(bool(port) and [str(port[0])] == env_port, f"{where} {dn}: container port is the ConfigMap's PORT", f"{port} vs {env_port}")
                ready = c.get("readinessProbe", {}).get("httpGet", {})
                live = c.get("livenessProbe", {}).get("httpGet", {})
                check(ready.get("path") == "/readyz" and ready.get("port") in ports, f"{where} {dn}: readiness probe on /readyz")
                check(live.get("path") == "/healthz" and live.get("port") in ports, f"{where} {dn}: liveness probe on /healthz")
            if component(d) == "worker":
                check(c.get("args") == ["worker"], f"{where} {dn}: runs `veriface worker`")
        for v in spec.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim != external_claim:
                check(("PersistentVolumeClaim", claim) in names, f"{where} {dn}: its claim {claim} exists")
    api_pods = [d["spec"]["template"]["metadata"]["labels"] for d in deployments if component(d) == "api"]
    for o in by_kind.get("Service", []) + by_kind.get("PodDisruptionBudget", []):
        sel = o["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        check(any(all(p.get(k) == v for k, v in sel.items()) for p in api_pods), f"{where} {o['kind']} {o['metadata']['name']} selects the API pods")
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        target = h["spec"]["scaleTargetRef"]
        check(("Deployment", target["name"]) in names, f"{where} HPA scales an existing Deployment")
        api = [d for d in deployments if d["metadata"]["name"] == target["name"]]
        check(bool(api) and "replicas" not in api[0]["spec"], f"{where} HPA-managed Deployment sets no replicas")


check_objects(plain + [secret_example], "deploy/k8s", external_secret=False)

# --- Helm renders: RENDER.yaml[:VALUES.yaml] ---

helm_env: set = set()
for arg in sys.argv[1:]:
    render, _, values = arg.partition(":")
    objs = load_all(Path(render))
    vals = yaml.safe_load(Path(values).read_text()) if values else {}
    where = f"helm[{Path(values).name if values else 'defaults'}]"
    extra = set((vals or {}).get("extraEnv") or {})
    keys = env_keys(objs) - extra
    subset(keys, where)
    helm_env |= keys
    claim = (((vals or {}).get("worker") or {}).get("imagesVolume") or {}).get("existingClaim", "")
    check_objects(objs, where, external_secret=bool((vals or {}).get("existingSecret")), external_claim=claim)
    if values and Path(values).name == "production-values.yaml":
        check(shape(objs) == shape(plain + [secret_example]), f"{where} renders the objects of deploy/k8s",
              f"{sorted(shape(objs))} vs {sorted(shape(plain + [secret_example]))}")
if sys.argv[1:]:
    check(helm_env == env_names, "the Helm renders together set every variable", f"missing {sorted(env_names - helm_env)}")

print(f"consistency: {passes} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
