"""QA35 review #5b: the warning for runs of another thread count read "(changed: --threads) — --threads 2 -> 1: rerun
with --threads 2 to re-analyse them —; they are kept there" (a dangling "—;"). A real fold trained with
``--threads 2`` by a named custom trainer, rerun with ``--threads 1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdata.ablate import run


def quick_train(data: Any, *, seed: int, **kw: Any) -> dict[str, Any]:
    return {"test": {"accuracy": 0.5 + 0.01 * seed}}


def test_the_threads_warning_has_no_dangling_dash(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "seeds": 3, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    out = tmp_path / "out"
    run(cfg, out, train_fn=quick_train, workers=1, threads=2, progress=False, plots=False, on_warning=lambda w: None)
    said: list[str] = []
    run(cfg, out, train_fn=quick_train, workers=1, threads=1, progress=False, plots=False, on_warning=said.append)
    stale = [w for w in said if "come from another configuration" in w]
    assert stale, said
    assert ("(changed: --threads); --threads 2 -> 1: rerun with --threads 2 to re-analyse them; they are kept there"
            in stale[0]), stale[0]
    assert "—;" not in stale[0] and " — --threads" not in stale[0]
