"""Mid-epoch resume of a balanced loader: ``balance: over`` repeats a sample as ``<key>#r<i>``, and a batch
boundary can fall between its copies (and, since QA42, between the shuffled rows of a block). QA: the state skipped the copies still to come (27 samples
remained, 26 came; every later batch shifted). The state now says how many copies of the sample at each
reader's position were handed out, and a resumed loader yields exactly the rest — at every resume point,
with 0 and 2 DataLoader workers, with the random sections in the workers or on the device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment import balance
from mmdata.augment.balance import Balanced, BalancePlan
from mmdata.testing import make_messy_folder
from mmdata.types import Sample

OVER = {"by": "label", "mode": "over"}
NORMALIZE = {"image": [{"op": "to_rgb"}], "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000},
                                                    {"op": "pad_trim", "seconds": 0.3}]}
# exact ops: the resumed batches must match bit for bit, also when the kernels run batched on the device
RECIPE = {"normalize": NORMALIZE, "image": [{"op": "hflip", "p": 0.5}], "audio": [{"op": "gain", "p": 0.5}]}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("balance-resume")
    make_messy_folder(root / "raw", n=24, seed=0, sizes=((16, 16),), seconds=(0.2, 0.4))
    mmdata.shard(root / "raw", root / "ds", maxcount=6, progress=False)
    return root / "ds"


def _loader(ds: Path, **kw: object) -> mmdata.Loader:
    return mmdata.loader(ds, 2, recipe=RECIPE, seed=0, balance=OVER, **kw)  # type: ignore[arg-type]


def _same(a: mmdata.Batch, b: mmdata.Batch) -> bool:
    if a.keys != b.keys or set(a.data) != set(b.data):
        return False
    return all(torch.equal(x, b.data[f]) if isinstance(x, torch.Tensor) else x == b.data[f] for f, x in a.data.items())


def _pass_with_states(loader: mmdata.Loader) -> tuple[list[mmdata.Batch], list[dict]]:
    """One epoch's batches, and the loader's state after each of them (what a checkpoint would save)."""
    batches, states = [], []
    for b in loader:
        batches.append(b)
        states.append(loader.state_dict())
    return batches, states


@pytest.mark.parametrize(("num_workers", "augment_on"), [(0, "workers"), (2, "workers"), (0, "device"), (2, "device")])
def test_over_resumes_exactly_at_every_batch(messy: Path, num_workers: int, augment_on: str) -> None:
    full, states = _pass_with_states(_loader(messy, num_workers=num_workers, augment_on=augment_on))
    keys = [k for b in full for k in b.keys]
    assert any("#r" in k for k in keys)  # the fixture's classes are unequal: over repeats samples
    split = [s for s in states[:-1] if s["copies"]]
    assert split, "no batch boundary between a sample's copies: the case under test does not occur"
    for k, state in enumerate(states[:-1], start=1):
        resumed = _loader(messy, num_workers=num_workers, augment_on=augment_on)
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert [b.keys for b in rest] == [b.keys for b in full[k:]], f"resume after {k} batches, state {state}"
        assert all(_same(a, b) for a, b in zip(rest, full[k:])), f"resume after {k} batches: other contents"


@pytest.mark.parametrize("spread", [3, 256])
def test_a_block_split_state_points_at_the_block_and_the_next_epoch_is_whole(messy: Path, spread: int,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows of a block with repeats come shuffled (QA42 longtail F2): a state between two of them keeps
    the reader at the block's first position and counts the rows handed out; the resume yields the rest."""
    monkeypatch.setattr(balance, "SPREAD", spread)
    full, states = _pass_with_states(_loader(messy))
    for k, state in enumerate(states[:-1], start=1):
        resumed = _loader(messy)
        resumed.load_state_dict(state)
        assert [b.keys for b in resumed] == [b.keys for b in full[k:]], f"resume after {k} batches, state {state}"
    k, state = next((k, s) for k, s in enumerate(states[:-1], start=1) if s["copies"])
    resumed = _loader(messy)
    resumed.load_state_dict(state)
    list(resumed)
    # the skip of rows is for the resumed pass only: the next epoch is the same as a fresh loader's
    fresh = _loader(messy)
    fresh.set_epoch(1)
    assert [b.keys for b in resumed] == [b.keys for b in fresh]


