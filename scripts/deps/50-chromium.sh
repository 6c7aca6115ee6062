#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the session pages' end-to-end test
# (crates/veriface-server/tests/e2e.rs), from Debian's packages.
#
# The test starts `chromedriver` on loopback and drives `chromium` through it with Chromium's
# fake camera (--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE.y4m),
# fed from a real test photo. fonts-dejavu-core gives the pages a font to render in screenshots.
# Idempotent: does nothing when all of it is present.
set -euo pipefail

packages=(chromium chromium-driver fonts-dejavu-core)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "chromium: ${packages[*]} already installed"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "chromium: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
