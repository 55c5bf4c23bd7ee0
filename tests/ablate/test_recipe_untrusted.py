"""Ablation recipes are untrusted input (a QA pass): the recipe files they name stay inside their folder and
their contents are never echoed; the ablation loader reads YAML as strictly as the augment loader (one
shared reader: duplicate keys, alias bombs, deep nesting, a byte cap, FIFOs and devices); the number of
arms and runs is capped; arm names are checked; the CLI escapes them; a failed Ray connection writes nothing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata import safe_yaml
from mmdata.ablate import run
from mmdata.ablate.design import MAX_ARMS, MAX_RUNS, load_ablation
from mmdata.augment.recipe import load_recipe
from mmdata.errors import MMDataError, RecipeError

SYN = "mmdata.ablate.testing:synthetic_train"
SECRET = "AKIAFAKEKEY123"
FLIP = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("untrusted") / "av", limit=4, progress=False)


@pytest.fixture
def abl(tmp_path: Path) -> Path:
    """``abl/`` for the ablation recipe, with ``secret/credentials`` beside it."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "credentials").write_text(f"[default]\naws_access_key_id = {SECRET}\n")
    (tmp_path / "abl").mkdir()
    return tmp_path / "abl"


def _explicit(folder: Path, arms: Any, name: str = "ab.yaml", baseline: Any = None) -> Path:
    cfg = {"trainer": {"entry": SYN}, "seeds": 4, "design": {"mode": "explicit", "baseline": baseline, "arms": arms}}
    (folder / name).write_text(yaml.safe_dump(cfg))
    return folder / name


def _refused(source: Any, *says: str, **kw: Any) -> str:
    with pytest.raises(RecipeError) as exc:
        load_ablation(source, own_trainer=True, **kw)
    msg = str(exc.value)
    for s in says:
        assert s in msg, msg
    assert SECRET not in msg and "aws_access_key_id" not in msg, msg
    return msg


# 1: recipe files an ablation recipe names ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["../secret/credentials", "ABS", "link", "sub/../../secret/credentials"])
def test_a_recipe_file_outside_the_ablation_recipes_folder_is_refused(abl: Path, name: str) -> None:
    secret = abl.parent / "secret" / "credentials"
    (abl / "link").symlink_to(secret)
    (abl / "sub").mkdir()
    name = str(secret) if name == "ABS" else name
    msg = _refused(_explicit(abl, {"a": name}), "design.arms.a: recipe file", "is outside the ablation recipe's folder")
    assert "no '..'" in msg and "no link leading out" in msg
    _refused(_explicit(abl, None, baseline=name), "design.baseline: recipe file")
    loo = {"trainer": {"entry": SYN}, "seeds": 4, "design": {"mode": "leave_one_out", "recipe": name}}
    (abl / "loo.yaml").write_text(yaml.safe_dump(loo))
    _refused(abl / "loo.yaml", "design.recipe: recipe file")


