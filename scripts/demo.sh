#!/usr/bin/env bash
# Set up .venv and run the main job end to end on the embedded default data:
# build avdigits -> shard -> inspect/verify -> leave-one-out augmentation ablation -> report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh --core  # the demo needs no extras (scripts/test.sh adds them)
export NO_ALBUMENTATIONS_UPDATE=1
OUT=${1:-runs/demo}
exec .venv/bin/mmdata demo --out "$OUT"
