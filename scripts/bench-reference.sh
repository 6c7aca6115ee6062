#!/usr/bin/env bash
# Times the reference stack (face_recognition 1.3.0 on dlib 20.0.1) on given images, pinned to one
# CPU, and saves its JSON. Use it in the same run as veriface's own benchmark and compare ratios:
# the machine is shared, so absolute times drift from run to run.
#
# usage: scripts/bench-reference.sh OUT.json [reference-pipeline.py arguments ...]
#   per stage:  scripts/bench-reference.sh out.json --model hog --repeat 3 a.jpg b.jpg
#   a pair:     scripts/bench-reference.sh out.json --model cnn --repeat 1 --compare a.jpg b.jpg
#
# Environment: VERIFACE_SHARED_DIR (default ../shared beside the checkout) holds
# tools/reference-pipeline.py; REFERENCE_VENV (default .venv-reference, git-ignored) is created
# with tools/setup-reference.sh when missing; BENCH_CPU (default 1) is the CPU to pin to.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out="$1"
shift
shared="${VERIFACE_SHARED_DIR:-$root/../shared}"
venv="${REFERENCE_VENV:-$root/.venv-reference}"
tools="$shared/tools"
[ -f "$tools/reference-pipeline.py" ] || { echo "bench-reference: $tools/reference-pipeline.py not found; set VERIFACE_SHARED_DIR" >&2; exit 2; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import face_recognition' 2>/dev/null; then
  echo "bench-reference: creating the reference environment in $venv ..." >&2
  "$tools/setup-reference.sh" "$venv" >&2
fi

# One thread everywhere: dlib and numpy may otherwise start a pool whose size
# depends on the machine, which makes numbers incomparable with ours.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c "${BENCH_CPU:-1}")
else
  echo "bench-reference: taskset not found; running unpinned" >&2
fi

mkdir -p "$(dirname "$out")"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
"${pin[@]}" "$venv/bin/python" "$tools/reference-pipeline.py" "$@" >"$tmp"
mv "$tmp" "$out"
cat "$out"
