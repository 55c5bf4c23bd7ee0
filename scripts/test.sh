#!/usr/bin/env bash
# Set up .venv and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "$#" -gt 0 ]; then exec .venv/bin/python -m pytest -n 2 "$@"; fi
# Ctrl-C tests (marker sigint) run after the parallel suite in one plain pytest process. (They once
# failed when this script was launched in the background, where SIGINT starts ignored and every
# child inherits that; tests/conftest.py now gives each test SIGINT as a terminal does.)
.venv/bin/python -m pytest -n 2 -m "not sigint" --durations=15  # the slowest tests, to keep CI time in view
exec .venv/bin/python -m pytest -m sigint
