#!/usr/bin/env bash
# Builds and runs `veriface` in release mode, installing the pinned models first. With no arguments
# it starts the HTTP service on its embedded defaults (`veriface serve`: http://127.0.0.1:5000,
# uploads in ./data, no other service needed; see docs/configuration.md); with arguments they go
# to `veriface`.
#
#   scripts/run.sh                              # the HTTP service (Ctrl-C stops it gracefully)
#   PORT=8080 VERIFACE_BIND=0.0.0.0 scripts/run.sh
#   scripts/run.sh serve --workers 2 --queue 8
#   scripts/run.sh compare a.jpg b.jpg          # the command-line tool
#
# Exit status is veriface's: for compare 0 match, 1 no match, 2 error. Honours CARGO_TARGET_DIR and
# VERIFACE_MODELS_DIR (default ./models).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export VERIFACE_MODELS_DIR="${VERIFACE_MODELS_DIR:-$root/models}"
scripts/install-models.sh "$VERIFACE_MODELS_DIR" >&2
# Build dependencies from Debian (idempotent): cmake for rdkafka's bundled librdkafka, Tesseract
# and libclang for veriface-document's bindings. The test servers in scripts/deps/ are not needed.
bash scripts/deps/05-cmake.sh >&2
bash scripts/deps/20-tesseract.sh >&2

if [ $# -eq 0 ]; then
  set -- serve
fi

cargo build --release --quiet -p veriface-cli
exec "${CARGO_TARGET_DIR:-$root/target}/release/veriface" "$@"