def test_a_resolved_configs_recipe_file_stays_inside_its_folder_too(abl: Path) -> None:
    cfg = {"trainer": {"entry": SYN}, "seeds": 4,
           "arms": [{"name": "baseline", "kind": "baseline", "recipe": None},
                    {"name": "a", "kind": "arm", "recipe": "../secret/credentials"}]}
    (abl / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
    _refused(abl / "config.resolved.yaml", "arms[1].recipe: recipe file", "is outside")


def test_the_cli_refuses_the_leak_in_one_line_without_the_secret(abl: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    (abl / "leak1.yaml").write_text("seeds: 4\ndesign: {mode: explicit, arms: {a: ../secret/credentials}}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["ablate", str(abl / "leak1.yaml"), "--out", str(tmp_path / "O")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "design.arms.a" in err and "outside" in err and SECRET not in err, err
    assert not (tmp_path / "O").exists()


def test_a_relative_recipe_file_is_looked_up_next_to_the_ablation_recipe_not_in_the_cwd(
        abl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "aug.yaml").write_text("image: [{op: vflip, p: 0.5}]\n")  # in the working directory: not this one
    (abl / "aug.yaml").write_text("image: [{op: hflip, p: 0.5}]\n")
    (abl / "sub").mkdir()
    (abl / "sub" / "cut.yaml").write_text("image: [{op: cutout, p: 0.5}]\n")
    monkeypatch.chdir(tmp_path)
    ab = load_ablation(_explicit(abl, {"a": "aug.yaml", "b": "sub/cut.yaml", "c": str(abl / "aug.yaml")}), own_trainer=True)
    ops = {a.name: [s["op"] for s in (a.recipe or {}).get("image", [])] for a in ab.arms}
    assert ops == {"baseline": [], "a": ["hflip"], "b": ["cutout"], "c": ["hflip"]}
    # a mapping (the Python API) has no folder: its recipe files are in the working directory
    monkeypatch.chdir(abl)
    got = load_ablation({"trainer": {"entry": SYN}, "design": {"mode": "explicit", "arms": {"a": "aug.yaml"}}}, own_trainer=True)
    assert got.arms[1].recipe["image"][0]["op"] == "hflip"
    _refused({"trainer": {"entry": SYN}, "design": {"mode": "explicit", "arms": {"a": "../aug.yaml"}}},
             "design.arms.a: recipe file '../aug.yaml' is outside the working directory")


@pytest.mark.parametrize("content, says", [
    (f"[default]\naws_access_key_id = {SECRET}\n", "is not a valid recipe: invalid YAML (line 2)"),
    (f"root:x:0:0:{SECRET}:/root\ndaemon:x:1:1::/usr/sbin\n", "is not a valid recipe: expected a mapping with sections"),
    (f"aws_access_key_id: {SECRET}\npassword: hunter2\n", "and it has none of them"),
    (f"aws_access_key_id: {SECRET}\naws_access_key_id: {SECRET}\n", "duplicate key on line 2"),
    (b"key = \xe9" + SECRET.encode(), "not UTF-8 text (the byte at offset 6 is not UTF-8)"),
])
def test_errors_about_a_named_files_content_never_quote_it(abl: Path, content: Any, says: str) -> None:
    p = abl / "junk"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    msg = _refused(_explicit(abl, {"a": "junk"}), "design.arms.a: recipe file 'junk'", says)
    assert "hunter2" not in msg and "root" not in msg and "password" not in msg


def test_a_named_real_recipe_with_a_mistake_names_its_key(abl: Path) -> None:
    (abl / "aug.yaml").write_text("image: [{op: hflip, p: 1.5}]\n")
    _refused(_explicit(abl, {"a": "aug.yaml"}), "design.arms.a (aug.yaml): image[0].p")


def test_the_bundled_ablation_recipes_still_load() -> None:
    root = Path(__file__).parents[2]
    for p in (*sorted((root / "recipes" / "ablations").glob("*.yaml")), root / "examples" / "custom_ablation.yaml"):
        assert len(load_ablation(p, own_trainer=True, trust_code=p.parent.name == "examples").arms) >= 2, p  # its entry


# 2: one shared safe reader -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ("seeds: 2\nseeds: 3\ndesign: {mode: explicit, arms: {a: null}}\n", "duplicate key 'seeds' on line 2"),
    ("design:\n  mode: explicit\n  arms:\n    a: {image: [{op: hflip}]}\n    a: {image: [{op: vflip}]}\n",
     "duplicate key 'a' on line 5"),
    ("design: {mode: explicit, arms: {a: {image: [{op: hflip, p: 0.5, p: 0.9}]}}}\n", "duplicate key 'p' on line 1"),
    ("design: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply for the YAML parser"),
])
def test_the_ablation_loader_reads_yaml_as_strictly_as_the_augment_loader(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "ab.yaml").write_text(text)
    msg = _refused(tmp_path / "ab.yaml", says)
    assert msg.startswith(f"ablation recipe {tmp_path / 'ab.yaml'}: ")


def _alias_bomb() -> str:
    lines = ["b0: &b0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "trainer:\n  entry: " + SYN + "\n" + "".join(f"  {line}\n" for line in lines)


def test_an_alias_bomb_in_trainer_extras_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "ab.yaml").write_text(_alias_bomb() + "seeds: 4\ndesign: {mode: explicit, arms: {a: null}}\n")
    _refused(tmp_path / "ab.yaml", "more than 100000 values")  # was: 46 s, then a MemoryError at 2.2 GB in the run hash
    with pytest.raises(RecipeError, match=r"more than 100000 values once YAML aliases are expanded"):
        run(tmp_path / "ab.yaml", tmp_path / "O", workers=1, progress=False, plots=False, on_warning=lambda m: None)
    assert not (tmp_path / "O").exists()
    # also as a mapping from the Python API (its shared lists would expand in the run hash's json.dumps)
    b: Any = [1] * 10
    for _ in range(8):
        b = [b] * 10
    _refused({"trainer": {"entry": SYN, "b": b}, "design": {"mode": "explicit", "arms": {"a": None}}}, "more than 100000 values")


def test_the_value_cap_stops_the_parser_early() -> None:
    with pytest.raises(RecipeError, match=r"r: more than 10 values"):  # stopped before the syntax error at the end
        safe_yaml.parse("[" + "1, " * 50 + "{", "r", max_values=10)
    assert safe_yaml.parse("[" + "1, " * 9 + "]", "r", max_values=10) == [1] * 9


# 3: a byte cap before parsing ----------------------------------------------------------------------------
def test_a_recipe_file_over_the_byte_cap_is_refused_unparsed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as f:  # 1,000,000 steps (12 MB) took over a minute and 2 GB before the value cap
        f.write("image: [" + "{op: hflip}," * 1_000_000 + "]\n")
    with pytest.raises(RecipeError, match=rf"recipe {big}: .* over the 4 MiB a recipe file may have"):
        load_recipe(big)
    big.write_bytes(b"design: {mode: explicit}\n" + b"#" * safe_yaml.MAX_BYTES)
    _refused(big, f"ablation recipe {big}: ", "over the 4 MiB")
    (tmp_path / "abl").mkdir()
    os.replace(big, tmp_path / "abl" / "big.yaml")
    _refused(_explicit(tmp_path / "abl", {"a": "big.yaml"}), f"design.arms.a: recipe {tmp_path / 'abl' / 'big.yaml'}: ",
             "over the 4 MiB")


# 4: FIFO, device, folder ---------------------------------------------------------------------------------
def _returns(fn: Any, timeout: float = 20) -> BaseException | None:
    """What ``fn`` raised (None: nothing), failing when it blocks (as opening a FIFO does)."""
    got: list[BaseException | None] = []

    def call() -> None:
        try:
            fn()
            got.append(None)
        except BaseException as exc:  # noqa: BLE001 — handed to the test
            got.append(exc)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(timeout)
    assert got, f"still blocked after {timeout} s"
    return got[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_device_or_folder_is_named_as_such_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = [(lambda: load_recipe(fifo), f"recipe {fifo} is a FIFO (named pipe), not a regular file"),
             (lambda: load_recipe(str(fifo)), "is a FIFO (named pipe), not a regular file"),
             (lambda: load_ablation(fifo), f"ablation recipe {fifo} is a FIFO (named pipe), not a regular file"),
             (lambda: load_ablation(tmp_path), f"ablation recipe {tmp_path} is a folder, not a recipe file"),
             (lambda: load_ablation(tmp_path / "nope.yaml"), "ablation recipe file"),
             (lambda: load_ablation(_explicit(tmp_path, {"a": "fifo.yaml"})), f"design.arms.a: recipe {fifo} is a FIFO")]
    if Path("/dev/zero").exists():
        cases.append((lambda: load_recipe("/dev/zero"), "recipe /dev/zero is a character device, not a regular file"))
        cases.append((lambda: load_ablation("/dev/zero"), "ablation recipe /dev/zero is a character device"))
    for fn, says in cases:
        exc = _returns(fn)
        assert isinstance(exc, RecipeError) and says in str(exc), (says, exc)


# 5: caps on arms and runs; a linear identity-shift check ------------------------------------------------
def test_arms_and_arms_times_seeds_are_capped_when_the_recipe_loads() -> None:
    arms = {f"a{i}": None for i in range(5000)}
    _refused({"seeds": 1000, "design": {"mode": "explicit", "arms": arms}}, "design.arms: 5001 arms",
             f"at most {MAX_ARMS}")
    many = {f"a{i}": None for i in range(MAX_ARMS - 1)}
    msg = _refused({"seeds": 1000, "design": {"mode": "explicit", "arms": many}}, "design, seeds:", f"at most {MAX_RUNS} runs")
    assert f"{MAX_ARMS} arms x 1000 seeds" in msg
    _refused({"design": {"mode": "sweep", "section": "image", "op": "cutout", "param": "p",
                         "values": [0.01 * i for i in range(MAX_ARMS + 1)]}}, "design.values:", f"at most {MAX_ARMS}")
    resolved = {"seeds": 1000, "arms": [{"name": "baseline", "kind": "baseline"}] + [{"name": f"a{i}"} for i in range(200)]}
    _refused(resolved, "arms, seeds: 201 arms x 1000 seeds")


def test_a_leave_one_out_whose_resolved_config_would_not_load_back_is_refused() -> None:
    steps = [{"op": "cutout", "id": f"c{i}", "p": 0.5} for i in range(300)]
    _refused({"seeds": 4, "design": {"mode": "leave_one_out", "recipe": {"image": steps}}}, "design: the 302 arms' recipes",
             "config.resolved.yaml")


class _Counted(dict):
    """A step that counts how often it is compared."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Counted.compared += 1
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def test_identity_shifts_are_found_in_linear_time() -> None:
    from mmdata.ablate.design import _identity_shifts

    n = 2000
    base = {"image": [_Counted(op="cutout", p=0.5, size=[0.1, 0.1 + i / n]) for i in range(n)]}
    arm = {"image": base["image"][1:]}  # the first removed: every other cutout's identity shifts by one
    _Counted.compared = 0
    shifts = _identity_shifts(base, arm)
    assert len(shifts) == n - 1 and shifts[0] == ("image.cutout", "image.cutout#1", "image.cutout#0")
    assert _Counted.compared <= 4 * n  # pairwise scans compared ~n^2 = 4,000,000 times


# 6: arm names reach rich escaped --------------------------------------------------------------------------
def test_arm_names_with_rich_markup_print_as_written(tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    import mmdata.cli.ablate as cli_ablate

    arms = {"[/]": {"image": [{"op": "cutout", "p": 0.5}]}, "[click](http://evil)": {"audio": [{"op": "noise", "p": 0.5}]},
            "[bold]x": None}
    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"entry": SYN}, "seeds": 2,
           "design": {"mode": "explicit", "arms": arms}, "controls": {"identity": False}}
    s = run(cfg, tmp_path / "O", workers=1, progress=False, plots=False, on_warning=lambda m: None)
    s["failures"] = [{"arm": "[/]", "seed": 0, "error": "RuntimeError: [red]x[/] [/]"}]
    con = Console(record=True, width=300, force_terminal=False)
    monkeypatch.setattr(cli_ablate, "console", con)
    cli_ablate._print_summary(s, tmp_path / "[O]")
    text = con.export_text()
    for name in arms:
        assert name in text, text
    assert "failed [/] seed 0: RuntimeError: [red]x[/] [/]" in text and "[O]/report.md" in text


# 7: arm names are checked ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ('"": null', "an arm name must not be empty"),
    ('"x | y\\nz": null', "has '\\n', '|'"),
    ('"<b>bold</b>": null', "has '<', '>'"),
    ('" a": null', "starts or ends with a space"),
    ("null: null", "arm name None is a YAML null, not a string"),
    ("true: null", "arm name True is a YAML boolean"),
    ("1.10: null", "arm name 1.1 is a YAML number"),
    ("2024-01-01: null", "is a YAML date"),
    ("identity: {image: [{op: hflip, p: 0.5}]}", "'identity' is reserved for the identity (A/A) control"),
    ("label_noise: null", "'label_noise' is reserved for the label-noise control"),
    ("baseline: null", "'baseline' is reserved for the baseline"),
    (f"{'a' * 101}: null", "has 101 characters; at most 100"),
])
def test_arm_names_are_checked(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "ab.yaml").write_text("design:\n  mode: explicit\n  arms:\n    " + text + "\n")
    _refused(tmp_path / "ab.yaml", "design.arms: ", says)


def test_arm_names_of_a_resolved_config_and_a_sweep_are_checked() -> None:
    base = {"name": "baseline", "kind": "baseline"}
    _refused({"arms": [base, {"name": "a|b"}]}, "arms[1].name: arm name 'a|b' has '|'")
    _refused({"arms": [base, {"name": "identity", "kind": "arm"}]}, "arms[1].name: the arm name 'identity' is reserved")
    assert [a.name for a in load_ablation({"arms": [base, {"name": "identity", "kind": "control"}]}, own_trainer=True).arms] == \
        ["baseline", "identity"]
    _refused({"design": {"mode": "sweep", "section": "text", "op": "word_swap", "param": "p", "values": [0.5, "a|b"]}},
             "design.values[1]: arm name 'word_swap.p=a|b' has '|'")


# 8: tracebacks that were -----------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe, says", [
    ({"design": {"mode": "sweep", "section": "image", "op": "cutout", "param": ["size"], "values": [0.1]}},
     "design.param: expected the name of one of the op's parameters (a string, e.g. size), got ['size']"),
    ({"design": {"mode": "sweep", "section": "image", "op": ["cutout"], "param": "size", "values": [0.1]}}, "design.op: expected"),
    ({"design": {"mode": "sweep", "section": ["image"], "op": "cutout", "param": "size", "values": [0.1]}},
     "design.section: ['image'] is not allowed"),
    ({"design": {"mode": "sweep", "section": "image", "op": "cutout", "param": "op", "values": ["hflip"]}}, "design.param:"),
    ({"arms": [{"name": "baseline", "kind": "baseline"}, {"name": "a", "label_noise": "abc"}]},
     "arms[1].label_noise: expected a fraction in [0, 1), got 'abc'"),
    ({"arms": [{"name": "baseline", "kind": "baseline"}, {"name": "a", "label_noise": [1]}]}, "arms[1].label_noise: expected"),
    ({"arms": [{"name": "baseline", "kind": "baseline"}, {"name": "a", "label_noise": True}]}, "arms[1].label_noise: expected"),
    ({"arms": [{"name": "baseline", "kind": "baseline"}, {"name": "a", 1: 2, "x": 3}]}, "arms[1]: unknown key(s) [1, 'x']"),
    ({"design": {"mode": "explicit", "arms": {"a": 5}}}, "design.arms.a: expected a recipe"),
    ({1: 2, "design": {"mode": "explicit", "arms": {"a": None}}}, "ablation recipe: unknown key(s) [1]"),
])
def test_mistakes_that_were_tracebacks_name_the_key(recipe: dict, says: str) -> None:
    _refused(recipe, says)


# 9: a failed Ray connection writes nothing ----------------------------------------------------------------
def test_a_failed_ray_connection_leaves_no_folder(tmp_path: Path) -> None:
    """A real failed `ray.init` in a fresh process: a Ray Client address where nothing listens (not "auto",
    which joins any Ray instance running on the machine, another test's included). The error comes
    before anything is written."""
    pytest.importorskip("ray")
    import subprocess
    import sys

    cfg = {"trainer": {"entry": SYN}, "seeds": 4, "design": {"mode": "explicit", "arms": {"a": None}}}
    code = ("import sys\nfrom mmdata.ablate import run\nfrom mmdata.errors import MMDataError\ntry:\n"
            f"    run({cfg!r}, {str(tmp_path / 'runs' / 'x')!r}, executor='ray', address='ray://127.0.0.1:1', progress=False)\n"
            "except MMDataError as e:\n    print(e); sys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 3 and "cannot connect to Ray at ray://127.0.0.1:1" in res.stdout, res.stderr[-2000:]
    assert not (tmp_path / "runs").exists()


@pytest.mark.ray
def test_a_ray_connection_survives_a_setup_that_fails_after_it(tmp_path: Path, tiny: Path, ray_cluster) -> None:  # noqa: ANN001
    """The Ray executor is made before the folder; setting the runs up can still fail after it (here the
    folder is locked by another job): it is closed once, and the next ablation on the cluster runs."""
    from mmdata.shards.journal import JobLock

    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"entry": SYN}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"a": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    (tmp_path / "O").mkdir()
    with JobLock(tmp_path / "O", "another mmdata ablate"), pytest.raises(MMDataError, match="another mmdata ablate"):
        run(cfg, tmp_path / "O", executor="ray", progress=False, plots=False, on_warning=lambda m: None)
    s = run(cfg, tmp_path / "O", executor="ray", progress=False, plots=False, on_warning=lambda m: None)
    assert s["runs"]["ok"] == 4 and s["runs"].get("failed", 0) == 0  # baseline and a, 2 seeds each


def test_the_resolved_config_round_trips_through_the_safe_reader(tmp_path: Path, tiny: Path) -> None:
    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"entry": SYN}, "seeds": 2,
           "design": {"mode": "explicit", "baseline": FLIP, "arms": {"cut": {"image": [{"op": "cutout", "p": 0.5}]}}}}
    s = run(cfg, tmp_path, workers=1, progress=False, plots=False, on_warning=lambda m: None)
    again = run(tmp_path / "config.resolved.yaml", tmp_path, workers=1, progress=False, plots=False, on_warning=lambda m: None)
    assert again["runs"]["ok"] == s["runs"]["ok"] and json.loads((tmp_path / "summary.json").read_text())["arms"]
