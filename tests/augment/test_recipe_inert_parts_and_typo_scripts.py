"""QA33: a recipe section / op that cannot act on the data is said, not a silent no-op (onemodality #3); typo
says when it can edit most captions in no way (multilingual #7); ``label_noise`` in a recipe points to where label
noise is set (labelnoise #11); a preview of a dataset without labels shows its metadata values (onemodality #9)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.augment.recipe import dataset_modalities, inert_parts, load_recipe, warn_inert
from mmdata.augment.text import Typo
from mmdata.errors import RecipeError
from mmdata.text import Tokenizer
from mmdata.types import Sample


def _audio_dataset(tmp: Path, n: int = 4, meta: bool = False) -> Path:
    import soundfile as sf

    raw = tmp / "raw"
    raw.mkdir()
    rows = ["key,audio,score"]
    for i in range(n):
        sf.write(raw / f"c{i}.wav", np.sin(np.arange(1600) * (0.05 + 0.01 * i)).astype("float32") * 0.3, 16000)
        rows.append(f"c{i},c{i}.wav,{1.5 + i}")
    if meta:
        (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        mmdata.shard(raw / "m.csv", tmp / "d", progress=False, meta=["score"])
    else:
        mmdata.shard(raw, tmp / "d", progress=False)
    return tmp / "d"


def test_sections_and_ops_that_cannot_act_are_named() -> None:
    notes, none = inert_parts({"image": [{"op": "rotate", "limit": 10.0}], "normalize": {"text": [{"op": "max_tokens"}]}},
                               ["audio"], "d_audio")
    assert none and notes == [
        "section 'image' (rotate) has no effect: d_audio has no image (it has audio)",
        "section 'normalize.text' (max_tokens) has no effect: d_audio has no text (it has audio)"]
    notes, none = inert_parts({"sample": [{"op": "modality_dropout", "p": 1.0, "p_drop": 1.0}],
                               "audio": [{"op": "gain"}]}, ["audio"], "d_audio")
    assert not none and notes == ["step sample.modality_dropout#0 can never drop a modality: d_audio's samples "
                                  "have 1 (audio), and keep_at_least is 1"]
    notes, none = inert_parts({"sample": [{"op": "consistent_hflip"}]}, ["audio", "text"])
    assert none and "no image to flip" in notes[0]


@pytest.mark.parametrize("recipe,mods", [({"image": [{"op": "hflip"}]}, ["image"]),
                                         ({"sample": [{"op": "modality_dropout"}]}, ["image", "text"]),
                                         ({"text": [{"op": "choose_caption"}]}, ["image"]),  # writes the text
                                         ({"batch": [{"op": "mixup"}]}, ["audio"]),
                                         ({"sample": [{"op": "one_of", "ops": [{"op": "consistent_hflip"},
                                                                              {"op": "modality_dropout"}]}]}, ["image"])])
def test_what_can_act_is_not_warned(recipe: dict, mods: list[str]) -> None:
    assert inert_parts(recipe, mods) == ([], False)


def test_the_shipped_recipe_on_a_one_modality_dataset(tmp_path: Path) -> None:
    d = _audio_dataset(tmp_path)
    assert dataset_modalities(d) == ("audio",)
    with pytest.warns(UserWarning) as got:
        notes = warn_inert(Path(__file__).parents[2] / "recipes" / "avdigits.yaml", d, "x", "augment")
    assert [str(w.message) for w in got] == notes
    assert any(m.startswith("augment: recipe section 'image'") for m in notes)
    assert any(m.startswith("augment: recipe step sample.modality_dropout") for m in notes)
    assert not any("no step of the recipe" in m for m in notes)  # its audio section acts
    assert warn_inert({"image": [{"op": "hflip"}]}, d / "train-000000.tar", "x", "augment") == []  # bare shards


def test_augment_and_preview_warn_when_no_op_can_act(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.augment.preview import preview_figure
    from mmdata.cli.main import app

    d = _audio_dataset(tmp_path)
    (tmp_path / "r.yaml").write_text("seed: 0\nimage:\n  - {op: rotate, p: 1.0, limit: 10.0}\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, ["augment", str(d), str(tmp_path / "aug"), "-r", str(tmp_path / "r.yaml")])
        assert res.exit_code == 0, res.output
        said = res.output + "\n".join(str(w.message) for w in got)
        assert "recipe: section 'image' (rotate) has no effect" in said, said
        assert "the augmented copies equal their originals" in said, said
        card = json.loads((tmp_path / "aug" / "dataset.json").read_text(encoding="utf-8"))
        assert any(w.startswith("recipe: section 'image' (rotate) has no effect") for w in card["warnings"])
        assert any(w.startswith("recipe: no step can act on ") for w in card["warnings"])
        assert not any("recipe: recipe" in w or "recipe: no step of the recipe" in w for w in card["warnings"])
        preview_figure(d, tmp_path / "r.yaml", n=1, variants=1)
    said = [str(w.message) for w in got]
    assert any("every variant drawn equals its original" in m for m in said), said


def test_typo_warns_once_when_most_captions_have_nothing_to_change() -> None:
    op = Typo(p_word=1.0)
    with pytest.warns(UserWarning, match="no character of 4 of the 4 captions") as got:
        for s in ["قطة تجلس على اليسار", "Привет мир", "猫が左に", "Ελληνικά λέξη", "ｆｕｌｌ", "中文"]:
            assert op.word_params(np.random.default_rng(0), Tokenizer.words(s)) == {"edits": []}
    assert len([w for w in got if "typo" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        latin = Typo(p_word=1.0)
        for s in ["a cat", "Straße ÉCOLE", "Привет мир", "the dog", "a bird"]:
            latin.word_params(np.random.default_rng(0), Tokenizer.words(s))


def test_typo_warning_names_its_step_and_the_callers_line() -> None:
    """QA33 review: the warning said neither which step (text[1]) nor where, pointing at mmdata/augment/text.py."""
    rec = load_recipe({"text": [{"op": "token_mask", "p": 0.0}, {"op": "typo", "p": 1.0, "p_word": 1.0}]})
    with pytest.warns(UserWarning, match=r"recipe step text\[1\] \(typo, kind: keyboard\) can change no") as got:
        for i, s in enumerate(["Привет мир", "猫が左に", "Ελληνικά λέξη", "中文"]):
            rec.apply_sample(Sample(f"k{i}", {"text": s}))
    said = [w for w in got if "typo" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__, said[0].filename


def test_typo_docs_name_the_scripts() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "ops.md").read_text(encoding="utf-8")
    section = doc[doc.index("### text: typo"):]
    assert "Cyrillic" in section[:2000] and "ASCII letters" in section[:2000]


@pytest.mark.parametrize("section", ["sample", "text", "image"])
def test_label_noise_in_a_recipe_points_to_the_trainer_option(section: str) -> None:
    with pytest.raises(RecipeError, match=r"unknown .* op 'label_noise'.*`mmdata train --label-noise F`.*"
                                          r"controls: \{label_noise: F\}"):
        load_recipe({section: [{"op": "label_noise", "p": 0.1}]})


@pytest.mark.parametrize("recipe", [{"label_noise": 0.1}, {"Label-Noise": 0.1, "seed": 1},
                                    {"sample": [{"op": "one_of", "ops": [{"op": "label_noise"}]}]},
                                    {"image": [{"op": "some_of", "n": 1,
                                                "ops": [{"op": "hflip"}, {"op": "noisy_labels"}]}]}])
def test_label_noise_as_a_section_or_inside_one_of_points_to_the_trainer_option(recipe: dict) -> None:
    """QA33 review: a top-level ``label_noise:`` key and a label_noise step inside one_of got no pointer."""
    with pytest.raises(RecipeError, match=r"unknown .*(section|op).*`mmdata train --label-noise F`.*"
                                          r"controls: \{label_noise: F\}") as info:
        load_recipe(recipe)
    assert str(info.value).count("--label-noise") == 1


def test_preview_shows_a_regression_target(tmp_path: Path) -> None:
    from mmdata.augment.preview import preview_figure, summary_lines

    d = _audio_dataset(tmp_path, meta=True)
    summary: list[dict] = []
    fig = preview_figure(d, {"audio": [{"op": "gain", "p": 1.0}]}, n=2, variants=1, summary=summary)
    assert all("score" in r["values"] for r in summary)
    texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("score: " in t for t in texts), texts
    assert all(", score " in line for line in summary_lines(summary) if line.startswith("row "))
    json.dumps(summary)  # the --json listing


def test_train_warns_of_recipe_sections_for_modalities_it_does_not_read(tmp_path: Path) -> None:
    """QA33 onemodality #3, the trainer's part: an image section on an audio-only dataset trained silently."""
    import soundfile as sf

    from mmdata.train import train

    for c, name in enumerate(("yes", "no")):
        (tmp_path / "raw" / name).mkdir(parents=True)
        for i in range(6):
            t = np.arange(1600) / 16000
            sf.write(tmp_path / "raw" / name / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 200 * c + 10 * i) * t), 16000)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    with pytest.warns(UserWarning, match="recipe: section 'image' .*has no effect: the training of"):
        m = train(tmp_path / "ds", recipe={"image": [{"op": "hflip"}]}, epochs=1, threads=1, batch_size=4,
                  eval_robustness=False, out=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["warnings"]
    assert [w for w in saved if "section 'image'" in w] == [w for w in m["warnings"] if "section 'image'" in w] != []
    assert any("no step can act on what the model reads (audio)" in w for w in saved), saved
