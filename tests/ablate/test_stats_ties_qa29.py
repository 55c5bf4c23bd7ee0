"""QA29 stats #1: on a coarse metric an inverted sign-flip interval's end sits on tied seeds' value (an A/A control
read [+0.00, +10.78] at 99.2%); the summary now counts the seeds on each end and the report says what it means."""

from __future__ import annotations

from mmdata.ablate.report import tie_text
from mmdata.ablate.stats import analyze, end_ties, sign_flip_p

# the QA persona's r2 identity arm: accuracy on a 34-example split, Δ in steps of 2.94 points
IDENTITY = [2.94, 0.0, 0.0, 5.88, 14.71, 2.94, 0.0, 2.94, 0.0, 11.76]


def test_an_end_on_tied_seeds_is_counted_and_explained() -> None:
    r = analyze({"identity": dict(enumerate(IDENTITY))}, alpha=0.05 / 6, delta=9.35)["identity"]
    assert r["ci"][0] == 0.0 and sign_flip_p(IDENTITY) > 0.05 / 6  # the end at 0 is the 4 ties, not a rejection
    r["ci_end_ties"] = end_ties(IDENTITY, r["ci"])  # as the report adds it to summary.json's primary
    assert r["ci_end_ties"] == [4, 0]
    text = " ".join(tie_text([{"name": "identity", "decision": r["decision"], "primary": {**r}}]))
    assert "`identity` [+0.00, +10.78]: its lower end is the Δ that 4 of its 10 seeds share" in text
    assert "not 'not worse'" in text


def test_a_continuous_metric_has_no_tie_note() -> None:
    d = {s: 0.3 + 0.17 * s - 0.05 * s * s for s in range(10)}
    r = analyze({"a": d}, delta=1.0)["a"]
    r["ci_end_ties"] = end_ties(list(d.values()), r["ci"])
    assert r["ci_end_ties"] == [0, 0]
    assert tie_text([{"name": "a", "decision": r["decision"], "primary": r}]) == []
