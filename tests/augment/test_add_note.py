"""The "in recipe step ..." context reaches Python 3.10 users too: 3.10 has no ``BaseException.add_note``
(the call raised AttributeError, which was swallowed, so the note vanished). Simulated here by an
exception type on which ``add_note`` is absent."""

from __future__ import annotations

import pytest

import mmdata
from mmdata.augment import contract


class NoNotes(ValueError):
    """As on Python 3.10: no add_note attribute."""

    @property
    def add_note(self) -> None:  # type: ignore[override]
        raise AttributeError("add_note")


def _op() -> object:
    return mmdata.load_recipe({"image": [{"op": "hflip", "p": 1.0}]}).steps[0].op


def test_note_without_add_note() -> None:
    exc = NoNotes("bad pixel")
    assert not hasattr(exc, "add_note")
    contract.note(exc, _op(), "k3")
    assert getattr(exc, "__notes__") == ["mmdata: in recipe step image[0] (op image.hflip) on sample 'k3'"]
    assert str(exc) == "bad pixel\nmmdata: in recipe step image[0] (op image.hflip) on sample 'k3'"
    contract.note(exc, _op(), "k4")  # once: the innermost step wins
    assert len(getattr(exc, "__notes__")) == 1 and "k4" not in str(exc)


def test_note_keeps_other_messages_as_they_are() -> None:
    exc = NoNotes("a", 2)  # not a one-message exception: its args stay, the note goes to __notes__
    contract.add_note(exc, "n")
    assert exc.args == ("a", 2) and getattr(exc, "__notes__") == ["n"]

    class NoNotesKey(KeyError):
        add_note = NoNotes.add_note

    key = NoNotesKey("k")  # a KeyError prints repr(arg): its args stay too
    contract.add_note(key, "n")
    assert key.args == ("k",) and getattr(key, "__notes__") == ["n"]


def test_note_with_add_note() -> None:
    exc = ValueError("bad pixel")
    contract.note(exc, _op(), ["a", "b"])
    assert str(exc) == "bad pixel"  # 3.11+: a real note, printed by the traceback
    assert getattr(exc, "__notes__") == ["mmdata: in recipe step image[0] (op image.hflip) on a batch of 2 samples ('a', 'b')"]


def test_no_other_add_note_call() -> None:
    """Every note goes through the helper: a bare ``exc.add_note(...)`` is a 3.11+ call."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    calls = [(p.relative_to(root).as_posix(), line.strip()) for folder in ("mmdata", "cli") for p in (root / folder).rglob("*.py")
             for line in p.read_text(encoding="utf-8").splitlines() if ".add_note(" in line]
    assert calls == [("mmdata/augment/contract.py", "exc.add_note(text)")]  # the helper's own, where it exists


@pytest.mark.parametrize("exc", [ValueError("x"), NoNotes("x")])
def test_note_of_a_failing_op_in_a_recipe(exc: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing op applied by a recipe: the error names the step, with or without add_note."""
    import torch

    rec = mmdata.load_recipe({"image": [{"op": "hflip", "p": 1.0}]})
    op = rec.steps[0].op

    def boom(*a: object, **k: object) -> object:
        raise exc

    monkeypatch.setattr(type(op), "draw", boom)
    sample = mmdata.Sample("k3", {"image": torch.zeros((3, 4, 4), dtype=torch.uint8)})
    with pytest.raises(type(exc)) as info:
        rec.apply_sample(sample)
    assert "mmdata: in recipe step image[0] (op image.hflip) on sample 'k3'" in getattr(info.value, "__notes__", [])
