"""QA round 23, the notebook (Python API) user: a readable ``repr(recipe)`` (D3), ``shard()``'s data warnings
as Python warnings (D5), train / logmel under ``torch.set_default_dtype(torch.float64)`` (D6), and a clear
error for a ``src`` that is none of the kinds ``shard()`` takes (D7)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import SourceError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def float64_default() -> Iterator[None]:
    """A notebook's first cell: ``torch.set_default_dtype(torch.float64)`` (restored after the test)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


# -- D3: repr(recipe) ---------------------------------------------------------------------------------

def test_recipe_repr_is_one_readable_line() -> None:
    r = mmdata.load_recipe(ROOT / "recipes" / "avdigits.yaml")
    assert repr(r) == str(r) == (
        "Recipe(seed=0, keying='identity'; image: random_crop p=0.7, rotate p=0.5, cutout p=0.3; "
        "audio: noise p=0.5, time_mask p=0.3, gain p=0.5; text: token_mask p=0.3, typo p=0.3; "
        "sample: modality_dropout p=0.2)")


def test_recipe_repr_normalize_composites_targets_and_empty() -> None:
    r = mmdata.load_recipe({
        "seed": 3, "keying": "position", "targets": {"depth.png": "mask"},
        "normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 16}],
                      "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 8000}, {"op": "pad_trim", "seconds": 1.0}]},
        "image": [{"op": "one_of", "p": 0.5, "ops": [{"op": "hflip"}, {"op": "rotate"}]}],
        "text": [{"op": "token_mask", "p": 1.0}],
    })
    assert repr(r) == ("Recipe(seed=3, keying='position'; image: one_of(hflip, rotate) p=0.5; text: token_mask p=1; "
                       "normalize: image[2], audio[3]; targets: depth.png)")
    assert repr(mmdata.load_recipe({})) == "Recipe(seed=0, keying='identity'; no ops)"


def test_recipe_repr_long_recipe_is_cut_with_a_count() -> None:
    r = mmdata.load_recipe({"image": [{"op": "hflip", "p": 0.5}] * 60, "text": [{"op": "token_mask"}] * 30})
    text = repr(r)
    assert "\n" not in text and len(text) < 400, text
    assert text.startswith("Recipe(seed=0, keying='identity'; image: hflip p=0.5, hflip p=0.5")
    shown = text.count("hflip") + text.count("token_mask")
    assert text.endswith(f"; +{90 - shown} more ops)"), text


# -- D7: shard(src) of an unsupported kind ------------------------------------------------------------------

def test_shard_names_src_kinds_and_hints_root(tmp_path: Path) -> None:
    from mmdata.testing import make_messy_folder

    m = make_messy_folder(tmp_path / "raw", n=6)
    with pytest.raises(SourceError) as info:
        mmdata.shard(m, tmp_path / "ds", progress=False)
    msg = str(info.value)
    assert msg.startswith("src: expected a folder"), msg
    for word in ("manifest", "URL", "Hugging Face", "got MessyFolder", "pass its .root"):
        assert word in msg, msg
    assert not (tmp_path / "ds").exists()  # refused before anything is made


@pytest.mark.parametrize("src, got", [([Path("a"), Path("b")], "got list"), (b"/data/raw", "got bytes"), (None, "got NoneType"),
                                      (42, "got int")])
def test_shard_refuses_other_src_objects(tmp_path: Path, src: object, got: str) -> None:
    with pytest.raises(SourceError, match=f"^src: expected .*{got}"):
        mmdata.shard(src, tmp_path / "ds", progress=False)


def test_shard_still_takes_pathlike(tmp_path: Path) -> None:
    import os

    from mmdata.testing import make_sample_folder

    class Where(os.PathLike):  # a PathLike that is not a pathlib.Path
        def __init__(self, p: Path) -> None:
            self.p = p

        def __fspath__(self) -> str:
            return str(self.p)

    raw = make_sample_folder(tmp_path / "raw", n=3)
    assert mmdata.shard(Where(raw), tmp_path / "ds", progress=False)["samples"] == 3


# -- D5: shard()'s data warnings are Python warnings too -----------------------------------------------------

