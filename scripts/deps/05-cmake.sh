#!/usr/bin/env bash
# Installs cmake from Debian: rdkafka's `cmake-build` feature builds the bundled librdkafka with it
# (Debian's librdkafka 2.0.2 fails the version handshake with the tansu broker the tests use).
set -euo pipefail
if command -v cmake >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends cmake
