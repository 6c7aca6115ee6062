#!/usr/bin/env bash
# Installs Redis from Debian. The cache tests start their own redis-server on a free loopback port
# with a throwaway directory (crates/veriface-testkit/src/redis.rs); the packaged service is not used.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server