def test_shard_warns_each_data_warning(tmp_path: Path) -> None:
    from mmdata.shards.writer import ShardWarning
    from mmdata.testing import make_messy_folder

    src = make_messy_folder(tmp_path / "raw").root
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        rep = mmdata.shard(src, tmp_path / "ds", split="train=0.5,val=0.25,test=0.25", progress=False)
    assert rep["warnings"] and any("have no label" in w for w in rep["warnings"]), rep["warnings"]
    ours = [w for w in got if issubclass(w.category, ShardWarning)]
    from mmdata.shards.writer import python_keywords  # each report warning, with the keywords it cites

    assert [str(w.message) for w in ours] == [w + python_keywords(w) for w in rep["warnings"]]
    assert issubclass(ShardWarning, UserWarning)
    assert all(w.filename == __file__ for w in ours), [w.filename for w in ours]  # points at the caller's line


def test_shard_cli_prints_each_warning_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main
    from mmdata.testing import make_messy_folder

    src = make_messy_folder(tmp_path / "raw").root
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        try:
            main(["shard", str(src), str(tmp_path / "ds"), "--split", "train=0.5,val=0.25,test=0.25"])
        except SystemExit as exc:
            assert not exc.code
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("5 of 60 samples have no label") == 1, err
    from mmdata.shards.writer import ShardWarning

    assert not [w for w in got if issubclass(w.category, ShardWarning)]


def test_writer_advice_names_the_python_keyword() -> None:
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import assign_splits

    recs = [Record(f"k{i}", f"k{i}", {"txt": b"x"}, label=0) for i in range(4)]
    recs[0].split = "val"  # a manifest's split column gave one sample its split
    (msg,) = assign_splits(recs, None, seed=0)
    assert "Pass --split (split=) to split the samples without one" in msg, msg


# -- D6: torch's default dtype float64 -----------------------------------------------------------------------

def test_logmel_and_noise_ignore_the_default_dtype(float64_default: None) -> None:
    import numpy as np

    from mmdata.augment.audio import Noise, logmel
    from mmdata.augment.image import GaussianNoise

    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    got = logmel(x, 16000)
    assert got.dtype == torch.float32
    noisy = Noise._noise_for(x, 20.0, 7)
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    op = GaussianNoise()
    torch.set_default_dtype(torch.float32)
    assert torch.equal(got, logmel(x, 16000))  # the same features as under float32
    assert torch.equal(noisy, Noise._noise_for(x, 20.0, 7))
    want_img = op.kernel(img, {"std": 0.1, "seed": 3})
    torch.set_default_dtype(torch.float64)
    assert np.array_equal(op.kernel(img, {"std": 0.1, "seed": 3}), want_img)
    assert logmel(x.double(), 16000).dtype == torch.float64  # float64 audio: float64 features
    assert Noise._noise_for(x.double(), 20.0, 7).dtype == torch.float64


@pytest.mark.slow
def test_train_under_float64_default_gives_float32_metrics(tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder
    from mmdata.train import train

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=24), tmp_path / "ds", split="train=0.5,val=0.25,test=0.25",
                 progress=False)
    kw = dict(epochs=1, seed=0, eval_robustness=False, batch_size=4, recipe=ROOT / "recipes" / "avdigits.yaml")
    want = train(tmp_path / "ds", out=tmp_path / "r32", **kw)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = train(tmp_path / "ds", out=tmp_path / "r64", **kw)
        assert torch.get_default_dtype() == torch.float64  # the caller's setting is left as it was
    finally:
        torch.set_default_dtype(before)
    for key in ("val", "test", "history", "per_class", "correct_on_test"):
        assert got[key] == want[key], key


