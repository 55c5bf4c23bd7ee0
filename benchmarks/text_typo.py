"""``typo`` on long texts: ms per sample (params drawn + kernel applied) of mmdata's ``typo`` against the
straightforward kernel it is tested against (``TextOp._edited``: every unit of the text rebuilt; the same
text, tests/augment/test_typo_identity.py), measured in one run, for texts of 20 / 200 / 2000 words
(English-like, single spaces, a line break now and then) and a 2000-unit CJK / Latin mix.

Run: .venv/bin/python benchmarks/text_typo.py [--samples 50] [--p-word 0.1] [--cpu-time]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

WORDS = ("the a of photo cat sitting on mat quickly zebra don't e-mail 42 over lazy dogs running through "
         "bright morning light while children played near river bank").split()


def text(n: int, seed: int, cjk: bool = False) -> str:
    r = random.Random(seed)
    han = "一张照片户外的猫我爱编程很有趣"
    units = ["".join(r.choice(han) for _ in range(3)) if cjk and r.random() < 0.5 else r.choice(WORDS) for _ in range(n)]
    return "".join(u + (" " if r.random() < 0.95 else "\n") for u in units).strip()


CLOCK = time.perf_counter


def per_sample_ms(fn, items: list) -> float:  # noqa: ANN001
    """Best of 3 passes over ``items``: ms per item (:data:`CLOCK`: wall, or this process's CPU time)."""
    best = float("inf")
    for _ in range(3):
        t0 = CLOCK()
        for item in items:
            fn(*item)
        best = min(best, CLOCK() - t0)
    return 1e3 * best / len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--p-word", type=float, default=0.1)
    ap.add_argument("--cpu-time", action="store_true", help="time this process's CPU time (a machine shared "
                                                                 "with other jobs), not wall time")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    from mmdata import Sample
    from mmdata.augment.text import TextOp, Typo
    from mmdata.rng import param_rng

    op = Typo(p=1.0, p_word=args.p_word)
    print(f"typo (p_word {args.p_word}), {args.samples} samples a row, best of 3, "
          f"{'CPU' if args.cpu_time else 'wall'} time; {machine()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'text':>20}  {'draw ms':>7}  {'kernel ms':>9}  {'reference kernel ms':>19}  {'kernel ratio':>12}  "
          f"{'total ms':>8}  {'reference total ms':>18}")
    for label, n, cjk in (("20 words", 20, False), ("200 words", 200, False), ("2000 words", 2000, False),
                          ("2000 units, CJK mix", 2000, True)):
        samples = [Sample(f"k{i}", {"text": text(n, i, cjk)}) for i in range(args.samples)]
        drawn = [(s["text"], op.draw(param_rng(0, 0, s.key, 0), s)) for s in samples]
        # the same output, or the benchmark measures something else
        assert all(op._edited(t, p) == TextOp._edited(op, t, p) for t, p in drawn)
        draw = per_sample_ms(lambda s: op.draw(param_rng(0, 0, s.key, 0), s), [(s,) for s in samples])
        fast = per_sample_ms(op._edited, drawn)
        ref = per_sample_ms(lambda t, p: TextOp._edited(op, t, p), drawn)
        print(f"{label:>20}  {draw:7.2f}  {fast:9.2f}  {ref:19.2f}  {ref / fast:11.1f}x  {draw + fast:8.2f}  "
              f"{draw + ref:18.2f}")


if __name__ == "__main__":
    main()
