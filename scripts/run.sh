#!/usr/bin/env bash
# Builds and runs the `veriface` command-line tool in release mode, installing the pinned models
# first. Arguments go to `veriface`; with none, it compares two photos of the same person from the
# shared data set (../shared/data/faces, or $VERIFACE_SHARED_DIR/data/faces).
#
#   scripts/run.sh compare a.jpg b.jpg
#   scripts/run.sh                      # the sample compare
#
# Exit status is veriface's: 0 match, 1 no match, 2 error. Honours CARGO_TARGET_DIR and
# VERIFACE_MODELS_DIR (default ./models).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export VERIFACE_MODELS_DIR="${VERIFACE_MODELS_DIR:-$root/models}"
scripts/install-models.sh "$VERIFACE_MODELS_DIR" >&2

if [ $# -eq 0 ]; then
  faces="${VERIFACE_SHARED_DIR:-$root/../shared}/data/faces/images"
  a="$faces/person02/img53.jpg"
  b="$faces/person02/img56.jpg"
  if [ ! -f "$a" ] || [ ! -f "$b" ]; then
    echo "run.sh: no arguments and no sample photos in $faces; try: scripts/run.sh compare A.jpg B.jpg" >&2
    exit 2
  fi
  set -- compare "$a" "$b"
fi

cargo build --release --quiet -p veriface-cli
exec "${CARGO_TARGET_DIR:-$root/target}/release/veriface" "$@"
