"""QA28 security #6: ``hub_card`` put a card's ``name``, ``mmdata_version``, ``license`` and ``description`` into
the README body as Markdown / HTML. A name with newlines made a fake ``## License: MIT`` heading and an ``<img
onerror>``; a description ending in an unclosed ``<!--`` hid the real License and Provenance sections; the
version carried ``<script>``. Now the heading is one literal line, the version is checked, a description that
leaves HTML open is shown in a fence, and the licence is a literal block. The README is rendered here with
markdown-it (CommonMark, as rich ships it) to see what a reader sees.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import mmdata
from mmdata.interop.hf import hub_card, write_hub_card
from mmdata.shards import index as idx
from mmdata.testing import make_class_folders

markdown_it = pytest.importorskip("markdown_it")


def _forge(ds: Path, **fields: object) -> None:
    card = json.loads((ds / idx.CARD).read_text())
    card.update(fields)
    card["card_digests"] = idx.card_digests(card)  # the attacker recomputes them
    (ds / idx.CARD).write_text(json.dumps(card))


def _rendered(readme: str) -> str:
    """The README's body as HTML, its closed comments removed (what a reader of the page sees)."""
    assert readme.startswith("---\n")
    body = readme.split("\n---\n", 1)[1]
    html = markdown_it.MarkdownIt("commonmark").render(body)
    return re.sub(r"<!--.*?-->", "", html, flags=re.S)


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    mmdata.shard(make_class_folders(tmp_path / "raw", per_class=2, classes=("cat", "dog")), tmp_path / "ds",
                 progress=False)
    return tmp_path / "ds"


def test_the_qa_card_keeps_license_and_provenance_visible(ds: Path) -> None:
    _forge(ds, name="Nice\n<img src=x onerror=alert(1)>\n## License\n\nMIT (fake)",
           description="A dataset.\n\n<!-- hide everything after", license="Proprietary, no redistribution",
           mmdata_version="0.1.0 <script>alert(1)</script>\n# HEAD")
    text = hub_card(ds)
    html = _rendered(text)
    assert "<!--" not in html, html  # nothing left open
    assert html.count("<h2>License</h2>") == 1 and "<h2>Provenance</h2>" in html, html
    assert "<pre><code>Proprietary, no redistribution" in html  # the real licence, literally
    assert "<img" not in html and "<script" not in html, html
    assert html.count("<h1>") == 1 and "<h1>Nice\\n&lt;img src=x onerror=alert(1)&gt;\\n## License\\n\\nMIT (fake)</h1>" in html
    assert "Written by mmdata ? as" in text  # the version is not a version string: not written
    assert "&lt;!-- hide everything after" in html  # the description is still shown, as text


def test_verify_still_compares_the_readme(ds: Path) -> None:
    _forge(ds, description="<details>\nopen", license="<!-- x")
    readme = write_hub_card(ds)
    assert mmdata.verify(ds)["ok"]
    text = readme.read_text()
    readme.write_text(text.replace("## License", "<!--\n## License"))
    rep = mmdata.verify(ds)
    assert not rep["ok"] and any(p["shard"] == "README.md" for p in rep["problems"]), rep


@pytest.mark.parametrize("description", [
    "<details><summary>more</summary>\n\nhidden", "<script>\nx", "<?php", "<![CDATA[x", "<!DOCTYPE", "<div",
])
def test_a_description_leaving_html_open_is_fenced(ds: Path, description: str) -> None:
    _forge(ds, description=description)
    html = _rendered(hub_card(ds))
    assert "<h2>License</h2>" in html and "<h2>Provenance</h2>" in html
    assert re.search(r"<(details|script|div)\b", html) is None, html


def test_plain_markdown_descriptions_and_versions_are_kept(ds: Path) -> None:
    _forge(ds, description="Tiny **birds**.\n\n<!-- a note --> <br> and <b>bold</b>", mmdata_version="0.2.0.dev3+g1a2b",
           license="CC-BY-4.0")
    text = hub_card(ds)
    assert "Tiny **birds**.\n\n<!-- a note --> <br> and <b>bold</b>" in text  # Markdown as written
    assert "Written by mmdata 0.2.0.dev3+g1a2b as" in text
    assert "<strong>birds</strong>" in _rendered(text)


@pytest.mark.parametrize("description", [
    "The **Oxford-IIIT Pet** images, from <https://www.robots.ox.ac.uk/~vgg/data/pets>.",
    "Contact <owner@example.org> for access.",
    "Files are `<key>.png` and `<key>.txt`.",
    "```\n<div>\n```\nThen **more**.",
])
def test_autolinks_and_code_are_not_html_left_open(ds: Path, description: str) -> None:
    """The review of QA28: `<https://...>` (a CommonMark autolink) read as an element `<https>` never closed, so
    an ordinary description was fenced whole and lost its links and bold text; so were `<key>.png` in code."""
    _forge(ds, description=description)
    text = hub_card(ds)
    assert description in text and f"```\n{description}" not in text  # as written, not in a fence of its own
    assert "<h2>License</h2>" in _rendered(text)
