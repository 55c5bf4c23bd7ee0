"""QA39 review sources #1, end to end: a caption holding C1 characters (UTF-8 read as Latin-1 / cp1252: mojibake) is
kept — it was refused, dropping the text — and ``shard`` warns once, counted, naming the samples and the fix."""
import json
import warnings

import mmdata
from mmdata.testing.media import image_bytes


def test_mojibake_captions_are_kept_and_warned(tmp_path):
    _check(tmp_path, 2)


def test_many_mojibake_captions_are_counted_whole_with_five_named(tmp_path):
    """QA39 review 2 a #3: a job keeps a count and five examples, not a note per caption; the count stays whole."""
    _check(tmp_path, 8)


def _check(tmp_path, n_bad):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = "It\u2019s a dog \u2014 on the beach"
    bad = good.encode("utf-8").decode("latin-1")  # holds U+0080 .. U+009F
    rows = []
    for i in range(n_bad + 4):
        (raw / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"k{i}", "image": f"{i}.png", "text": bad if i < n_bad else good, "label": "ab"[i % 2]})
    (raw / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mmdata.shard(str(raw / "m.jsonl"), str(tmp_path / "ds"), split={"train": 1.0}, progress=False)
    said = [str(w.message) for w in seen if "C1 control characters" in str(w.message)]
    assert len(said) == 1 and f"{n_bad} text members" in said[0] and "'k0'" in said[0] and "ftfy" in said[0], said
    assert said[0].count("'k") <= 6, said  # five samples named, and the example's member
    texts = {s.key: s.fields.get("text") for s in mmdata.open_dataset(str(tmp_path / "ds"), split="train")}
    assert len(texts) == n_bad + 4 and all(texts.values())