@pytest.mark.slow
def test_multilabel_targets_and_contrastive_heads_ignore_the_default_dtype(tmp_path: Path) -> None:
    """A known limit of the twenty-third round, tried: a multi-label target's multi-hot rows and the
    contrastive projection heads were built in the caller's default dtype (float64 in a notebook), so the
    multi-label nll moved (2.569786 -> 2.569801) and contrastive pre-training crashed in its first layer
    ("mat1 and mat2 must have the same dtype")."""
    import numpy as np
    from PIL import Image

    from mmdata.testing import shard_target_dataset
    from mmdata.train import train

    ds = shard_target_dataset(tmp_path / "t", n=40, meta=("genres",))
    cap = tmp_path / "cap"
    cap.mkdir()
    rng = np.random.default_rng(0)
    rows = ["image,text"]
    for i in range(48):
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(cap / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,a square number {i % 4}")
    (cap / "m.csv").write_text("\n".join(rows) + "\n")
    mmdata.shard(cap / "m.csv", cap / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    runs = {"multilabel": (ds, dict(target="genres", epochs=2, batch_size=8)),
            "contrastive": (cap / "ds", dict(epochs=0, pretrain="contrastive", pretrain_epochs=2))}
    for name, (data, kw) in runs.items():
        kw.update(threads=1, seed=0, eval_robustness=False)
        want = train(data, out=tmp_path / f"{name}32", **kw)
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            got = train(data, out=tmp_path / f"{name}64", **kw)
        finally:
            torch.set_default_dtype(before)
        keys = ("test", "history") if name == "multilabel" else ("retrieval",)
        for key in keys:
            assert got[key] == want[key], (name, key)
        if name == "contrastive":
            assert got["pretrain"]["history"] == want["pretrain"]["history"]


# -- QA23 pass 2 D2/D3: a bad out, and a PathLike whose path is bytes ---------------------------------------


@pytest.mark.parametrize("out, got", [(None, "got NoneType"), (b"ds", r"got bytes: pass it as a str \(os.fsdecode\(out\)\)"),
                                      (7, "got int")])
def test_shard_names_out_of_a_wrong_kind(tmp_path: Path, out: object, got: str) -> None:
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=3)
    with pytest.raises(SourceError, match=f"^out: expected .*{got}"):
        mmdata.shard(raw, out, progress=False)


class _BytesPath:
    def __init__(self, p: Path) -> None:
        self.p = p

    def __fspath__(self) -> bytes:
        return bytes(self.p)


def test_shard_names_a_pathlike_whose_path_is_bytes(tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=3)
    with pytest.raises(SourceError, match=r"^src: expected .*got _BytesPath whose path is bytes: pass os.fsdecode\(src\)"):
        mmdata.shard(_BytesPath(raw), tmp_path / "ds", progress=False)
    with pytest.raises(SourceError, match=r"^out: expected .*got _BytesPath whose path is bytes: pass os.fsdecode\(out\)"):
        mmdata.shard(raw, _BytesPath(tmp_path / "ds"), progress=False)
    assert not (tmp_path / "ds").exists()


# -- a known limit of the twenty-third round: the advice named `mmdata shard`'s options only ---------------


def test_shard_errors_and_warnings_name_the_python_keywords(tmp_path: Path) -> None:
    """A notebook user was told "--column audio=nope" and "Pass --labels-from-folders": shard() now adds the
    keywords it takes for the options a message cites; `mmdata shard` keeps its own options' words."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.shards.writer import ShardWarning
    from mmdata.testing import make_messy_folder

    raw = make_messy_folder(tmp_path / "raw", n=20).root  # class folders beside label files: a warning
    with pytest.warns(ShardWarning) as rec:
        rep = mmdata.shard(raw, tmp_path / "o", progress=False)
    said = [str(w.message) for w in rec if "--labels-from-folders" in str(w.message)]
    assert said and said[0].endswith("(from Python: labels_from_folders=True for --labels-from-folders, "
                                      "labels_from_folders=False for --no-labels-from-folders)"), said
    assert rec[0].filename == __file__  # the caller's line, past shard()'s wrapper
    assert not any("from Python" in w for w in rep["warnings"])  # the report (and --json) as the CLI's
    with pytest.raises(SourceError, match=r"--column audio=nope: no folder .* \(from Python: columns=\{FIELD: COLUMN or FOLDER\} "
                                          r"for --column\)$"):
        mmdata.shard(raw, tmp_path / "o2", progress=False, columns={"audio": "nope"})
    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "o3"), "--column", "audio=nope"])
    said = str(res.exception)  # the CLI's entry point prints it as "error: ..."
    assert res.exit_code != 0 and "--column audio=nope" in said and "from Python" not in said, said
    with pytest.raises(SourceError) as err:  # a message naming its keyword already gets no suffix
        mmdata.shard(raw, tmp_path / "o4", progress=False, split_by="nope")
    assert "from Python" not in str(err.value) and "(split_by=)" in str(err.value)


def test_the_skipped_warning_of_on_error_warn_points_at_the_caller(tmp_path: Path) -> None:
    """QA24 pass 2: shard()'s keyword wrapper moved this warning's line into mmdata (writer.py)."""
    from mmdata.testing import make_messy_folder

    raw = make_messy_folder(tmp_path / "raw", n=12, sizes=((32, 32),), seconds=(0.3, 0.5), corrupt=True).root
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(raw, tmp_path / "ds", on_error="warn", check="decode", progress=False)
    skipped = [w for w in got if "skipped" in str(w.message) and "source file(s)" in str(w.message)]
    assert skipped and all(w.filename == __file__ for w in skipped), [(w.filename, str(w.message)[:80]) for w in got]
