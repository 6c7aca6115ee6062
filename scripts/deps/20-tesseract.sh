#!/usr/bin/env bash
# Tesseract OCR for veriface-document's MRZ reader, from Debian's packages.
#
# Needed at build time as well as at test time: the `tesseract-sys` and `leptonica-sys` crates link
# the system libraries (found with pkg-config) and generate their bindings with bindgen, which loads
# libclang at build time. So `.ci/run` runs this before clippy, and `scripts/test.sh` runs it again
# (a no-op then).
#
# Installed: libtesseract-dev and libleptonica-dev (headers, .pc files, shared libraries),
# tesseract-ocr-eng (eng.traineddata, the LSTM model the MRZ reader runs with a charset whitelist),
# libclang1-14 and libclang-common-14-dev (libclang.so and clang's builtin headers for bindgen;
# the full libclang-dev would add ~27 MB of static libraries bindgen does not use), pkg-config.
# Idempotent: does nothing when all of it is present.
set -euo pipefail

packages=(libtesseract-dev libleptonica-dev tesseract-ocr-eng libclang1-14 libclang-common-14-dev pkg-config)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "tesseract: ${packages[*]} already installed"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "tesseract: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
