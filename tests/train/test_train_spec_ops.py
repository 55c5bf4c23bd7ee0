"""The bundled trainer computes its own log-mel from the waveform: a recipe's ``freq_mask`` (or ``time_mask``
on ``spec``) changes nothing it trains on, and the run says so in its warnings (QA 2026-12-03: silent)."""

from __future__ import annotations

from pathlib import Path

from mmdata.train import train


def test_spec_ops_are_named_in_the_runs_warnings(avdigits4: Path, tmp_path: Path) -> None:
    recipe = {"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "gain", "p": 0.5}, {"op": "logmel"},
                                                                     {"op": "freq_mask", "p": 0.5}]}
    m = train(avdigits4, epochs=1, seed=0, out=tmp_path, threads=1, eval_robustness=False, recipe=recipe)
    said = [w for w in m["warnings"] if "act on 'spec'" in w]
    assert len(said) == 1 and "normalize.audio[0], audio[1], audio[2]" in said[0] and "never reads 'spec'" in said[0]
    plain = train(avdigits4, epochs=1, seed=0, threads=1, eval_robustness=False, recipe={"audio": [{"op": "gain"}]},
                  modalities=["image", "audio"])
    assert not any("'spec'" in w for w in plain.get("warnings", []))
