"""A manifest's second file of one field: the advice must be one that works.

QA: a CSV with columns ``audio`` and ``audio2`` (both .wav) said "to keep this column as a field of its
own: --column audio2=audio2", but a named field holds images, text, JSON or .npy arrays, so following it
only moved the refusal. For files a named field cannot hold the hint now says so and gives what works:
the column sharded as a dataset of its own under the same keys (``--meta audio``, ``--split-from``);
image / text / JSON files keep the named-field hint. Each piece of advice is followed here.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import mmdata
from mmdata.shards import index as idx
from mmdata.testing import audio_bytes, image_bytes

KEYS = ("a", "b", "c", "d")


def _two_mics(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(KEYS):
        (root / f"{k}.wav").write_bytes(audio_bytes(i, fmt="wav"))
        (root / f"{k}_mic2.wav").write_bytes(audio_bytes(10 + i, fmt="wav"))
    (root / "m.csv").write_text("key,audio,audio2,label\n" + "".join(f"{k},{k}.wav,{k}_mic2.wav,{i % 2}\n"
                                                                     for i, k in enumerate(KEYS)))
    return root / "m.csv"


def _audio_of(ds: Path) -> dict[str, bytes]:
    splits = sorted(idx.load_card(ds)["splits"])
    return {s.key: s.fields["wav"] for s in mmdata.open_dataset(ds, split=splits, decode=False)}


def test_a_second_audio_column_is_not_sent_to_a_named_field(tmp_path: Path) -> None:
    manifest = _two_mics(tmp_path / "raw")
    rep = mmdata.shard(manifest, tmp_path / "ds", split={"train": 0.5, "val": 0.5}, progress=False)
    assert rep["samples"] == 4
    reasons = [s["reason"] for s in rep["skipped"]]
    assert len(reasons) == 4 and all("column 'audio2': a second audio file for the sample (column 'audio' gives one)"
                                     in r for r in reasons)
    reason = reasons[0]
    assert "--column audio2=audio2" not in reason
    assert "a named field cannot hold .wav files" in reason
    assert ("shard it as a dataset of its own under the same keys: the same command into another folder, with "
            "--meta audio; --split-from OUT (this dataset's folder) gives its samples the same splits") in reason

    # the advice, followed: the second microphone's clips under the same keys and splits
    mmdata.shard(manifest, tmp_path / "mic2", meta=["audio"], split_from=tmp_path / "ds", progress=False)
    assert _audio_of(tmp_path / "mic2") == {k: (tmp_path / "raw" / f"{k}_mic2.wav").read_bytes() for k in KEYS}
    splits = [{r["key"]: r["split"] for r in idx.load_index(d).to_pylist()} 
              for d in (tmp_path / "ds", tmp_path / "mic2")]
    assert splits[0] == splits[1] and set(splits[0].values()) == {"train", "val"}


def test_without_a_key_column_the_advice_adds_one(tmp_path: Path) -> None:
    """The keys come from the first file column's names: sharded alone, the second column's files would
    give other keys ('a_mic2' for 'a'), so the advice first adds a key column, and following it works."""
    manifest = _two_mics(tmp_path / "raw")
    keyless = tmp_path / "raw" / "keyless.csv"
    keyless.write_text("\n".join(line.split(",", 1)[1] for line in manifest.read_text().splitlines()) + "\n")
    rep = mmdata.shard(keyless, tmp_path / "ds", progress=False)
    reason = rep["skipped"][0]["reason"]
    assert ("the same command into another folder, with --meta audio, after adding a column 'key' that names each "
            "row's sample (without one the keys come from the file names: 'a_mic2' there for 'a' here)") in reason
    assert _audio_of(tmp_path / "ds") == {k: (tmp_path / "raw" / f"{k}.wav").read_bytes() for k in KEYS}
    # the advice, followed (m.csv is keyless.csv with a key column): the first dataset's keys are kept
    mmdata.shard(manifest, tmp_path / "mic2", meta=["audio"], split_from=tmp_path / "ds", progress=False)
    assert _audio_of(tmp_path / "mic2") == {k: (tmp_path / "raw" / f"{k}_mic2.wav").read_bytes() for k in KEYS}


def test_the_cli_gives_the_same_advice(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    manifest = _two_mics(tmp_path / "raw")
    runner = CliRunner()
    res = runner.invoke(app, ["shard", str(manifest), str(tmp_path / "ds"), "--json"])
    assert res.exit_code == 0, res.output
    assert "a named field cannot hold .wav files" in res.output and "--column audio2=audio2" not in res.output
    res = runner.invoke(app, ["shard", str(manifest), str(tmp_path / "mic2"), "--meta", "audio",
                              "--split-from", str(tmp_path / "ds"), "--json"])
    assert res.exit_code == 0, res.output
    assert _audio_of(tmp_path / "mic2") == {k: (tmp_path / "raw" / f"{k}_mic2.wav").read_bytes() for k in KEYS}


def test_a_second_image_column_keeps_the_named_field_hint(tmp_path: Path) -> None:
    for i, k in enumerate(KEYS):
        (tmp_path / f"{k}.png").write_bytes(image_bytes(i))
        (tmp_path / f"{k}_mask.png").write_bytes(image_bytes(10 + i))
    (tmp_path / "m.csv").write_text("key,image,mask png\n" + "".join(f"{k},{k}.png,{k}_mask.png\n" for k in KEYS))
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    reason = rep["skipped"][0]["reason"]
    assert reason.endswith("to keep this column as a field of its own (a mask, a depth map): --column "
                           "'mask_png=mask png'")  # quoted for the shell
    assert "named field cannot" not in reason
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds2", columns={"mask_png": "mask png"}, progress=False)
    assert rep["samples"] == 4 and not rep["skipped"]


def test_a_second_audio_column_beside_a_path_template(tmp_path: Path) -> None:
    """The first audio file from ``--path``: the advice drops that option (no --meta then)."""
    _two_mics(tmp_path)
    (tmp_path / "t.csv").write_text("key,name,audio2\n" + "".join(f"{k},{k},{k}_mic2.wav\n" for k in KEYS))
    rep = mmdata.shard(tmp_path / "t.csv", tmp_path / "ds", paths={"audio": "{name}.wav"}, progress=False)
    reason = rep["skipped"][0]["reason"]
    assert "(--path audio={name}.wav gives one)" in reason and "--meta" not in reason
    assert "the same command into another folder, without --path audio={name}.wav;" in reason
    mmdata.shard(tmp_path / "t.csv", tmp_path / "mic2", split_from=tmp_path / "ds", progress=False)
    assert _audio_of(tmp_path / "mic2") == {k: (tmp_path / f"{k}_mic2.wav").read_bytes() for k in KEYS}
