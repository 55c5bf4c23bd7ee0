"""QA30 (fix-api, apidocs D2 / D12): the ``mmdata.testing`` helpers' hints resolve (``shard_meta_column`` named
``Any`` without importing it), and ``shard_folds`` / ``shard_target_dataset`` do not warn the caller about the
data they generate themselves."""

from __future__ import annotations

import inspect
import typing
import warnings
from pathlib import Path

import mmdata
import mmdata.testing as T


def test_every_public_helper_has_resolvable_hints() -> None:
    for name in T.__all__:
        f = getattr(T, name)
        if inspect.isfunction(f):
            typing.get_type_hints(f)  # a NameError here: a name the module never imports
    assert typing.get_type_hints(T.shard_meta_column)["values"] == list[typing.Any]


def _shard_warnings(make: typing.Callable[[], Path]) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ds = make()
    return ds, [str(w.message) for w in seen if issubclass(w.category, mmdata.ShardWarning)]


def test_shard_folds_is_quiet_about_its_own_unlabelled_sample(tmp_path: Path) -> None:
    ds, said = _shard_warnings(lambda: T.shard_folds(tmp_path, n=16))
    assert said == []
    card = mmdata.open_dataset(ds, split="1", decode=False).card
    assert sorted(card["splits"]) == ["1", "2", "3", "4"]
    # the sample is still unlabelled (the folder keeps it so): only the caller's warning about it is gone
    labels = [s.fields.get("label") for split in "1234" for s in mmdata.open_dataset(ds, split=split)]
    assert len(labels) == 16 and labels.count(None) == 1


def test_shard_target_dataset_is_quiet_about_its_unread_columns(tmp_path: Path) -> None:
    ds, said = _shard_warnings(lambda: T.shard_target_dataset(tmp_path, n=12))
    assert said == []
    metas = [s.fields.get("json") or {} for split in ("train", "val", "test")
             for s in mmdata.open_dataset(ds, split=split)]
    assert len(metas) == 12 and any("score" in m for m in metas) and not any("duration" in m for m in metas)


def test_a_warning_about_the_callers_own_data_still_reaches_them(tmp_path: Path) -> None:
    """Only the helpers' known warnings are silenced: the same shard of a user's manifest still warns."""
    m = T.make_messy_folder(tmp_path / "raw", n=12, seconds=(0.3, 0.6))
    T.write_manifest(m, "manifest.csv", targets=True)
    _, said = _shard_warnings(lambda: mmdata.shard(m.root / "manifest.csv", tmp_path / "ds", meta=["score"],
                                                   progress=False))
    assert any("column 'duration'" in w for w in said)


def test_make_sample_folder_documents_every_parameter(tmp_path: Path) -> None:
    doc = T.make_sample_folder.__doc__ or ""
    args = doc.split("Args:")[1].split("Returns:")[0]
    for name in inspect.signature(T.make_sample_folder).parameters:
        assert f"{name}:" in args or f"{name}," in args, name
    d = T.make_sample_folder(tmp_path, n=2, image_fmt="jpg", audio_fmt="wav")
    assert sorted(p.suffix for p in d.glob("000000.*")) == [".cls", ".jpg", ".txt", ".wav"]
