#!/usr/bin/env bash
# Set up .venv and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python -m pytest -n 2 "$@"
