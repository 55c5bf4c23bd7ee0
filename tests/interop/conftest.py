"""Interop tests run the real clients (Lightning, Hugging Face datasets, torchdata, duckdb) offline."""

from __future__ import annotations

import os

# nothing in these tests may reach the Hub; set before `datasets` / `huggingface_hub` are imported
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
