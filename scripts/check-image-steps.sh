#!/usr/bin/env bash
# Replays the Dockerfile's build steps outside Docker and starts the result as
# the image would, so CI proves the container's commands work without a
# Docker engine:
#
#  1. checks that the Dockerfile still holds the exact commands replayed here,
#     and reads the runtime stage's ENV, WORKDIR, EXPOSE, ENTRYPOINT, CMD and
#     HEALTHCHECK from it;
#  2. builds a clean copy of the build context (the files `docker build` would
#     send: git's files minus .dockerignore) and, in it, runs the builder's
#     steps: scripts/install-models.sh with an empty download cache, then the
#     same `cargo build --release --locked` (sharing CARGO_TARGET_DIR with the
#     rest of CI, as the Dockerfile's cache mount does);
#  3. lays out the runtime stage's files under a temporary root (binary, models,
#     health probe, data dir) and checks every shared library the binary needs
#     is in a package the runtime image has;
#  4. starts ENTRYPOINT + CMD with only the image's environment (env -i), as the
#     image's uid when run as root, on the image's port (another free port if
#     that one is taken), then: the HEALTHCHECK command turns healthy, /readyz
#     and / answer, `veriface models check` passes on the baked models, a real
#     compare of two photos matches, the subcommands the deployments run exist,
#     and SIGTERM stops the server cleanly.
#
# usage: scripts/check-image-steps.sh
#   CARGO_TARGET_DIR      where the release build goes (default: ~/.cache/veriface/target)
#   VERIFACE_SHARED_DIR   the shared data set with the photos (default: ../shared beside the checkout)
#   VERIFACE_IMAGE_STEPS_DIR  scratch directory (default: ~/.cache/veriface/image-steps); the
#                         context copy sits at a fixed path there so that warm runs rebuild nothing
set -euo pipefail
# set -e alone exits without a word; say which line stopped the check.
trap 'echo "check-image-steps: stopped by a failing command at line $LINENO" >&2' ERR

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cache="${VERIFACE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;; esac
shared="${VERIFACE_SHARED_DIR:-$root/../shared}"
scratch="${VERIFACE_IMAGE_STEPS_DIR:-$cache/image-steps}"

passed=0
failed=0
ok() { passed=$((passed + 1)); printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; }
die() { fail "$*"; echo "check-image-steps: $passed passed, $failed failed"; exit 1; }
section() { printf '\n--- %s\n' "$*"; }
start=$SECONDS

# --- 1. the Dockerfile's steps ------------------------------------------------

section "Dockerfile steps replayed here"
# The builder's commands, verbatim: if the Dockerfile changes them, change
# them here too (and this check tells you).
models_step='RUN scripts/install-models.sh /out/models'
build_step='cargo build --release --locked -p veriface-cli --bin veriface'
install_step='install -D -m 0755 target/release/veriface /out/veriface'
probe_step='COPY deploy/docker/healthcheck.sh /usr/local/bin/veriface-healthcheck'
for step in "$models_step" "$build_step" "$install_step" "$probe_step"; do
  if grep -qF -- "$step" Dockerfile; then ok "Dockerfile has: $step"; else die "Dockerfile no longer has: $step"; fi
done

# The runtime stage's settings, as shell assignments.
image_env=() image_cmd=() image_healthcheck=() image_workdir="" image_port="" image_user=""
eval "$(python3 - Dockerfile <<'PY'
import json, re, shlex, sys
text = re.sub(r"\\\n\s*", " ", open(sys.argv[1]).read())
ins = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
final = ins[max(i for i, l in enumerate(ins) if l.upper().startswith("FROM ")):]
env, out = {}, {}
for l in final:
    word, _, rest = l.partition(" ")
    word = word.upper()
    if word == "ENV":
        env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    elif word in ("WORKDIR", "EXPOSE", "USER"):
        out[word] = rest.strip()
    elif word in ("ENTRYPOINT", "CMD"):
        out[word] = json.loads(rest)
    elif word == "HEALTHCHECK":
        out[word] = json.loads(rest[rest.index("CMD ") + 4:])
print("image_env=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + ")")
print("image_workdir=" + shlex.quote(out["WORKDIR"]))
print("image_port=" + shlex.quote(out["EXPOSE"]))
print("image_user=" + shlex.quote(out["USER"]))
print("image_cmd=(" + " ".join(shlex.quote(a) for a in out["ENTRYPOINT"] + out["CMD"]) + ")")
print("image_healthcheck=(" + " ".join(shlex.quote(a) for a in out["HEALTHCHECK"]) + ")")
PY
)"
ok "runtime stage: ${image_cmd[*]} as $image_user in $image_workdir, port $image_port, ${#image_env[@]} ENV values"

# --- 2. build in a clean copy of the context ---------------------------------

