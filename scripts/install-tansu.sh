#!/usr/bin/env bash
# Installs tansu, a Kafka-protocol broker from crates.io, that the worker's integration tests start
# on loopback. Its default build enables no storage engine, so it is built with libsql and started
# with a `sqlite://` storage URL. Cold build: about 10 minutes on 2 cores.
set -euo pipefail
tools="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"
if [ -x "$tools/bin/tansu" ]; then
  exit 0
fi
cargo install tansu --features libsql --locked --root "$tools"
