"""Registering a plug-in fusion behaves like registering an op (QA24 persona A, #3): the same class defined
again — ``importlib.reload``, a notebook cell run twice — replaces the old one (both raised ``fusion 'sumfuse'
registered twice``, a reload failing halfway); a clash between different classes names both classes and
modules; a decorated object that is not a ``Fusion`` subclass is refused, named."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mmdata.train import FusionModel
from mmdata.train.fusions import FUSIONS, ConcatFusion, Fusion, register

MODULE = '''
import torch
from torch import nn

from mmdata.train.fusions import Fusion, register


@register("sumfuse")
class SumFusion(Fusion):
    """Sum the features of the modalities present, then a linear head."""

    VERSION = {version}

    def __init__(self, mods, d, classes, low_dims):
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d, classes)

    def forward(self, feats, present, low):
        return self.head(torch.stack([feats[m] for m in self.mods], 1).sum(1))
'''


@pytest.fixture(autouse=True)
def _fusions_restored() -> Iterator[None]:
    before = dict(FUSIONS)
    yield
    FUSIONS.clear()
    FUSIONS.update(before)


def test_reload_replaces_the_fusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myfusions_qa24.py").write_text(MODULE.format(version=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        mod = importlib.import_module("myfusions_qa24")
        assert FUSIONS["sumfuse"].VERSION == 1
        (tmp_path / "myfusions_qa24.py").write_text(MODULE.format(version=2))
        importlib.invalidate_caches()
        importlib.reload(mod)
        assert FUSIONS["sumfuse"] is mod.SumFusion and mod.SumFusion.VERSION == 2
        model = FusionModel(["image", "text"], "sumfuse", classes=3)
        assert type(model.fusion) is mod.SumFusion
    finally:
        sys.modules.pop("myfusions_qa24", None)


def test_a_notebook_cell_run_twice_replaces_the_fusion() -> None:
    for version in (1, 2):
        ns: dict[str, Any] = {"__name__": "__main__"}
        exec(MODULE.format(version=version), ns)  # noqa: S102 - what a notebook does with a cell
    assert FUSIONS["sumfuse"].VERSION == 2 and FUSIONS["sumfuse"].fusion_name == "sumfuse"


def test_a_clash_names_both_classes_and_modules() -> None:
    exec(MODULE.format(version=1), {"__name__": "labmate_fusions"})  # noqa: S102
    with pytest.raises(RuntimeError, match=r"fusion 'sumfuse' registered twice: mine_fusions.SumFusion \(module "
                                           r"mine_fusions\) and labmate_fusions.SumFusion \(module labmate_fusions\); "
                                           r"pass another name to @register\(\.\.\.\) on SumFusion"):
        exec(MODULE.format(version=2), {"__name__": "mine_fusions"})  # noqa: S102
    assert FUSIONS["sumfuse"].__module__ == "labmate_fusions"  # the registered one stays
    code = MODULE.format(version=1).replace('"sumfuse"', '"concat"')
    with pytest.raises(RuntimeError, match=r"fusion 'concat' registered twice: mine_fusions.SumFusion \(module "
                                           r"mine_fusions\) and mmdata.train.fusions.ConcatFusion \(module "
                                           r"mmdata.train.fusions\)"):
        exec(code, {"__name__": "mine_fusions"})  # noqa: S102
    assert FUSIONS["concat"] is ConcatFusion


def test_something_that_is_not_a_fusion_is_refused_by_name() -> None:
    class NotAFusion:
        def forward(self, feats, present, low):  # noqa: ANN001, ANN201
            return None

    with pytest.raises(TypeError, match=r"@register\('oops'\): .*NotAFusion is not a subclass of "
                                        r"mmdata.train.fusions.Fusion; subclass Fusion"):
        register("oops")(NotAFusion)
    with pytest.raises(TypeError, match=r"@register\('oops2'\): .*forward.* is not a subclass"):
        register("oops2")(NotAFusion.forward)
    assert "oops" not in FUSIONS and "oops2" not in FUSIONS


def test_a_name_that_is_not_a_nonempty_string_is_refused() -> None:
    exec_ns: dict[str, Any] = {"__name__": "mine_fusions"}
    for bad in ("", 3):
        with pytest.raises(TypeError, match=r"@register\(.*\): a fusion's name is a non-empty string"):
            exec(MODULE.format(version=1).replace('"sumfuse"', repr(bad)), exec_ns)  # noqa: S102


def test_a_plugin_fusion_that_asks_for_low_level_inputs_gets_them() -> None:
    """``low`` was filled only for the fusion named ``early``: a plug-in fusion reading it (uses_encoders =
    False, like ``early``) got an empty dict."""
    from mmdata import Sample, collate

    seen: dict[str, tuple[int, ...]] = {}

    @register("low_sum")
    class LowSum(Fusion):
        uses_encoders = False
        uses_low = True

        def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
            super().__init__(mods, d, classes, low_dims)
            self.heads = nn.ModuleDict({m: nn.Linear(low_dims[m], classes) for m in self.mods})

        def forward(self, feats, present, low):  # noqa: ANN001, ANN201
            seen.update({m: tuple(v.shape) for m, v in low.items()})
            assert not feats
            return sum(self.heads[m](low[m] * present[m][:, None]) for m in self.mods)

    model = FusionModel(["image", "text"], "low_sum", classes=3)
    batch = collate([Sample("a", {"image": torch.zeros(1, 16, 16, dtype=torch.uint8), "text": "odd"}),
                     Sample("b", {"image": torch.zeros(1, 16, 16, dtype=torch.uint8)})])
    assert tuple(model(batch).shape) == (2, 3)
    assert seen == {"image": (2, 256), "text": (2, 128)}
    assert not ConcatFusion.uses_low and FUSIONS["early"].uses_low
