"""The Hub README and to_hf from review27 (G3-5, G3-6).

G3-5: a licence the Hub does not know became ``license_name: my-terms:-see-https://x.org/t?a=1`` (a slug of the raw
text; the Hub wants an id such as ``my-license-1.0`` and a ``license_link``), and a description, command or citation
holding ```` ``` ```` broke the README's fences: the rest of the card became code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

import mmdata
from mmdata.interop.hf import hub_card, hub_license
from mmdata.testing import make_sample_folder

pytestmark = pytest.mark.filterwarnings("ignore:.*hold the same image or audio bytes")

COMMAND = "mmdata shard raw ds --description 'see ```code``` here'"
CITATION = "@misc{x, note={a ```` run}\n```\n}"  # a line of three backticks: it closed the ``` fence


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hubcard27")
    raw = make_sample_folder(base / "raw", n=4, missing=False)
    out = base / "ds"
    mmdata.shard(raw, out, license="My terms: see https://x.org/t?a=1", description="before\n```python\nx = 1",
                 progress=False)
    card = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    card |= {"citation": CITATION, "command": COMMAND}  # as an HF source's info and a build command give them
    (out / "dataset.json").write_text(json.dumps(card), encoding="utf-8")
    return out


def test_an_unknown_licence_is_an_id_with_its_link() -> None:
    assert hub_license("My terms: see https://x.org/t?a=1") == {
        "license": "other", "license_name": "my-terms-see", "license_link": "https://x.org/t?a=1"}
    assert hub_license("My License 1.0") == {"license": "other", "license_name": "my-license-1.0"}
    assert hub_license("https://x.org/terms.") == {"license": "other", "license_name": "custom",
                                                   "license_link": "https://x.org/terms"}
    assert hub_license("CC BY 4.0") == {"license": "cc-by-4.0"}


def test_the_readme_front_matter_has_the_licence_id_and_link(ds: Path) -> None:
    meta = yaml.safe_load(hub_card(ds).split("---\n")[1])
    assert meta["license"] == "other" and meta["license_name"] == "my-terms-see"
    assert meta["license_link"] == "https://x.org/t?a=1"


def test_backticks_in_the_description_command_and_citation_leave_the_sections_intact(ds: Path) -> None:
    tokens = MarkdownIt("commonmark").parse(hub_card(ds))
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert {"License", "Citation", "Provenance"} <= set(headings), headings
    code = {t.content.rstrip("\n") for t in tokens if t.type in ("fence", "code_block")}
    assert CITATION in code and COMMAND in code, code
    assert "x = 1" in code  # the description's own code block, closed


def test_to_hf_reads_three_index_columns_and_maps_the_converted_split_only(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """G3-6: to_hf built a dict of every key -> source_key of every split from the whole index (every column)."""
    pytest.importorskip("datasets")
    from mmdata.shards import index as idx

    raw = make_sample_folder(tmp_path / "raw", n=8, odd_stems=True, missing=False)
    mmdata.shard(raw, tmp_path / "ds", split="train=0.5,val=0.5", progress=False)
    real, reads = idx.load_index, []

    def spy(path, columns=None, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        table = real(path, columns, *a, **kw)
        reads.append((columns, table.num_rows))
        return table

    monkeypatch.setattr(idx, "load_index", spy)
    want = real(tmp_path / "ds", columns=["split", "key", "source_key"]).to_pydict()
    for split in ("train", "val"):
        reads.clear()
        d = mmdata.to_hf(tmp_path / "ds", split, cache_dir=tmp_path / "hf")
        mapped = [c for c, _ in reads if c is not None and "source_key" in c]
        assert mapped == [["split", "key", "source_key"]], reads  # not the whole table
        expect = {k: sk for sp, k, sk in zip(want["split"], want["key"], want["source_key"]) if sp == split}
        assert dict(zip(d["key"], d["source_key"])) == expect
