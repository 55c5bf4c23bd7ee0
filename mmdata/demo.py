"""``mmdata demo``: the main job end to end on embedded, generated data.

Today it runs the foundation path: generate a small multimodal sample folder (real PNG + FLAC + UTF-8
text + labels, some modalities missing), shard it with a stratified split, inspect and verify it,
and load batches through a real DataLoader with two workers. Its outputs land in ``OUT``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def run_demo(out: str | Path, *, n: int = 96, workers: int = 2, progress: bool = True) -> dict[str, Any]:
    """Generate -> shard -> inspect -> verify -> load a batch. Returns a summary (also OUT/summary.json).

    Example:
        >>> import tempfile
        >>> run_demo(tempfile.mkdtemp(), n=12, workers=0, progress=False)["verify_ok"]
        True
    """
    from torch.utils.data import DataLoader

    import mmdata
    from mmdata.testing import make_sample_folder

    out = Path(out)
    raw = make_sample_folder(out / "raw", n=n)
    report = mmdata.shard(raw, out / "shards", maxcount=16, split="train=0.7,val=0.15,test=0.15", seed=0,
                          workers=max(1, workers), progress=progress)
    info = mmdata.inspect(out / "shards")
    ver = mmdata.verify(out / "shards")
    ds = mmdata.open_dataset(out / "shards", split="train", shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=8, num_workers=workers, collate_fn=mmdata.collate)
    batches = 0
    seen = 0
    first: dict[str, Any] = {}
    for batch in loader:
        if not first:
            first = {
                "keys": batch.keys,
                "image": list(batch["image"].shape),
                "audio": list(batch["audio"].shape),
                "tokens": list(batch["tokens"].shape),
                "label": batch["label"].tolist(),
                "present": {k: v.tolist() for k, v in batch.present.items()},
            }
        batches += 1
        seen += len(batch)
    summary = {"shard": report, "inspect": info, "verify_ok": ver["ok"], "train_batches": batches,
               "train_samples_read": seen, "first_batch": first}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary
