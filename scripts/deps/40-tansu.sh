#!/usr/bin/env bash
# Installs tansu, a Kafka-protocol broker from crates.io, that the worker's integration tests start
# on loopback (crates/veriface-testkit/src/kafka.rs). Its default build enables no storage engine,
# so it is built with libsql and started with a `sqlite://` storage URL.
#
# Pinned to 0.6.0, the version the worker tests were run against. Idempotent: does nothing when
# that version is already installed. Cold install: about 10 minutes of compile time on 2 cores.
set -euo pipefail

version="0.6.0"
root="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"

if [ -x "$root/bin/tansu" ] && grep -q "tansu $version" "$root/.crates.toml" 2>/dev/null; then
  exit 0
fi
echo "deps: installing tansu $version into $root (cargo install, about 10 minutes) ..." >&2
cargo install tansu --version "=$version" --features libsql --locked --root "$root" --quiet
