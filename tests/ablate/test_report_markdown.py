"""report.md escapes what a recipe, a dataset or a trainer names (QA round 22, multi-user): an arm named
``![a](https://evil.example/pixel.png) [click me](javascript:...)`` was copied verbatim into report.md, a
remote image (a tracking beacon) and a javascript: link in every viewer of the report. Ordinary names stay
byte-identical; a ``$`` in a name starts no mathtext in the figures."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from mmdata.ablate import run
from mmdata.ablate.report import md_code, md_text
from mmdata.ablate.testing import synthetic_train

HOSTILE = "![a](https://evil.example/pixel.png?u=1) [click me](javascript:alert(document.domain))"
MATH = "cut $\\frac{$ out"
ORDINARY = ["-audio.time_mask", "+sample.modality_dropout", "cutout 0.3", "label_noise"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("md") / "av", limit=4, progress=False)


def _run(data: Path, arms: dict[str, Any], out: Path, **kw: Any) -> str:
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 3,
           "design": {"mode": "explicit", "baseline": None, "arms": arms}, "controls": {"identity": False}, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(cfg, out, train_fn=synthetic_train, workers=1, progress=False)
    return (out / "report.md").read_text(encoding="utf-8")


def _outside_code(md: str) -> str:
    """report.md without its code spans (their text is inert: no link, no image, no HTML there)."""
    return re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", md, flags=re.S)


def _rendered(md: str) -> tuple[set[str], set[str], list[str]]:
    """(image sources, link targets, inline HTML) of report.md rendered as CommonMark with tables."""
    srcs, hrefs, htmls = set(), set(), []
    for tok in MarkdownIt("commonmark").enable("table").parse(md):
        for t in tok.children or []:
            if t.type == "image":
                srcs.add(str(t.attrs.get("src")))
            elif t.type == "link_open":
                hrefs.add(str(t.attrs.get("href")))
            elif t.type == "html_inline":
                htmls.append(t.content)
    return srcs, hrefs, htmls


def test_a_hostile_arm_name_forms_no_link_image_or_html_in_report_md(tmp_path: Path, tiny: Path,
                                                                     figures: dict[str, Any]) -> None:
    cut = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
    md = _run(tiny, {HOSTILE: cut, MATH: {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]},
                     "a*b*_c_ ~~x~~ #1 `q` \\[y]": cut}, tmp_path)
    assert "evil.example" in md  # the name is there, as text
    own = re.sub(r"^!\[[^\n]*\]\((forest|paired|robustness)\.png\)$", "", md, flags=re.M)  # the report's figures
    own = own.replace("[`paired.csv`](paired.csv)", "")  # and its one link
    assert not re.findall(r"(?<!\\)!\[|(?<!\\)\]\(", _outside_code(own))
    srcs, hrefs, htmls = _rendered(md)
    assert srcs <= {"forest.png", "paired.png", "robustness.png"}, srcs
    assert hrefs <= {"paired.csv"}, hrefs
    assert not htmls, htmls
    assert "<details>" in md  # the per-seed table's own HTML is still there
    # the figures drew every name as written: a "$" pair in a name is no mathtext (it failed or was typeset)
    labels = [t.get_text() for t in figures["forest.png"].axes[0].get_yticklabels()]
    assert any("$" in lab for lab in labels), labels
    png = (tmp_path / "forest.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_ordinary_names_are_byte_identical_in_report_md(tmp_path: Path, tiny: Path) -> None:
    cut = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
    md = _run(tiny, {n: cut for n in ORDINARY[:3]}, tmp_path, controls={"identity": False, "label_noise": 0.3})
    for name in ORDINARY:
        assert f"| {name} |" in md, name
    assert [md_text(n) for n in ORDINARY] == ORDINARY


def test_md_text_and_md_code() -> None:
    assert md_text(HOSTILE).count("\\[") == 2 and "\\]" in md_text(HOSTILE)
    assert md_text("a\nb") == "a b"  # one line: a name cannot start a heading or end the table row
    assert md_text("<img src=x>") == "\\<img src=x>"
    assert md_text("see `x[1](y)` and [z](w)", code_spans=True) == "see `x[1](y)` and \\[z\\](w)"
    assert md_code("a``b") == "```a``b```"
    assert _rendered(md_code("`[x](y)`"))[1] == set()


def _fold_train(data: Any, *, seed: int, test_split: str = "0", **kw: Any) -> dict[str, Any]:
    return synthetic_train(data, seed=seed + 1000 * int(test_split), **kw)


def test_the_folds_report_escapes_arm_names_too(tmp_path: Path, tiny: Path) -> None:
    """``mmdata ablate-folds`` writes its own report.md: the same hostile name forms no markup there (it did)."""
    from mmdata.ablate.folds import gather

    cfg = {"dataset": {"path": str(tiny)}, "seeds": 3, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {HOSTILE: {"image": [{"op": "cutout", "p": 0.5}]}, "flip": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    outs = [tmp_path / f"fold{k}" for k in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, o in enumerate(outs, start=1):
            run(cfg, o, train_fn=_fold_train, workers=1, progress=False, plots=False, test_split=str(k),
                on_warning=lambda m: None)
        gather(outs, tmp_path / "pooled", plots=False)
    md = (tmp_path / "pooled" / "report.md").read_text(encoding="utf-8")
    srcs, hrefs, htmls = _rendered(md)
    assert not srcs and not hrefs and not htmls, (srcs, hrefs, htmls)
    assert md_text(HOSTILE) in md and "| flip |" in md
