"""QA round 24 (persona A): set-up checks of the trainer and the ablation runner, and the epoch wording.

D1: a recipe's own ``normalize.image`` (``normalize.audio``) list without a channel op, on a dataset whose
images (clips) decode to mixed channel counts, ended in collate's traceback after the set-up lines
(``mmdata train``, exit 1) and failed every run of ``mmdata ablate`` (exit 1). The index says it before
any epoch: refused at set-up, exit 2, one line naming the recipe key, the counts, sample keys and the fix.

D6: ``mmdata train`` printed ``best epoch 0`` above ``the reported model (best epoch 1 of 1)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.cli.main import main
from mmdata.errors import MMDataError
from mmdata.testing import make_messy_folder
from mmdata.train.config import IndexStats, channel_mix, check_recipe_channels, decoded_channels

NO_TO_RGB = {"seed": 0, "normalize": {"image": [{"op": "resize", "size": 32}]}}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Greyscale, RGB and RGBA images, mono and stereo clips, two image sizes (the tester's dataset)."""
    root = tmp_path_factory.mktemp("mixed")
    make_messy_folder(root / "raw", n=60, sizes=((32, 32), (48, 64)), seconds=(0.3, 1.0))
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False,
                 labels_from_folders=False)
    return root / "ds"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``mmdata ARGS`` in this process: (exit code, stdout and stderr with rich's wrapping undone)."""
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def _index(ds: Path) -> dict[str, list]:
    return pq.read_table(ds / "index.parquet", columns=["key", "image_mode", "audio_channels"]).to_pydict()


def test_the_decoded_channel_counts_come_from_the_index(mixed: Path) -> None:
    st = IndexStats(mixed)
    idx = _index(mixed)
    groups = decoded_channels(st, "image", st.rows_in(["train", "val", "test"], "image"))
    assert set(groups) == {1, 3}
    grey = {idx["key"][i] for i in groups[1]}
    assert grey == {k for k, m in zip(idx["key"], idx["image_mode"]) if m == "L"}  # RGBA decodes to 3, as RGB
    clips = decoded_channels(st, "audio", st.rows_in(["train", "val", "test"], "audio"))
    assert {c: len(r) for c, r in clips.items()} == {c: idx["audio_channels"].count(c) for c in (1, 2)}


def test_train_refuses_an_own_image_list_without_a_channel_op_before_any_epoch(
        mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(NO_TO_RGB))
    code, text = _cli(capsys, "train", str(mixed), "--recipe", str(tmp_path / "r.yaml"), "--epochs", "1",
                      "--out", str(tmp_path / "tr"))
    assert code == 2, text
    assert "Traceback" not in text and "epoch 0" not in text and "cannot collate" not in text
    assert text.startswith("error: normalize.image (resize) has no to_rgb / to_gray"), text
    assert "1 channel: " in text and "3 channels: " in text
    idx = _index(mixed)
    grey = next(k for k, m in zip(idx["key"], idx["image_mode"]) if m == "L")
    assert repr(grey) in text  # sample keys of each count
    assert "add {op: to_rgb} as its first step" in text
    assert not (tmp_path / "tr" / "metrics.json").exists()
    with pytest.raises(MMDataError, match=r"normalize\.image \(resize\) has no to_rgb"):
        mmdata.train.train(mixed, recipe=NO_TO_RGB, epochs=1)


def test_train_refuses_an_own_audio_list_without_to_mono(mixed: Path) -> None:
    rec = {"normalize": {"audio": [{"op": "resample", "rate": 16000}]}}
    with pytest.raises(MMDataError, match=r"normalize\.audio \(resample\) has no to_mono, .*1 channel: .*2 channels: "
                                          r".*add \{op: to_mono\} as its first step"):
        mmdata.train.train(mixed, recipe=rec, modalities=["audio", "text"], epochs=1)


def test_a_list_with_a_channel_op_or_no_list_of_its_own_passes(mixed: Path) -> None:
    st = IndexStats(mixed)
    assert channel_mix(st, "image", ["to_rgb", "resize"]) is None
    assert channel_mix(st, "image", ["to_gray"]) is None
    assert channel_mix(st, "audio", ["to_mono", "resample"]) is None
    check_recipe_channels({"normalize": {"image": [{"op": "to_gray"}, {"op": "resize", "size": 32}]}}, st,
                          ["image", "audio"])
    check_recipe_channels({"image": [{"op": "hflip", "p": 0.5}]}, st, ["image", "audio"])  # the derived steps convert
    check_recipe_channels(NO_TO_RGB, st, ["audio", "text"])  # the model does not read the images


def test_ablate_refuses_it_before_any_run(mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {"dataset": {"path": str(mixed)}, "seeds": 2, "trainer": {"epochs": 1},
           "design": {"mode": "explicit", "baseline": {"normalize": NO_TO_RGB["normalize"]},
                      "arms": {"hflip": {"normalize": NO_TO_RGB["normalize"], "image": [{"op": "hflip", "p": 0.5}]},
                               "grey": {"normalize": {"image": [{"op": "to_gray"}, {"op": "resize", "size": 32}]}}}}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    code, text = _cli(capsys, "ablate", str(tmp_path / "ab.yaml"), "--out", str(tmp_path / "o"), "-j", "1")
    assert code == 2, text
    assert "error: arm 'baseline': its recipe's normalize.image (resize) has no to_rgb / to_gray" in text, text
    assert "'hflip'" in text and "'grey'" not in text
    assert not (tmp_path / "o" / "runs.parquet").exists()
    from mmdata.ablate import run

    with pytest.raises(MMDataError, match=r"arm 'baseline': .*normalize\.image"):
        run(tmp_path / "ab.yaml", tmp_path / "o2", workers=1, progress=False, plots=False)
    assert not (tmp_path / "o2" / "runs.parquet").exists()


def test_an_own_op_declaring_out_channels_counts_as_a_channel_op(mixed: Path) -> None:
    """QA24 pass 2: a plug-in op converting to RGB (it declares out_channels) was refused as "no to_rgb /
    to_gray"; before the check the same recipe trained."""
    import numpy as np

    from mmdata.augment.image import ImageOp
    from mmdata.testing import restored_registry

    with restored_registry():
        class ForceRGB(ImageOp):
            name = "force_rgb_qa24"
            PARAMS: dict = {}
            deterministic = True

            def sample_params(self, rng, sample):  # noqa: ANN001, ANN201
                return {}

            def out_channels(self, channels, params):  # noqa: ANN001, ANN201
                return 3

            def kernel(self, arr, params):  # noqa: ANN001, ANN201
                arr = arr[..., None] if arr.ndim == 2 else arr
                return np.ascontiguousarray(np.repeat(arr, 3, axis=2)[..., :3] if arr.shape[2] == 1 else arr[..., :3])

        rec = {"seed": 0, "normalize": {"image": [{"op": "force_rgb_qa24"}, {"op": "resize", "size": 32}]}}
        check_recipe_channels(rec, IndexStats(mixed), ["image", "audio"])
        mmdata.train.train(mixed, recipe=rec, modalities=["image", "text"], epochs=1, eval_robustness=False, threads=1)


def test_ablate_lists_only_the_arms_refused_for_the_same_reason(mixed: Path, tmp_path: Path) -> None:
    """QA24 pass 2: an arm refused for its audio list was listed as having the baseline's image problem."""
    from mmdata.ablate import run

    cfg = {"dataset": {"path": str(mixed)}, "seeds": 2, "trainer": {"epochs": 1},
           "design": {"mode": "explicit", "baseline": {"normalize": NO_TO_RGB["normalize"]},
                      "arms": {"img": {"normalize": NO_TO_RGB["normalize"], "image": [{"op": "hflip", "p": 0.5}]},
                               "aud": {"normalize": {"audio": [{"op": "resample", "rate": 16000}]}}}}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(MMDataError) as err:
        run(tmp_path / "ab.yaml", tmp_path / "o", workers=1, progress=False, plots=False)
    said = str(err.value)
    assert said.startswith("arm 'baseline': its recipe's normalize.image") and "'img'" in said and "'aud'" not in said, said


def test_train_counts_the_best_epoch_from_one_in_its_summary(mixed: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """D6: the summary said "best epoch 0" and the BatchNorm warning "best epoch 1 of 1" about one epoch."""
    rec = {"seed": 0, "normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 32}]}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(rec))
    code, text = _cli(capsys, "train", str(mixed), "--recipe", str(tmp_path / "r.yaml"), "--epochs", "2", "--threads", "1",
                      "--no-robustness", "--out", str(tmp_path / "t"))
    assert code == 0, text
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())
    best = m["best_epoch"]  # 0-based in metrics.json, as the "epoch N:" progress lines
    assert f"epoch {best}: loss" in text
    assert f"best epoch {best + 1} of 2 (the \"epoch {best}:\" line;" in text, text
    assert f"best epoch {best} (" not in text
