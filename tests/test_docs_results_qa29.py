"""README's Results and exit-status reference agree with the tables, figures and code they summarise (QA29 docs)."""

from __future__ import annotations

import re
from pathlib import Path

from mmdata.cli.ablate import EXIT_FAIL_ON
from mmdata.cli.main import EXIT_BUSY, EXIT_STATUS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _main_job() -> str:
    """README's "The main job" section up to the figures of the code before the encoder fix."""
    start = README.index("### The main job")
    return README[start:README.index("**Before the encoder fix**", start)]


def _tables(section: str) -> list[dict[str, str]]:
    """Each demo table of ``section`` as {op short name: first word of its decision}."""
    out: list[dict[str, str]] = []
    for block in re.split(r"\n(?!\|)", section):
        rows = re.findall(r"^\| ([-\w.]+(?: \(A/A\))?[^|]*?) \|.*\| ([a-z]+)[^|]*\|$", block, flags=re.M)
        if rows:
            out.append({arm.split()[0].split(".")[-1]: decision for arm, decision in rows if arm != "arm"})
    return [t for t in out if t]


def test_results_prose_names_each_declared_op_as_each_table_reads_it() -> None:
    """The summary said "no other op is declared to help or hurt" beside a table declaring token_mask `helps`."""
    section = _main_job()
    epyc, xeon = _tables(section)
    declared = {op for t in (epyc, xeon) for op, d in t.items() if d in ("helps", "hurts")}
    after_first = section[section.index("| label_noise"):section.index("**Fresh clone of 02c1a55")]
    for op in declared:
        assert op in after_first, f"the summary under the first demo table does not name {op}"
    differ = sorted(op for op in declared if epyc.get(op) != xeon.get(op))
    assert differ == ["token_mask"]
    conclusion = README[README.index("At this short 6-epoch budget"):README.index("The demo skips the")]
    assert "token masking" in conclusion and "Xeon" in conclusion and "EPYC" in conclusion


def test_results_md_holds_the_demo_result_readme_headlines() -> None:
    head = re.search(r"\*\*Fresh clone of (\w+), [^(]*\(([^)]+)\):\*\*.*?\*\*(\d+) runs\*\*", _main_job(), flags=re.S)
    assert head
    commit, machine, runs = head.groups()
    baseline = re.search(r"full recipe \((\d+\.\d+ ± \d+\.\d+)%", _main_job()).group(1)
    results = (ROOT / "benchmarks/RESULTS.md").read_text(encoding="utf-8")
    assert f"fresh clone of {commit}" in results, f"benchmarks/RESULTS.md has no entry for README's headline {commit}"
    entry = results[results.index(f"fresh clone of {commit}"):]
    entry = entry[:entry.index("\n## ")]
    assert machine.split()[-1] in entry and f"{runs} runs" in entry and baseline in entry
    status = next(line for line in README.splitlines() if line.startswith("| Ablation runner"))
    assert f"{runs} runs" in status and commit in status


def test_every_readme_footnote_has_a_marker() -> None:
    for line in README.splitlines():
        if line.startswith("\\* "):
            assert README.count("\\*") > 1, f"footnote without a marker: {line[:60]}"


def test_exit_status_help_and_readme_table_name_every_status_and_command() -> None:
    table = README[README.index("#### Exit status"):README.index("## Results")]
    statuses = re.findall(r"^\| (\d+) \|", table, flags=re.M)
    assert str(EXIT_FAIL_ON) in statuses and str(EXIT_BUSY) in statuses
    for status in statuses:
        assert re.search(rf"\b{status}\b", EXIT_STATUS), f"mmdata --help leaves out exit {status}"
    one = next(line for line in table.splitlines() if line.startswith("| 1 |"))
    for command in ("verify", "shard --max-skipped", "diff --fail-on", "ablate", "ablate-folds"):
        assert command in one, f"README's exit 1 row leaves out {command}"
        assert command in EXIT_STATUS, f"mmdata --help's exit 1 leaves out {command}"
    assert "ablate --fail-on" in EXIT_STATUS


def test_crossmodal_audit_chance_is_the_audits_and_metrics_chance_is_named() -> None:
    doc = (ROOT / "docs/crossmodal.md").read_text(encoding="utf-8")
    start = doc.index("R@1 4.2% against")
    line = doc[start:doc.index("Δ = augmented − clean", start)]
    assert "0.8%" in line and "0.56%" in line and "178" in line
