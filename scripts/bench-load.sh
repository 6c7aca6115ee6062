#!/usr/bin/env bash
# Load benchmark: drives POST /compare (the seed-004 JSON form, two real ~1 MP photos as base64
# data URIs) with oha at several concurrencies, against veriface (release build) and, in the same
# run on the same machine, the reference Flask + gunicorn server with face_recognition
# (../shared/tools/reference_server.py, `gunicorn -w <cores>`). Prints a Markdown table and
# writes the raw oha JSON under OUT_DIR.
#
# usage: scripts/bench-load.sh [OUT_DIR]        (default target/bench-load)
# Environment: BENCH_SECONDS per concurrency level (default 60), BENCH_CONCURRENCY (default
# "1 4 16"), BENCH_TARGETS (default "veriface reference"), VERIFACE_SHARED_DIR, REFERENCE_VENV
# (default .venv-reference), REF_MODEL (hog), VERIFACE_WORKERS (inference pool size, default cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-$root/target/bench-load}"
mkdir -p "$out"
shared="${VERIFACE_SHARED_DIR:-$root/../shared}"
venv="${REFERENCE_VENV:-$root/.venv-reference}"
seconds="${BENCH_SECONDS:-60}"
levels="${BENCH_CONCURRENCY:-1 4 16}"
targets="${BENCH_TARGETS:-veriface reference}"
cores="$(nproc)"
export VERIFACE_TOOLS_DIR="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"
export PATH="$VERIFACE_TOOLS_DIR/bin:$PATH"

command -v oha >/dev/null || cargo install oha --locked --root "$VERIFACE_TOOLS_DIR"
scripts/install-models.sh >/dev/null
if [[ " $targets " == *" reference "* ]]; then
  if [ ! -x "$venv/bin/gunicorn" ] || ! "$venv/bin/python" -c 'import face_recognition' 2>/dev/null; then
    "$shared/tools/setup-reference.sh" "$venv" >&2
  fi
fi

# The request body: the same pair docs/benchmarks.md uses for the end-to-end compare.
body="$out/body.json"
python3 - "$shared/data/faces/images/person02/img53.jpg" "$shared/data/faces/images/person02/img56.jpg" >"$body" <<'PY'
import base64, json, sys
uri = lambda p: "data:image/jpeg;base64," + base64.b64encode(open(p, "rb").read()).decode()
print(json.dumps({"passport": uri(sys.argv[1]), "face": uri(sys.argv[2])}))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "bench-load: server on port $1 did not come up" >&2
  return 1
}

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

start_veriface() {
  cargo build --release -q -p veriface-cli
  local bin="${CARGO_TARGET_DIR:-$root/target}/release/veriface"
  VERIFACE_DATA_DIR="$out/data" PORT="$1" VERIFACE_LOG=warn "$bin" serve >"$out/veriface.log" 2>&1 &
  pid=$!
}
start_reference() {
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 REF_MODEL="${REF_MODEL:-hog}" \
    "$venv/bin/gunicorn" -w "$cores" -b "127.0.0.1:$1" --timeout 600 \
    --chdir "$shared/tools" reference_server:app >"$out/reference.log" 2>&1 &
  pid=$!
}

printf '| server | concurrency | requests | ok | 503 | errors | cut at the end | throughput (ok/s) | p50 ok (s) | p99 ok (s) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for target in $targets; do
  port="$(free_port)"
  "start_$target" "$port"
  wait_up "$port"
  # One warm-up request: model loading and page faults are not what we measure.
  curl -fsS -H 'content-type: application/json' --data-binary "@$body" "http://127.0.0.1:$port/compare" >/dev/null
  for c in $levels; do
    json="$out/$target-c$c.json"
    oha --no-tui --output-format json --stats-success-breakdown -z "${seconds}s" -c "$c" -m POST \
      -H 'content-type: application/json' -D "$body" -t 600s \
      "http://127.0.0.1:$port/compare" >"$json"
    python3 - "$target" "$c" "$json" <<'PY'
import json, sys
target, c, path = sys.argv[1:4]
r = json.load(open(path))
codes = {int(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
ok = codes.get(200, 0); busy = codes.get(503, 0)
errors = r.get("errorDistribution", {})
# oha cancels the requests still in flight when the duration ends: not a
# server error, reported apart.
cut = errors.get("aborted due to deadline", 0)
n = sum(codes.values()) + sum(errors.values())
other = n - ok - busy - cut
# Latency of the successful requests only: a shed 503 answers in
# milliseconds and would hide the real wait.
pct = r.get("latencyPercentilesSuccessful") or r.get("latencyPercentiles", {})
ok_rps = ok / r["summary"]["total"] if r["summary"]["total"] else 0
print(f"| {target} | {c} | {n} | {ok} | {busy} | {other} | {cut} | {ok_rps:.2f} | {pct.get('p50', float('nan')):.2f} | {pct.get('p99', float('nan')):.2f} |")
PY
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
