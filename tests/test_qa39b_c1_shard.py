"""QA39 review sources #1, end to end: a caption holding C1 characters (UTF-8 read as Latin-1 / cp1252: mojibake) is
kept — it was refused, dropping the text — and ``shard`` warns once, counted, naming the samples and the fix."""
import json
import warnings

import mmdata
from mmdata.testing.media import image_bytes


def test_mojibake_captions_are_kept_and_warned(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = "It\u2019s a dog \u2014 on the beach"
    bad = good.encode("utf-8").decode("latin-1")  # holds U+0080 .. U+009F
    rows = []
    for i in range(6):
        (raw / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"k{i}", "image": f"{i}.png", "text": bad if i < 2 else good, "label": "ab"[i % 2]})
    (raw / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mmdata.shard(str(raw / "m.jsonl"), str(tmp_path / "ds"), split={"train": 1.0}, progress=False)
    said = [str(w.message) for w in seen if "C1 control characters" in str(w.message)]
    assert len(said) == 1 and "2 text members" in said[0] and "'k0'" in said[0] and "ftfy" in said[0], said
    texts = {s.key: s.fields.get("text") for s in mmdata.open_dataset(str(tmp_path / "ds"), split="train")}
    assert len(texts) == 6 and all(texts.values())