def test_states_without_copies_still_load(messy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """States without ``copies`` (saved before it existed, or where no block was cut): exact where no
    block was cut; else the resume re-reads that block whole — rows repeat, none is lost."""
    monkeypatch.setattr(balance, "SPREAD", 4)  # blocks of 4 positions: states at a block's end occur
    full, states = _pass_with_states(_loader(messy))
    old = [{k: v for k, v in s.items() if k != "copies"} for s in states[:-1]]
    whole = next(k for k, s in enumerate(states[:-1], start=1) if not s["copies"])
    resumed = _loader(messy)
    resumed.load_state_dict(old[whole - 1])
    assert [b.keys for b in resumed] == [b.keys for b in full[whole:]]
    k = next(k for k, s in enumerate(states[:-1], start=1) if s["copies"])
    ((reader, done),) = states[k - 1]["copies"].items()
    resumed = _loader(messy)
    resumed.load_state_dict(old[k - 1])
    got = [key for b in resumed for key in b.keys]
    rest = [key for b in full[k:] for key in b.keys]
    assert len(got) == len(rest) + done and sorted(set(got)) == sorted(set(got) | set(rest))


def test_balanced_yields_the_remaining_rows_once() -> None:
    plan = BalancePlan({"a": "0", "b": "0", "c": "1"}, OVER, 0)
    src = [Sample(k, {}, None, {"reader": 0, "position": i}) for i, k in enumerate("abc")]
    out = list(Balanced(src, plan))
    assert sorted(s.key for s in out) == ["a", "b", "c", "c#r1"]
    # the loader's cursor: the block's start and the rows before, its end on the last row
    assert [(s.meta["position"], s.meta["repeat"], s.meta["copies"]) for s in out] == [(0, 0, 4), (0, 1, 4), (0, 2, 4), (2, 3, 4)]
    assert sorted((s.key, s.meta["copy"], s.meta["sample_copies"]) for s in out) == [
        ("a", 0, 1), ("b", 0, 1), ("c", 0, 2), ("c#r1", 1, 2)]
    # resumed on the block at 0 with 3 rows out: another reader's block at that position is whole, and so
    # is the same reader's next block there (a later pass's)
    other = [Sample(k, {}, None, {"reader": 1, "position": i}) for i, k in enumerate("abc")]
    resumed = [s.key for s in Balanced([*src, *other, *src], plan, resume={0: (0, 3)})]
    assert resumed == [out[3].key] + [s.key for s in out] * 2


def test_balanced_without_repeats_keeps_the_order_and_positions() -> None:
    """``under`` (drops only): the reader's order as it was, each row its sample's own position."""
    plan = BalancePlan({"a": "0", "b": "0", "c": "1"}, {"by": "label", "mode": "under", "seed": 3}, 0)
    src = [Sample(k, {}, None, {"reader": 0, "position": i}) for i, k in enumerate("abc")]
    out = list(Balanced(src, plan))
    assert [s.key for s in out] == [s.key for s in src if plan.repeats(s.key, 0)]
    assert all(s.meta["position"] == "abc".index(s.key) and s.meta["copies"] == 1 for s in out)


@pytest.mark.slow
def test_lightning_resume_with_balance_over_is_exact(messy: Path, tmp_path: Path) -> None:
    """QA: a DataModule with ``balance: over`` and 2 workers, resumed with ``fit(ckpt_path=...)`` from
    checkpoints every 4 steps, trained on other batches than the uninterrupted run from most of them."""
    pl = pytest.importorskip("lightning.pytorch")
    from mmdata.lightning import DataModule

    class Keys(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)
            self.seen: list[list[str]] = []

        def training_step(self, batch: mmdata.Batch, batch_idx: int) -> torch.Tensor:
            self.seen.append(list(batch.keys))
            return self.lin(torch.ones(len(batch), 1)).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    def fit(root: Path, ckpt: Path | None = None, callbacks: list | None = None) -> list[list[str]]:
        model = Keys()
        trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=bool(callbacks),
                             callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0, default_root_dir=root)
        dm = DataModule(messy, batch_size=4, recipe=RECIPE, num_workers=2, balance=OVER, val_split=None, test_split=None)
        trainer.fit(model, dm, ckpt_path=ckpt)
        return model.seen

    ckpt_dir = tmp_path / "ckpt"
    cb = pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=4, save_top_k=-1, filename="{epoch}-{step}")
    steps = fit(tmp_path / "a", callbacks=[cb])
    ckpts = sorted((int(c.stem.split("step=")[1]), c) for c in ckpt_dir.glob("*.ckpt"))
    mid = [(step, c) for step, c in ckpts if step < len(steps)]
    states = [torch.load(c, weights_only=False)["DataModule"]["train"] for _, c in mid]
    assert any(s["copies"] for s in states), "no checkpoint between a sample's copies: the case does not occur"
    for (step, ckpt), state in zip(mid, states):
        assert fit(tmp_path / f"b{step}", ckpt) == steps[step:], f"resume from step {step}, state {state}"
