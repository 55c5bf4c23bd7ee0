"""Text ops on long texts, mmdata against nlpaug: time per text (params drawn + kernel applied) of each mmdata
text op, run through a one-op recipe (``Recipe.apply_sample``), and of the nlpaug augmenter that does the same
thing offline (``RandomWordAug`` substitute / delete / swap / crop, ``KeyboardAug``, ``OcrAug``; ``max_tokens``
has none), on the same text, in one process, for texts of 2,000 / 40,000 / 400,000 words.

nlpaug's units are set to whitespace words (``tokenizer=str.split``), mmdata's on a Latin text, and its
params to the same rates (the table printed first says what was matched). nlpaug makes an exact count of
edits where mmdata draws each unit: the same number on average. An nlpaug call that runs past ``--cap``
seconds (of the clock measured) is stopped (a timer signal: nlpaug is pure Python) and shown as ``> cap``; a
size is not run when the smaller one's time, scaled linearly, already passes the cap (a lower bound: nlpaug's
``Doc`` slices the rest of the text for each token, and its typo augmenters look each word up in a list of the
words drawn, so its time grows faster than the text; ``--measure-all`` runs it anyway). Sockets are guarded: a
connection attempt by either library is refused and counted, and the count is printed.

Run: .venv/bin/python benchmarks/text_long.py [--words 2000 40000 400000] [--kind latin|lines|cjk]
     [--ops word_delete keyboard ...] [--cap 60] [--cpu-time] [--measure-all]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

VOCAB = "the a of photo cat sitting on mat. quickly, zebra don't e-mail 42 over lazy dogs! running naïve Zürich".split()
HAN = "一张照片户外的猫我爱编程很有趣テストかな"


def text(n: int, kind: str, seed: int = 0) -> str:
    """``n`` words (the texts of the colleague's script): ``latin`` words with single spaces, now and then two or
    a line break; ``lines`` one word a line; ``cjk`` ``n`` characters with no spaces, a comma now and then."""
    r = random.Random(seed)
    if kind == "latin":
        return "".join(r.choice(VOCAB) + r.choice([" "] * 20 + ["  ", "\n"]) for _ in range(n)).strip()
    if kind == "lines":
        return "\n".join(r.choice(VOCAB) for _ in range(n))
    return "".join(r.choice(HAN) + ("，" if r.random() < 0.05 else "") for _ in range(n))


#: (label, mmdata op as a recipe entry, nlpaug augmenter (module, class, kwargs) or None, what was matched)
CASES: list[tuple[str, dict[str, Any], tuple[str, str, dict[str, Any]] | None, str]] = [
    ("token_mask", {"op": "token_mask", "p_token": 0.15},
     ("nlpaug.augmenter.word", "RandomWordAug", {"action": "substitute", "target_words": ["[MASK]"], "aug_p": 0.15,
                                                 "aug_max": None}),
     "p_token 0.15 | substitute by [MASK], aug_p 0.15, no aug_max"),
    ("word_delete", {"op": "word_delete", "p_word": 0.1},
     ("nlpaug.augmenter.word", "RandomWordAug", {"action": "delete", "aug_p": 0.1, "aug_max": None}),
     "p_word 0.1 | delete, aug_p 0.1, no aug_max"),
    ("word_swap", {"op": "word_swap", "n_swaps": [2, 2]},
     ("nlpaug.augmenter.word", "RandomWordAug", {"action": "swap", "aug_p": 1.0, "aug_min": 2, "aug_max": 2}),
     "n_swaps [2, 2] | swap, aug_min = aug_max = 2"),
    ("word_crop", {"op": "word_crop", "fraction": [0.75, 0.75]},
     ("nlpaug.augmenter.word", "RandomWordAug", {"action": "crop", "aug_p": 0.25, "aug_max": None}),
     "fraction kept [0.75, 0.75] | crop, aug_p 0.25 removed, no aug_max"),
    ("max_tokens", {"op": "max_tokens", "n": 32}, None, "n 32 | (no nlpaug counterpart)"),
    ("typo keyboard", {"op": "typo", "p_word": 0.2, "kind": "keyboard"},
     ("nlpaug.augmenter.char", "KeyboardAug", {"aug_word_p": 0.2, "aug_word_max": None, "aug_char_min": 1,
                                               "aug_char_max": 1, "min_char": 1}),
     "p_word 0.2, one char a word | aug_word_p 0.2, no aug_word_max, aug_char_min = max = 1, min_char 1"),
    ("typo ocr", {"op": "typo", "p_word": 0.1, "kind": "ocr"},
     ("nlpaug.augmenter.char", "OcrAug", {"aug_word_p": 0.1, "aug_word_max": None, "aug_char_min": 1,
                                          "aug_char_max": 1, "min_char": 1}),
     "p_word 0.1, one char a word | aug_word_p 0.1, no aug_word_max, aug_char_min = max = 1, min_char 1"),
]

def short(label: str) -> str:
    """A case's name for ``--ops``: the op, or the typo kind."""
    return label.split()[-1]


#: connection attempts refused by :func:`guard_network` (host, port)
ATTEMPTS: list[Any] = []


def guard_network() -> None:
    """Refuse and count every outgoing connection and name lookup from here on: nlpaug must not download."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        ATTEMPTS.append(next((a for a in args if not isinstance(a, socket.socket)), None))  # host or address
        raise OSError("benchmarks/text_long.py: network access refused")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


class OverCap(Exception):
    """A call ran past the time cap."""


CLOCK = time.perf_counter


def timed(fn: Callable[[], Any], cap: float | None = None) -> tuple[float, Any]:
    """Time per call of ``fn`` (:data:`CLOCK`): best of 3, or one call when it takes over a second; raises
    :class:`OverCap` when a call runs past ``cap`` seconds of :data:`CLOCK` (None: no cap)."""
    # a wall-clock timer that checks CLOCK when it fires: an armed CPU-time timer (ITIMER_PROF) makes Linux
    # account process CPU time by the tick, and short calls read as 0
    t0 = 0.0

    def check(signum: int, frame: Any) -> None:
        used = CLOCK() - t0
        if used >= cap:
            raise OverCap
        signal.setitimer(signal.ITIMER_REAL, max(0.05, cap - used))

    old = signal.signal(signal.SIGALRM, check)
    best, out = float("inf"), None
    try:
        for _ in range(3):
            t0 = CLOCK()
            if cap is not None:
                signal.setitimer(signal.ITIMER_REAL, cap)
            try:
                out = fn()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            best = min(best, CLOCK() - t0)
            if best > 1.0:
                break
    finally:
        signal.signal(signal.SIGALRM, old)
    return best, out


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.0f} µs"
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--words", type=int, nargs="+", default=[2000, 40000, 400000])
    ap.add_argument("--kind", choices=("latin", "lines", "cjk"), default="latin",
                    help="latin: words, single spaces, a line break now and then; lines: one word a line; cjk: "
                         "characters with no spaces (nlpaug sees one word: not compared)")
    ap.add_argument("--ops", nargs="+", choices=[short(c[0]) for c in CASES],
                    help="only these ops (typo: keyboard, ocr)")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds an nlpaug call may run")
    ap.add_argument("--cpu-time", action="store_true", help="time this process's CPU time (a machine shared "
                                                                 "with other jobs), not wall time")
    ap.add_argument("--measure-all", action="store_true", help="run nlpaug at a size even when the smaller "
                                                                    "size, scaled linearly, passes the cap")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    cases = [c for c in CASES if not args.ops or short(c[0]) in args.ops]
    guard_network()
    import importlib

    import nlpaug
    import numpy as np

    from mmdata import Sample
    from mmdata.augment import load_recipe

    clock = "CPU" if args.cpu_time else "wall"
    print(f"text ops on long texts ({args.kind}), mmdata {'vs nlpaug ' + nlpaug.__version__ if args.kind != 'cjk' else 'only'}; "
          f"{clock} time per text, best of 3 (1 pass when over 1 s), nlpaug capped at {args.cap:g} s; "
          f"{machine()}; load average {os.getloadavg()[0]:.1f}")
    print("matched (mmdata | nlpaug, tokenizer=str.split): ")
    for label, _, _, matched in cases:
        print(f"  {label:>13}: {matched}")
    augs = {label: getattr(importlib.import_module(spec[0]), spec[1])(tokenizer=str.split, **spec[2])
            for label, _, spec, _ in cases if spec is not None}
    recipes = {label: load_recipe({"seed": 0, "text": [{**od, "p": 1.0}]}) for label, od, _, _ in cases}
    # warm both (mmdata's typo loads nlpaug's character maps once) before anything is timed
    warm = Sample("w", {"text": text(50, args.kind)})
    for label, _, _, _ in cases:
        recipes[label].apply_sample(warm, epoch=0)
        if label in augs and args.kind != "cjk":
            augs[label].augment(warm["text"])

    print("\n| words | op | mmdata | nlpaug | nlpaug / mmdata | words out mmdata / nlpaug |")
    print("|---:|---|---:|---:|---:|---:|")
    last: dict[str, tuple[int, float | None]] = {}  # nlpaug's previous size and time (None: over the cap)
    notes = set()
    for n in args.words:
        s = Sample("k", {"text": text(n, args.kind)})
        for label, _, _, _ in cases:
            rec = recipes[label]
            t_mm, out = timed(lambda: rec.apply_sample(s, epoch=0))
            w_mm = len(out["text"].split()) if args.kind != "cjk" else len(out["text"])
            row = [f"{n:,}", label, fmt(t_mm)]
            if label not in augs or args.kind == "cjk":
                row += ["—", "—", f"{w_mm:,} / —"]
            else:
                prev = last.get(label)
                projected = prev is not None and (prev[1] is None or prev[1] * n / prev[0] > args.cap)
                if projected and not args.measure_all:
                    row += [f"> {args.cap:g} s (not run)", f"> {args.cap / t_mm:,.0f}x", f"{w_mm:,} / —"]
                    notes.add("not run")
                    last[label] = (n, None)
                else:
                    random.seed(0)
                    np.random.seed(0)  # nlpaug draws from the global generators
                    try:
                        t_nl, out_nl = timed(lambda: augs[label].augment(s["text"]), args.cap)
                        out_nl = out_nl[0] if isinstance(out_nl, list) else out_nl
                        row += [fmt(t_nl), f"{t_nl / t_mm:,.1f}x", f"{w_mm:,} / {len(out_nl.split()):,}"]
                        last[label] = (n, t_nl)
                    except OverCap:
                        row += [f"> {args.cap:g} s", f"> {args.cap / t_mm:,.0f}x", f"{w_mm:,} / —"]
                        last[label] = (n, None)
            print("| " + " | ".join(row) + " |", flush=True)
    if "not run" in notes:
        print(f"\nnot run: nlpaug's time at the smaller size, scaled linearly (a lower bound), passes the {args.cap:g} s "
              f"cap (or it ran past the cap there); --measure-all runs it")
    print(f"network: {len(ATTEMPTS)} connection attempts (sockets guarded){': ' + repr(ATTEMPTS[:5]) if ATTEMPTS else ''}")


if __name__ == "__main__":
    main()
