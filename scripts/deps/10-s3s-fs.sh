#!/usr/bin/env bash
# Installs s3s-fs, a small S3-protocol server that keeps objects in a local directory, for the
# integration tests of veriface's S3 blob store (veriface-testkit starts it on a free loopback port
# with a temporary root; see crates/veriface-testkit/src/s3.rs).
#
# Pinned to 0.14.1, the newest release whose rust-version (1.92) the CI toolchain satisfies
# (0.15-0.17 need 1.96). Idempotent: does nothing when that version is already installed.
# Cold install: about 4-6 minutes of compile time on a 2-core machine (see docs/configuration.md).
set -euo pipefail

version="0.14.1"
root="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"

if [ -x "$root/bin/s3s-fs" ] && grep -q "s3s-fs $version" "$root/.crates.toml" 2>/dev/null; then
  exit 0
fi
echo "deps: installing s3s-fs $version into $root (cargo install, a few minutes) ..." >&2
cargo install s3s-fs --version "=$version" --features binary --locked --root "$root" --quiet
