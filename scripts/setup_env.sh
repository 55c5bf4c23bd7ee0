#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv (idempotent).
# torch==2.13.0 first: it is the CPU build; a bare `torch` requirement would pull a multi-GB CUDA build.
# `setup_env.sh --core` (scripts/demo.sh): mmdata and its required dependencies only — what the demo
# needs, ~2 min on a fresh 2-core machine instead of ~5 with the test, interop and Ray extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q torch==2.13.0
# dev (with moto[server] + s3fs: a local S3 server for tests/test_object_store.py) + the interop extras
# (Lightning, HF datasets, torchdata, duckdb: tests/interop) + Ray (--executor ray), torch held at 2.13.0
if [ "${1:-}" = "--core" ]; then
  .venv/bin/python -m pip install -q -c scripts/constraints.txt -e .
else
  .venv/bin/python -m pip install -q -c scripts/constraints.txt -e '.[dev,interop,ray]'
fi
# A CJK font (fonts-wqy-microhei, 1.6 MB) so `mmdata preview` draws Chinese / Japanese / Korean captions.
# Best effort: needs root and apt; without it previews show a visible placeholder and the glyph test skips.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1; } \
    || echo "setup_env: could not install fonts-wqy-microhei (CJK previews will show placeholders)" >&2
fi
