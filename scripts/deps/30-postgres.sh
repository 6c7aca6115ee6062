#!/usr/bin/env bash
# Installs PostgreSQL from Debian. The identity-store tests start their own throwaway cluster on a
# free loopback port (crates/veriface-testkit/src/postgres.rs); the packaged service is not used.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql
