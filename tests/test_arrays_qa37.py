"""QA37 arrays: add-modality records a .npy field's array facts and warnings as shard does (sign #8), the
multi-axis PaddingWarning names the odd samples and slices the right axis (sign #3), add-modality names the
samples without the field (vendor #9), records a field's license (licence #7), and inspect names the fields
add-modality wrote (vendor #5)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata import types
from mmdata.augment.loader import PaddingWarning
from mmdata.testing import make_sample_folder
from mmdata.types import Sample, collate

N = 10
KEYS = [f"{i:06d}" for i in range(N)]
ARRAY_FACTS = ("dtypes", "ranks", "shapes", "length", "empty", "varying_axes")


def _pose(i: int) -> np.ndarray:
    """Sample i's (T, 5, 3) array: float64 for sample 3 (a dtype mix), empty for sample 5, (T, 5, 2) for 7."""
    if i == 5:
        return np.zeros((0, 5, 3), np.float32)
    return np.ones((4 + i, 5, 2 if i == 7 else 3), np.float64 if i == 3 else np.float32)


def _pose_folder(folder: Path, keys: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in keys:
        np.save(folder / f"{k}.pose.npy", _pose(int(k)))
    return folder


def _columns_ds(tmp_path: Path, **kw: object) -> Path:
    raw = make_sample_folder(tmp_path / "raw", n=N)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=4, progress=False, **kw)
    return tmp_path / "ds"


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def test_added_npy_field_records_array_facts_and_warnings_as_shard_does(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    rep = mmdata.add_modality(ds, "pose", _pose_folder(tmp_path / "pose", KEYS[:-1]))  # the last sample lacks it
    # the same files sharded with the rest: the card's record of the field is the shard's
    raw = make_sample_folder(tmp_path / "raw2", n=N)
    _pose_folder(raw, KEYS[:-1])
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        mmdata.shard(raw, tmp_path / "sharded", layout="columns", maxcount=4, progress=False)
    shard_mod, added_mod = _card(tmp_path / "sharded")["modalities"]["pose"], _card(ds)["modalities"]["pose"]
    assert {k: added_mod.get(k) for k in ARRAY_FACTS} == {k: shard_mod.get(k) for k in ARRAY_FACTS}
    assert added_mod["dtypes"] == {"float32": 8, "float64": 1} and added_mod["empty"] == 1
    shard_warnings = sorted(str(w.message) for w in said if "field 'pose'" in str(w.message))
    # the dtype mix, the empty array, and sample 7's (T, 5, 2) among (T, 5, 3): beside images, but no per-pixel
    # map of them (QA37 identity review #7), so add-modality warns of it as shard does
    assert len(shard_warnings) == 3 == len(rep["warnings"]), (shard_warnings, rep["warnings"])
    assert [w.split(":")[1] for w in sorted(rep["warnings"])] == [w.split(":")[1] for w in shard_warnings]
    # the advice is for an added field: add it again (a re-shard drops it), not shard again
    assert all("shard again" not in w and f"mmdata add-modality {ds} pose SRC --replace" in w for w in rep["warnings"])
    assert set(rep["warnings"]) <= set(_card(ds)["warnings"])
    text = json.dumps(mmdata.inspect(ds)["arrays"]["pose"])
    assert '"float64": 1' in text and '"empty": 1' in text
    # the loader batches the field in the card's one dtype instead of refusing every batch of a mix
    with pytest.warns(PaddingWarning, match=r"\(11, 5, 2\): '000007'; the other 8"):  # sample 7's 2 channels
        batch = next(iter(mmdata.loader(ds, batch_size=N, stage="eval")))
    assert batch["pose"].dtype.is_floating_point and str(batch["pose"].dtype) == "torch.float64"
    # replaced by one dtype: the old series' warnings go with it
    shutil.rmtree(tmp_path / "pose")
    folder = tmp_path / "pose"
    folder.mkdir()
    for k in KEYS:
        np.save(folder / f"{k}.pose.npy", np.ones((3, 5, 3), np.float32))
    rep = mmdata.add_modality(ds, "pose", folder, replace=True)
    card = _card(ds)
    assert rep["warnings"] == [] and not [w for w in card["warnings"] if w.startswith("field 'pose'")]
    assert card["modalities"]["pose"]["dtypes"] == {"float32": N} and "empty" not in card["modalities"]["pose"]
    assert mmdata.verify(ds)["ok"]


def test_collate_dtype_mix_advice_names_add_modality() -> None:
    with pytest.raises(ValueError, match=r"a field added with `mmdata add-modality`: add it again"):
        collate([Sample("a", {"imu": np.zeros(3, np.float32)}), Sample("b", {"imu": np.zeros(3, np.float64)})])


def _padding_message(arrays: dict[str, np.ndarray], name: str = "pose") -> str:
    types.reset_shape_warnings()
    with pytest.warns(PaddingWarning) as got:
        collate([Sample(k, {name: a}) for k, a in arrays.items()])
    (w,) = [w for w in got if issubclass(w.category, PaddingWarning)]
    return str(w.message)


def test_padding_warning_names_the_odd_samples_and_slices_the_channel_axis() -> None:
    # ordinary (T, 75, 3) samples, several of each length, and two (T, 75, 2) ones of their own lengths
    arrays = {f"ok{i}": np.zeros((10 + i % 4, 75, 3), np.float32) for i in range(16)}
    arrays |= {"odd_a": np.zeros((31, 75, 2), np.float32), "odd_b": np.zeros((37, 75, 2), np.float32)}
    msg = _padding_message(arrays)
    odd = msg[:msg.index("the other")]
    assert "(31, 75, 2): 'odd_a'" in odd and "(37, 75, 2): 'odd_b'" in odd and "'ok" not in odd
    assert "the other 16 are (T, 75, 3)" in msg and "2 of 18 arrays differ from the rest on axis 2" in msg
    assert "x = s['pose'][:, :, :2]" in msg and "[:, :C]" not in msg


def test_padding_warning_reorients_a_transposed_array() -> None:
    arrays = {"a": np.zeros((500, 3)), "b": np.zeros((300, 3)), "c": np.zeros((420, 3)), "ct": np.zeros((3, 400))}
    msg = _padding_message(arrays, "ecg")
    assert msg.index("(3, 400): 'ct'") < msg.index("the other 3 are (T, 3)")
    assert "x = s['ecg'].T where s['ecg'].shape[1] is not 3" in msg


def test_add_modality_names_the_samples_without_the_field(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    ds = _columns_ds(tmp_path)
    pose = _pose_folder(tmp_path / "pose", [k for k in KEYS if k not in ("000002", "000008")])
    res = CliRunner().invoke(app, ["add-modality", str(ds), "pose", str(pose)])
    assert res.exit_code == 0, res.output
    assert "(2 without it: '000002', '000008')" in res.stdout
    assert _card(ds)["modalities"]["pose"]["missing_keys"] == ["000002", "000008"]
    (pose / "000001.pose.npy").unlink()
    res = CliRunner().invoke(app, ["add-modality", str(ds), "pose", str(pose), "--replace", "--json"])
    assert json.loads(res.stdout)["missing_keys"] == ["000001", "000002", "000008"]


def test_add_modality_records_the_fields_license_and_inspect_names_added_fields(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    ds = _columns_ds(tmp_path, license="CC-BY-NC-4.0")
    pose = _pose_folder(tmp_path / "pose", KEYS)
    mmdata.add_modality(ds, "pose", pose)
    assert _card(ds)["modalities"]["pose"]["license_from"] == "dataset"
    res = CliRunner().invoke(app, ["add-modality", str(ds), "pose", str(pose), "--replace", "--license", "CC0-1.0",
                                   "--attribution", "Pose Lab"])
    assert res.exit_code == 0, res.output
    mod = _card(ds)["modalities"]["pose"]
    assert (mod["license"], mod["attribution"]) == ("CC0-1.0", "Pose Lab") and "license_from" not in mod
    mmdata.add_modality(ds, "pose", pose, replace=True)  # a replace without --license keeps the field's
    assert _card(ds)["modalities"]["pose"]["license"] == "CC0-1.0"
    assert mmdata.inspect(ds)["added_fields"] == {"pose": {"count": N, "missing": 0, "license": "CC0-1.0",
                                                           "attribution": "Pose Lab"}}
    out = " ".join(CliRunner().invoke(app, ["inspect", str(ds)]).stdout.split())
    assert "added by add-modality: pose (10 samples, 0 without it; license CC0-1.0, attribution Pose Lab)" in out
    assert "does not carry them" in out
    with pytest.raises(mmdata.errors.SourceError, match="--license"):
        mmdata.add_modality(ds, "pose", pose, replace=True, license="")
    assert "--license" in CliRunner().invoke(app, ["add-modality", "--help"]).stdout
