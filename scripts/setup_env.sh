#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv (idempotent).
# torch==2.13.0 first: it is the CPU build; a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q torch==2.13.0
# dev + the interop extras (Lightning, HF datasets, torchdata, duckdb: tests/interop), torch held at 2.13.0
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e '.[dev,interop]'
