#!/usr/bin/env bash
# Installs openapi-spec-validator (PyPI), which the API tests use to validate /openapi.json against
# the official OpenAPI 3.x schemas. Goes to $VERIFACE_TOOLS_DIR/python (the test adds it to
# PYTHONPATH), so the system Python is left alone. Idempotent: nothing to do when Python can import
# it already. Cold install: under a minute (52 s measured on a loaded 2-core machine; 20 MB of
# wheels, rpds-py's the only binary one).
set -euo pipefail

root="${VERIFACE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/veriface/tools}"
if PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  exit 0
fi
python3 -m pip --version >/dev/null 2>&1 || {
  echo "deps: python3 with pip is needed for openapi-spec-validator" >&2
  exit 1
}
echo "deps: installing openapi-spec-validator into $root/python ..." >&2
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$root/python" 'openapi-spec-validator==0.9.0'
