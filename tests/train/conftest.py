"""Fixtures shared by the train tests: a small avdigits build and one contrastively pre-trained run (the
cross-modal tests), a messy folder, a two-class dataset."""

from __future__ import annotations

from collections.abc import Iterator

from pathlib import Path
from typing import Any

import pytest


MESSY_SIZES = ((32, 32), (48, 64), (60, 40), (120, 90))


@pytest.fixture
def mmdata_cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``mmdata`` as the console script does (library errors: one line, exit 2): ``argv`` ->
    (exit code, stdout + stderr with rich's line wrapping undone)."""
    from mmdata.cli.main import main

    def run(argv: list[str]) -> tuple[int, str]:
        code = 0
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, " ".join((out.out + out.err).split())

    return run


@pytest.fixture(scope="session")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's messy folder (mixed image sizes and modes, audio rates and channels, 10% unlabelled,
    missing modalities), 60 samples sharded train / val / test = 0.6 / 0.2 / 0.2."""
    import mmdata
    from mmdata.testing import make_messy_folder

    root = tmp_path_factory.mktemp("messy")
    make_messy_folder(root / "raw", n=60, sizes=MESSY_SIZES, seconds=(0.3, 1.5), unlabelled=0.1)
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


@pytest.fixture(scope="session")
def avdigits4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """avdigits with 4 samples per class: the smallest real dataset a training run completes on."""
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("av4") / "av", limit=4, progress=False)


@pytest.fixture(scope="session")
def avdigits40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """avdigits with 40 samples per class (240 train / 80 val / 80 test)."""
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("av40") / "av", limit=40, progress=False)


@pytest.fixture(scope="session")
def pretrained_run(avdigits40: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`late` fusion fine-tuned after 12 epochs of contrastive pre-training (same-class negatives
    excluded: with 24 training samples per class most in-batch "negatives" are the same digit)."""
    import torch

    from mmdata.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pretrained") / "run"
    m = train(avdigits40, fusion="late", epochs=4, seed=0, out=out, batch_size=32, threads=1, eval_robustness=False,
              pretrain="contrastive", pretrain_epochs=12, pretrain_args={"exclude_same_class": True})
    return out, m


@pytest.fixture(scope="module")
def two_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 images of two classes (cat, dog) sharded train / val / test = 0.6 / 0.2 / 0.2: the smallest dataset
    `mmdata train` takes (the `--out` refusal tests)."""
    import mmdata
    from mmdata.testing import make_class_folders

    root = tmp_path_factory.mktemp("two_class")
    make_class_folders(root / "src", per_class=6, classes=("cat", "dog"))
    mmdata.shard(root / "src", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


@pytest.fixture
def restore_fusions() -> Iterator[None]:
    """The fusion registry and loaded plugins as they were: a plugin fusion registered here must not reach other
    tests (``test_train_docstring_names_every_fusion`` compares the registry with train's docstring). Asked for
    before ``monkeypatch``, so its teardown runs last."""
    from mmdata import plugins
    from mmdata.train.fusions import FUSIONS

    fusions, loaded = dict(FUSIONS), dict(plugins._LOADED)
    yield
    FUSIONS.clear()
    FUSIONS.update(fusions)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