section "build steps in a clean copy of the build context"
src="$scratch/src"
out="$scratch/out"
rm -rf "$src" "$out" "$scratch/model-cache"
mkdir -p "$src" "$out"
# Files `docker build` sends: git's tracked and untracked-but-not-ignored
# files, minus .dockerignore (last matching pattern wins, `!` re-includes, a
# matching directory takes its contents along). Modification times are kept
# so that cargo's fingerprints carry over between runs.
git ls-files -z --cached --others --exclude-standard | python3 -c '
import os, re, shutil, sys
def rx(p):
    p = p.strip("/")
    out = ""
    i = 0
    while i < len(p):
        if p.startswith("**", i):
            out += ".*"; i += 2
        elif p[i] == "*":
            out += "[^/]*"; i += 1
        elif p[i] == "?":
            out += "[^/]"; i += 1
        else:
            out += re.escape(p[i]); i += 1
    return re.compile(out + "(/.*)?$")
rules = []
for line in open(".dockerignore"):
    line = line.strip()
    if line and not line.startswith("#"):
        neg = line.startswith("!")
        rules.append((neg, rx(line[1:] if neg else line)))
dest = sys.argv[1]
sent = 0
for path in sys.stdin.read().split("\0"):
    if not path or not os.path.lexists(path):
        continue
    excluded = False
    for neg, r in rules:
        if r.match(path):
            excluded = not neg
    if excluded:
        continue
    target = os.path.join(dest, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(path, target, follow_symlinks=False)
    sent += 1
print(sent)
' "$src" >"$scratch/context-count"
ok "context: $(cat "$scratch/context-count") files copied to $src"
for must_not in models target .git docker-compose.yml; do
  if [ -e "$src/$must_not" ]; then fail "the context holds $must_not (.dockerignore should keep it out)"; fi
done

t=$SECONDS
# An empty download cache, as in a fresh builder stage.
if (cd "$src" && VERIFACE_CACHE_DIR="$scratch/model-cache" scripts/install-models.sh "$out/models"); then
  ok "scripts/install-models.sh $out/models ($((SECONDS - t)) s)"
else
  die "scripts/install-models.sh failed in the clean context"
fi
rm -rf "$scratch/model-cache"

t=$SECONDS
# shellcheck disable=SC2086 # the Dockerfile's command, word-split on purpose
if (cd "$src" && $build_step); then
  install -D -m 0755 "$CARGO_TARGET_DIR/release/veriface" "$out/veriface"
  ok "$build_step ($((SECONDS - t)) s, target dir $CARGO_TARGET_DIR)"
else
  die "$build_step failed in the clean context"
fi

# --- 3. the runtime stage's file system ---------------------------------------

section "runtime layout and shared libraries"
# Under /tmp, not the cache: the image's uid must be able to reach it.
img="$(mktemp -d /tmp/veriface-image.XXXXXX)"
chmod 0755 "$img"
trap 'rm -rf "$img"' EXIT
# Each image path under $img, as the runtime stage's COPY and RUN lines make them.
install -D -m 0755 "$out/veriface" "$img/usr/local/bin/veriface"
# From the context copy: COPY fails in Docker when .dockerignore drops a file.
[ -f "$src/deploy/docker/healthcheck.sh" ] || die "deploy/docker/healthcheck.sh is not in the build context"
install -D -m 0755 "$src/deploy/docker/healthcheck.sh" "$img/usr/local/bin/veriface-healthcheck"
mkdir -p "$img/opt/veriface" "$img/var/lib/veriface" "$img/srv/veriface/images"
cp -a "$out/models" "$img/opt/veriface/models"
chmod -R a+rX "$img/opt" "$img/usr"
uid="${image_user%%:*}"
gid="${image_user##*:}"
as_image_user=()
if [ "$(id -u)" -eq 0 ]; then
  chown "$uid:$gid" "$img/var/lib/veriface" "$img/srv/veriface/images"
  as_image_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
fi
ok "image root at $img"

# Packages of debian:bookworm-slim that a Rust binary may link, plus what the
# runtime stage installs with apt and everything those depend on (apt pulls
# the closure in; ca-certificates brings openssl, hence libssl3). A library
# outside this set needs its package added to the runtime stage.
runtime_apt="ca-certificates libtesseract5 tesseract-ocr-eng"
if grep -qF -- "apt-get install -y --no-install-recommends $runtime_apt" Dockerfile; then
  ok "runtime stage installs: $runtime_apt"
else
  fail "the Dockerfile's runtime apt line is no longer: $runtime_apt (update runtime_apt here)"
fi
runtime_packages="libc6 libgcc-s1 libstdc++6 zlib1g libzstd1 liblzma5 libbz2-1.0 libssl3"
if command -v apt-cache >/dev/null; then
  # shellcheck disable=SC2086
  runtime_packages+=" $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $runtime_apt 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u | tr '\n' ' ' || true)"
fi
if command -v dpkg >/dev/null && command -v ldd >/dev/null; then
  missing=()
  while read -r lib; do
    # ldd prints /lib/... paths; on a merged-/usr system dpkg knows the
    # file as /usr/lib/..., and a soname is a link to the real file.
    pkg=""
    for cand in "$lib" "/usr$lib" "$(readlink -f "$lib")"; do
      pkg="$(dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1 || true)"
      [ -n "$pkg" ] && break
    done
    case " $runtime_packages " in *" ${pkg:-none} "*) ;; *) missing+=("$lib (${pkg:-no package})") ;; esac
  done < <(ldd "$img/usr/local/bin/veriface" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "every shared library of the binary is in the runtime image ($(ldd "$img/usr/local/bin/veriface" | wc -l) entries)"
  else
    fail "libraries the runtime image lacks: ${missing[*]}"
  fi
else
  fail "ldd and dpkg are needed to check the binary's libraries"
fi

# The image's ENV with every absolute path moved under $img.
run_env=(PATH="$img/usr/local/bin:/usr/bin:/bin" HOME="$img/var/lib/veriface")
port="$image_port"
for kv in "${image_env[@]}"; do
  k="${kv%%=*}"
  v="${kv#*=}"
  case "$v" in /*) v="$img$v" ;; esac
  [ "$k" = PORT ] && port="$v"
  run_env+=("$k=$v")
done
if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('0.0.0.0', int(sys.argv[1])))" "$port" 2>/dev/null; then
  busy="$port"
  port="$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
  echo "  note: port $busy is taken on this machine; using $port"
fi
run_env+=("PORT=$port")
# exec all the way down, so that a background job's pid is the program's.
image_exec() { (cd "$img$image_workdir" && exec env -i "${run_env[@]}" "${as_image_user[@]}" "$@"); }

# --- 4. run it as the image would ---------------------------------------------

section "the image's commands"
# Each subcommand a deployment runs must exist (docker-compose.yml, deploy/k8s, the chart).
for sub in serve worker models; do
  if image_exec "$img/usr/local/bin/veriface" "$sub" --help >/dev/null 2>&1; then
    ok "veriface $sub --help"
  else
    fail "veriface $sub does not exist in this build (docker-compose.yml and deploy/ run it)"
  fi
done
if image_exec "$img/usr/local/bin/veriface" models check >/dev/null; then
  ok "veriface models check: the baked models match models.sha256"
else
  fail "veriface models check failed on the installed models"
fi
photos="$shared/data/faces/images/person02"
if [ -f "$photos/img53.jpg" ]; then
  # Copied in: the checkout may sit where the image's uid cannot read.
  install -D -m 0644 "$photos/img53.jpg" "$img/photos/a.jpg"
  install -D -m 0644 "$photos/img56.jpg" "$img/photos/b.jpg"
  chmod 0755 "$img/photos"
  t=$SECONDS
  if cmp_json="$(image_exec "$img/usr/local/bin/veriface" compare "$img/photos/a.jpg" "$img/photos/b.jpg")" &&
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["match"] and abs(d["distance"] - 0.3636) < 1e-3, d["distance"]' "$cmp_json"; then
    ok "veriface compare of two photos of one person matches, distance 0.3636 ($((SECONDS - t)) s)"
  else
    fail "veriface compare with the baked models did not give the known match"
  fi
else
  fail "the shared photos are missing at $shared (set VERIFACE_SHARED_DIR)"
fi

log="$scratch/serve.log"
probe=("${image_healthcheck[@]}")
probe[0]="$img${probe[0]}"
t=$SECONDS
# The image's command, its first word moved under $img. Spelled out rather
# than through image_exec: a function run in the background is a bash process
# of its own, and $! must be the server's pid for SIGTERM to reach it.
(cd "$img$image_workdir" && exec env -i "${run_env[@]}" "${as_image_user[@]}" \
  "$img${image_cmd[0]}" "${image_cmd[@]:1}") >"$log" 2>&1 &
server=$!
stop_server() { kill "$server" 2>/dev/null || true; }
trap 'stop_server; rm -rf "$img"' EXIT

healthy=""
for _ in $(seq 1 120); do
  if image_exec "${probe[@]}"; then healthy=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
if [ -n "$healthy" ]; then
  ok "${image_cmd[*]}: the HEALTHCHECK command passes (GET /healthz on port $port, $((SECONDS - t)) s after start)"
  for path in /readyz /; do
    if image_exec "${probe[@]}" "$path"; then ok "GET $path answers 200"; else fail "GET $path does not answer 200"; fi
  done
  if python3 -c 'import json, sys, urllib.request as u; assert json.load(u.urlopen(sys.argv[1], timeout=5))["success"] is True' "http://127.0.0.1:$port/" 2>/dev/null; then
    ok "GET / is seed 004's {\"success\": true, ...}"
  else
    fail "GET / is not seed 004's {\"success\": true, ...}"
  fi
  kill -TERM "$server"
  stopped=""
  for _ in $(seq 1 40); do
    kill -0 "$server" 2>/dev/null || { stopped=1; break; }
    sleep 0.25
  done
  if [ -n "$stopped" ] && wait "$server"; then
    ok "SIGTERM stops the server cleanly (exit 0)"
  else
    fail "the server did not exit 0 within 10 s of SIGTERM"
  fi
  if image_exec "${probe[@]}"; then
    fail "the HEALTHCHECK command still passes with the server stopped"
  else
    ok "the HEALTHCHECK command fails once the server is gone"
  fi
else
  fail "${image_cmd[*]} never turned healthy; its output:"
  sed 's/^/       /' "$log" | tail -30
fi
stop_server

echo
echo "check-image-steps: $passed passed, $failed failed ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ]
