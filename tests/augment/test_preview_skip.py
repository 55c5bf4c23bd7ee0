"""``mmdata preview --on-error skip`` (``preview(..., on_error="skip")``): a sample that does not decode,
or that the recipe refuses, is left out of the grid and named (key, shard, reason) on stderr and in
the figure; the next good samples take its place. Before, preview stopped at the first such sample
(known limit of the 2026-12-04 session: "`preview` has no skip option")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmdata
from mmdata.augment.preview import preview, preview_figure, spread_keys
from mmdata.errors import MMDataError, ShardError
from mmdata.testing.hostile import tar_of
from mmdata.testing.media import audio_bytes, image_bytes

GAIN = {"audio": [{"op": "gain", "p": 1.0}]}


def _clips(root: Path, n: int, nan: set[int]) -> Path:
    """A dataset of ``n`` float WAV clips (all train, class ``i % 2``); clip ``c{i}`` for ``i`` in ``nan``
    holds NaN samples (passes the default ``--check header``, fails to decode)."""
    import soundfile as sf

    raw = root / "raw"
    raw.mkdir(parents=True)
    lines = ["filename,category"]
    for i in range(n):
        t = np.arange(800) / 8000
        x = (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)).astype("float32")
        if i in nan:
            x[10:20] = np.nan
        sf.write(raw / f"c{i}.wav", x, 8000, subtype="FLOAT")
        lines.append(f"c{i}.wav,{('dog', 'rain')[i % 2]}")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(raw / "m.csv", root / "ds", columns={"audio": "filename", "label": "category"}, progress=False)
    return root / "ds"


def _title(fig: Any) -> str:
    return fig._suptitle.get_text()


def _texts(fig: Any) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def _row_keys(fig: Any) -> list[str]:
    """The sample keys of the grid's rows (the first column's titles: ``KEY (original)``)."""
    return [ax.get_title().rsplit(" (original)", 1)[0] for ax in fig.axes if ax.get_title().endswith("(original)")]


@pytest.fixture(scope="module")
def nan_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight clips, c1 and c4 holding NaN; the four picks of ``--n 4`` include both (checked below)."""
    return _clips(tmp_path_factory.mktemp("nan"), 8, nan={1, 4})


def test_raise_stops_at_the_sample_and_now_names_the_skip_option(nan_ds: Path, tmp_path: Path) -> None:
    with pytest.raises(ShardError) as e:
        preview(nan_ds, GAIN, tmp_path / "p.png", n=4, variants=1)
    assert "sample 'c1'" in str(e.value) and f"mmdata verify {nan_ds} --deep" in str(e.value)
    assert "--on-error skip" in str(e.value)
    assert not (tmp_path / "p.png").exists()


def test_skip_previews_the_next_good_samples_and_names_the_skipped(nan_ds: Path) -> None:
    picked = [k for k, _ in spread_keys(mmdata.open_dataset(nan_ds), 4)]
    assert {"c1", "c4"} <= set(picked)  # the test's premise: both bad clips are among the first picks
    skipped: list[dict[str, Any]] = []
    fig = preview_figure(nan_ds, GAIN, n=4, variants=1, on_error="skip", skipped=skipped)
    rows = _row_keys(fig)
    assert len(rows) == 4 and not {"c1", "c4"} & set(rows), rows  # four good samples, the bad ones replaced
    assert set(rows) >= set(picked) - {"c1", "c4"}  # the good picks stay
    assert [s["key"] for s in skipped] == ["c1", "c4"]
    for s in skipped:
        assert s["shard"].endswith(".tar") and "cannot decode" in s["reason"] and s["key"] + ".wav" in s["reason"]
    assert _title(fig).startswith("recipe preview: 4 samples")
    assert "skipped 2 samples (--on-error skip): 'c1', 'c4'" in _texts(fig)


def test_skip_without_bad_samples_draws_what_raise_draws(tmp_path: Path) -> None:
    ds = _clips(tmp_path, 4, nan=set())
    skipped: list[dict[str, Any]] = []
    a = preview_figure(ds, GAIN, n=3, variants=1, on_error="skip", skipped=skipped)
    b = preview_figure(ds, GAIN, n=3, variants=1)
    assert _row_keys(a) == _row_keys(b) and skipped == [] and "skipped" not in _texts(a)


def test_skip_with_fewer_good_samples_than_n_draws_those(tmp_path: Path) -> None:
    ds = _clips(tmp_path, 4, nan={0, 3})
    skipped: list[dict[str, Any]] = []
    fig = preview_figure(ds, GAIN, n=4, variants=1, on_error="skip", skipped=skipped)
    assert sorted(_row_keys(fig)) == ["c1", "c2"] and sorted(s["key"] for s in skipped) == ["c0", "c3"]


def test_skip_with_no_good_sample_is_an_error_naming_them(tmp_path: Path) -> None:
    ds = _clips(tmp_path, 2, nan={0, 1})
    with pytest.raises(MMDataError, match=r"no samples to preview: 2 skipped \(--on-error skip\): 'c0'"):
        preview_figure(ds, GAIN, n=2, variants=1, on_error="skip")


