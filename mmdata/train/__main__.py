"""``python -m mmdata.train DATA [options]`` / ``torchrun --nproc_per_node 2 -m mmdata.train DATA ...``.

The DDP entry point. It does not import the CLI (the library never depends on ``cli/``): its options
are read off :func:`mmdata.train.train`'s keyword arguments, so every keyword is an option with the
same name (``--batch-size 32``, ``--modalities image,audio``, ``--no-eval-robustness`` or
``--no-robustness``, ``--image-size 64``), and the run calls the same function as ``mmdata train``.
Rank 0 prints the metrics (``--json``: as JSON), then the run's warnings as ``mmdata train`` does: one
``warning: ...`` line each on stderr.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import typing
import warnings
from collections.abc import Sequence
from typing import Any

from mmdata.terminal import terminal_lines, warnings_as_lines
from mmdata.train.loop import TrainWarning, train

# the spellings `mmdata train` uses
ALIASES = {"eval_robustness": ["--no-robustness"], "num_workers": ["--workers", "-j"], "fusion_args": ["--fusion-arg"],
           "pretrain_args": ["--pretrain-arg"]}


class _MergeDict(argparse.Action):
    """``--fusion-arg a=1 --fusion-arg b=2`` (as ``mmdata train`` takes them) or ``--fusion-args a=1,b=2``: one dict."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **values})


def _docs() -> tuple[str, dict[str, str]]:
    """The summary paragraph of :func:`train`'s docstring and the help text of each argument (its Args
    section: ``name, other: text`` entries with continuation lines)."""
    doc = inspect.getdoc(train) or ""
    summary = " ".join(doc.split("\n\n")[0].split())
    helps: dict[str, str] = {}
    names: list[str] = []
    in_args = False
    for line in doc.splitlines():
        if line.strip() == "Args:":
            in_args = True
            continue
        if in_args and line and not line.startswith(" "):
            break
        if in_args and line.startswith("    ") and not line.startswith("     ") and ":" in line:
            head, text = line.strip().split(":", 1)
            names = [n.strip().split(" ")[0] for n in head.split(",")]
            for n in names:
                helps[n] = text.strip()
        elif in_args and line.strip():
            for n in names:
                helps[n] += " " + line.strip()
    return summary, {k: v.replace("%", "%%") for k, v in helps.items()}


def _converter(annotation: Any) -> Any:
    """The argparse type for a keyword's annotation (``str | None`` -> str, ``Sequence[str]`` -> a comma list)."""
    text = str(annotation)
    if "Sequence[str]" in text:
        return lambda s: [p.strip() for p in s.split(",") if p.strip()]
    if "Sequence[int]" in text:  # --image-size 64 or 48x64
        return lambda s: int(s) if s.strip().isdigit() else [int(p) for p in s.replace("x", ",").split(",")]
    if "dict[" in text:  # --fusion-args 'order=(image+audio)+text' / --pretrain-args dim=16,lr=0.001
        return lambda s: dict(p.split("=", 1) for p in s.split(",") if "=" in p)
    if "bool | str" in text:
        return lambda s: {"true": True, "false": False}.get(s.lower(), s)
    for name, fn in (("float", float), ("int", int)):
        if name in text:
            return fn
    return str


def parser() -> argparse.ArgumentParser:
    """An argparse parser with one option per keyword argument of :func:`mmdata.train.train`.

    Example:
        >>> ns = parser().parse_args(["data", "--fusion", "late", "--modalities", "image,audio", "--no-robustness"])
        >>> ns.fusion, ns.modalities, ns.eval_robustness
        ('late', ['image', 'audio'], False)
        >>> parser().parse_args(["data", "--fusion-arg", "order=image+(audio+text)", "--fusion-arg", "towers=2"]).fusion_args
        {'order': 'image+(audio+text)', 'towers': '2'}
    """
    summary, helps = _docs()
    ap = argparse.ArgumentParser(prog="python -m mmdata.train", description=summary)
    ap.add_argument("data", help=helps.get("data"))
    hints = typing.get_type_hints(train)
    for name, p in inspect.signature(train).parameters.items():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or name == "progress":
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(p.default, bool):
            ap.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=p.default, help=helps.get(name))
            for alias in ALIASES.get(name, []):
                ap.add_argument(alias, dest=name, action="store_false", help=f"same as --no-{flag[2:]}")
        else:
            merge = {"action": _MergeDict} if "dict[" in str(hints[name]) else {}
            ap.add_argument(flag, *ALIASES.get(name, []), dest=name, type=_converter(hints[name]), default=p.default,
                            help=helps.get(name), **merge)
    ap.add_argument("--json", action="store_true", help="print the metrics as JSON (rank 0)")
    ap.add_argument("--plugin", action="append", default=[], help="import this module first, on every rank (your own "
                    "fusions or ops; repeatable): pkg.mod or pkg.mod:register (docs/extending.md)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, train, print the metrics on rank 0."""
    ns = vars(parser().parse_args(argv))
    as_json = ns.pop("json")
    data = ns.pop("data")
    # train() imports them on every rank (each torchrun rank is its own interpreter) and records them in
    # config["plugins"], so load_model / evaluate name them for a plugin fusion (QA33)
    ns["plugins"] = [*(ns.get("plugins") or []), *ns.pop("plugin")]
    with warnings.catch_warnings():
        # as `mmdata train`: the library's warnings are the run's output, each a `warning:` line, not Python's
        # two lines naming mmdata's source (a crash site to the reader), nor errors under PYTHONWARNINGS=error;
        # the result's own (TrainWarning) are printed below, once each
        warnings_as_lines(_warning_line)
        warnings.simplefilter("ignore", TrainWarning)
        metrics = train(data, progress=not as_json, **ns)
    if metrics:  # rank 0
        if as_json:
            print(json.dumps(metrics, indent=2))
        elif "test" not in metrics:  # --epochs 0: pre-training alone
            print(f"pre-trained the encoders only (world size {metrics['config']['world_size']}): test retrieval "
                  + "; ".join(f"{pair} " + " ".join(f"{d} R@1 {v['R@1']:.2f}" for d, v in r["instance"].items())
                              for pair, r in metrics.get("retrieval", {}).items()))
        else:
            t = metrics["test"]
            scores = (f"accuracy {t['accuracy']:.3f}  macro-F1 {t['macro_f1']:.3f}  balanced accuracy "
                      f"{t['balanced_accuracy']:.3f}  NLL {t['nll']:.3f}  ECE {t['ece']:.3f}"
                      + "".join(f"  {name} {t[k]:.3f}" for k, name in (("auroc", "AUROC"), ("auprc", "AUPRC"))
                                if isinstance(t.get(k), float) and t[k] == t[k])
                      if "target" not in metrics else  # a multi-label / regression target's own scores
                      f"{metrics['target']['key']!r} " + "  ".join(f"{k} {v:.3f}" for k, v in t.items()))
            best, epochs = metrics["best_epoch"], metrics["config"].get("epochs") or len(metrics.get("history", []))
            # counted from 1 (as mmdata train's summary); metrics.json and the "epoch N:" progress lines keep the index
            print(f"test {scores}  (best epoch {best + 1} of {epochs}, the \"epoch {best}:\" line; world size "
                  f"{metrics['config']['world_size']})")
        for message in dict.fromkeys(metrics.get("warnings", [])):
            _warning_line(message)
    return 0


def _warning_line(message: str, category: type[Warning] = UserWarning) -> None:
    """A warning as ``mmdata train`` prints it: ``warning: ...`` on stderr."""
    print(f"warning: {terminal_lines(message)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