def test_on_error_is_checked(nan_ds: Path) -> None:
    with pytest.raises(MMDataError, match=r"on_error \(--on-error\): 'ignore' is not one of \['raise', 'skip'\]"):
        preview_figure(nan_ds, GAIN, n=2, variants=1, on_error="ignore")


def test_skip_in_bare_hostile_shards(tmp_path: Path) -> None:
    """Bare shards (no index): a member that is no PNG is skipped and the next samples drawn."""
    samples = [(f"s{i}", {"png": image_bytes(i) if i != 1 else b"\x89PNG\r\n\x1a\n not a png", "txt": b"a cat"})
               for i in range(5)]
    shard = tmp_path / "bare-000000.tar"
    shard.write_bytes(tar_of(samples))
    rec = {"image": [{"op": "hflip", "p": 1.0}]}
    with pytest.raises(ShardError, match="s1"):
        preview_figure(str(shard), rec, n=3, variants=1)
    skipped: list[dict[str, Any]] = []
    fig = preview_figure(str(shard), rec, n=3, variants=1, on_error="skip", skipped=skipped)
    assert _row_keys(fig) == ["s0", "s2", "s3"]
    assert [s["key"] for s in skipped] == ["s1"] and skipped[0]["shard"].endswith("bare-000000.tar")


def test_skip_leaves_out_samples_the_recipe_refuses(tmp_path: Path) -> None:
    """A random_crop larger than some images: those samples are refused by the recipe (as ``mmdata augment
    --on-error skip`` leaves them out), named with the recipe's reason."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(5):
        (raw / f"p{i}.png").write_bytes(image_bytes(i, (16, 16) if i == 0 else (40, 40)))
        (raw / f"p{i}.flac").write_bytes(audio_bytes(i))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rec = {"image": [{"op": "random_crop", "size": [32, 32]}]}
    with pytest.raises(ShardError, match="random_crop size"):
        preview_figure(tmp_path / "ds", rec, n=3, variants=1)
    skipped: list[dict[str, Any]] = []
    fig = preview_figure(tmp_path / "ds", rec, n=3, variants=1, on_error="skip", skipped=skipped)
    assert len(_row_keys(fig)) == 3 and "p0" not in _row_keys(fig)
    assert [s["key"] for s in skipped] == ["p0"]
    assert skipped[0]["reason"].startswith("refused by the recipe: ") and "random_crop size" in skipped[0]["reason"]


# -- the command ----------------------------------------------------------------------------------------------

@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``mmdata ARGS`` in this process: (exit code, stdout, stderr with rich's wrapping undone)."""
    from mmdata.cli.main import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())

    return run


def test_cli_preview_on_error_skip(nan_ds: Path, tmp_path: Path, cli: Callable[..., tuple[int, str, str]]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("audio:\n  - {op: gain, p: 1.0}\n")
    base = ["preview", str(nan_ds), "-r", str(recipe), "--n", "4", "--variants", "1"]
    code, out, err = cli(*base, "-o", str(tmp_path / "a.png"))
    assert code == 2 and "sample 'c1'" in err and "--on-error skip" in err and not (tmp_path / "a.png").exists()
    code, out, err = cli(*base, "-o", str(tmp_path / "b.png"), "--on-error", "skip")
    assert code == 0, err  # as train / augment / shard with skipped samples: done, the skips reported
    # stdout: the result (the PNG's path, then what it shows); the skips go to stderr
    assert out.splitlines()[0] == f"wrote {tmp_path / 'b.png'}" and "skipped" not in out
    assert "skipped 2 samples (--on-error skip), not drawn:" in err, err
    assert "'c1' in " in err and "'c4' in " in err and "cannot decode" in err
    assert (tmp_path / "b.png").read_bytes().startswith(b"\x89PNG")
    code, out, err = cli(*base, "-o", str(tmp_path / "c.png"), "--on-error", "ignore")
    assert code == 2 and "Invalid value for '--on-error': 'ignore' is not one of raise or skip" in err  # the option named


def test_a_split_of_mostly_bad_samples_finds_the_good_ones(tmp_path: Path) -> None:
    ds = _clips(tmp_path, 16, nan=set(range(16)) - {5, 11, 14})
    skipped: list[dict[str, Any]] = []
    fig = preview_figure(ds, GAIN, n=3, variants=1, on_error="skip", skipped=skipped)
    assert sorted(_row_keys(fig)) == ["c11", "c14", "c5"]
    assert len(skipped) == len({s["key"] for s in skipped}) <= 13  # each bad clip named once


def test_cli_preview_to_stdout_keeps_the_skips_on_stderr(nan_ds: Path, tmp_path: Path,
                                                         capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from mmdata.cli.main import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("audio:\n  - {op: gain, p: 1.0}\n")
    with pytest.raises(SystemExit) as e:
        main(["preview", str(nan_ds), "-r", str(recipe), "--n", "4", "--variants", "1", "-o", "-",
              "--on-error", "skip"])
    assert not e.value.code
    out = capsysbinary.readouterr()
    assert out.out.startswith(b"\x89PNG") and out.out.endswith(b"IEND\xaeB`\x82")  # stdout: the PNG alone
    assert "skipped 2 samples" in out.err.decode()
