"""Streaming scores for the trainer's other targets: a set of labels per sample
(:class:`MultiLabelScores`) and a number per sample (:class:`RegressionScores`).

Both have the interface of :class:`mmdata.train.evaluate.Scores` — ``update(outputs, targets,
labelled=None)``, ``merge``, ``result``, ``per_class``, ``labelled`` / ``unlabelled`` / ``nonfinite`` —
and its habits: sums live on the outputs' device, a batch reads nothing back to the host, ``result()``
reads once, and non-finite outputs are counted and scored as a fixed neutral prediction instead of
raising. A row is labelled when the caller's host mask says so *and* its target is usable (no negative
entry in a multi-hot row, a finite number), decided on the device; ``labelled`` and ``unlabelled``
read a device counter (one host read each).

Every score equals scikit-learn's (``f1_score``, ``average_precision_score``, ``accuracy_score``,
``hamming_loss``, ``mean_absolute_error``, ``mean_squared_error``, ``r2_score``) or scipy's
``pearsonr`` over the labelled rows, with the exceptions named in the class docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

NAN = float("nan")


def _valid(base: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
    return base if labelled is None else base & labelled.to(base.device, non_blocking=True)


class _Counts:
    """The row counters both accumulators keep: ``sums[0]`` labelled rows (on the device), ``rows`` seen,
    ``_nonfinite`` labelled rows with a NaN / inf output (each read is one host read)."""

    sums: torch.Tensor
    rows: int
    _nonfinite: torch.Tensor

    @property
    def labelled(self) -> int:
        return int(self.sums[0])

    @property
    def unlabelled(self) -> int:
        return self.rows - self.labelled

    @property
    def nonfinite(self) -> int:
        """Labelled rows whose outputs were not all finite (scored as a neutral prediction)."""
        return int(self._nonfinite)


class MultiLabelScores(_Counts):
    """Streaming multi-label scores: ``labels`` independent sigmoids, a label predicted when its logit
    is ``>= 0`` (probability ``>= 0.5``); a target entry ``> 0`` is a positive, a row holding a
    negative entry (``-1``) is unlabelled.

    ``macro_f1`` averages only the labels present among the labelled rows' targets or predictions (as
    :class:`~mmdata.train.evaluate.Scores` does); ``map`` averages the labels with a positive. Average
    precision ranks the raw logits, which order the rows as the sigmoid does but never tie two rows
    that the sigmoid saturates to 1.0; tied logits form one threshold, as in scikit-learn. Every row's
    logits are kept on the device for it (N x labels; unlabelled rows as -inf). A row with a NaN / inf logit is scored
    as all-zero logits (probability 0.5 everywhere, every label predicted) and counted in ``nonfinite``.

    Args:
        labels: number of labels (K).
        device: where the running sums and kept logits live (the logits' device).

    Example:
        >>> s = MultiLabelScores(3)
        >>> logits = torch.tensor([[2.0, -1.0, -3.0], [-2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
        >>> s.update(logits, torch.tensor([[1.0, 0, 0], [0, 1, 1], [-1, -1, -1]]))
        >>> r = s.result()
        >>> r["subset_accuracy"], r["micro_f1"], round(r["hamming"], 4), s.labelled, s.unlabelled
        (0.5, 0.8, 0.1667, 2, 1)
    """

    def __init__(self, labels: int, device: str | torch.device = "cpu") -> None:
        self.labels = labels
        dev = torch.device(device)
        self.counts = torch.zeros(3, labels, dtype=torch.float64, device=dev)  # tp, fp, fn per label
        self.sums = torch.zeros(4, dtype=torch.float64, device=dev)  # labelled rows, exact sets, wrong bits, nll
        self.kept: list[torch.Tensor] = []  # logits, -inf on unlabelled rows (ranked below every labelled row)
        self.truth: list[torch.Tensor] = []  # bool positives, False on unlabelled rows
        self.rows = 0
        self._nonfinite = torch.zeros((), dtype=torch.int64, device=dev)

    def update(self, logits: torch.Tensor, targets: torch.Tensor, labelled: torch.Tensor | None = None) -> None:
        """Add a batch: ``logits`` (B, K) and multi-hot ``targets`` (B, K, float or bool) on one device;
        ``labelled`` is an optional host mask of rows with a target."""
        y = targets.double()
        w = _valid((y >= 0).all(1), labelled)
        bad = ~torch.isfinite(logits).all(1)
        self._nonfinite += (bad & w).sum()
        x = logits.masked_fill(bad[:, None], 0.0)
        t = (y > 0) & w[:, None]
        pred = (x >= 0) & w[:, None]
        self.counts += torch.stack([pred & t, pred & ~t, ~pred & t]).double().sum(1)
        wrong = pred != t  # False on unlabelled rows: both masked
        nll = F.binary_cross_entropy_with_logits(x.double(), t.double(), reduction="none").sum(1)
        self.sums += torch.stack([w.double().sum(), (w & ~wrong.any(1)).double().sum(), wrong.double().sum(),
                                  torch.where(w, nll, 0.0).sum()])
        self.kept.append(x.masked_fill(~w[:, None], -math.inf))
        self.truth.append(t)
        self.rows += len(y)

    def merge(self, other: MultiLabelScores) -> None:
        """Add another accumulator's sums and kept logits."""
        dev = self.counts.device
        self.counts += other.counts.to(dev)
        self.sums += other.sums.to(dev)
        self.kept += [k.to(dev) for k in other.kept]
        self.truth += [t.to(dev) for t in other.truth]
        self.rows += other.rows
        self._nonfinite += other._nonfinite.to(dev)

    @property
    def micro_defined(self) -> bool:
        """Whether micro F1 is defined: some labelled row holds a positive or a predicted label. Without one,
        2tp + fp + fn is 0 and :meth:`result` gives the split-level convention 0.0 — a perfect "no finding"
        prediction scores as a wholly wrong one; per group that 0.0 is to be read as undefined (one host read).

        Example:
            >>> s = MultiLabelScores(2)
            >>> s.update(torch.full((3, 2), -3.0), torch.zeros(3, 2))
            >>> s.result()["micro_f1"], s.micro_defined, s.result()["subset_accuracy"]
            (0.0, False, 1.0)
        """
        return bool(self.counts.sum() > 0)

    def _ap(self) -> torch.Tensor:
        """Average precision per label (K,), NaN for a label without a positive."""
        if not self.kept:
            return torch.full((self.labels,), NAN, dtype=torch.float64, device=self.counts.device)
        s, order = torch.cat(self.kept).sort(0, descending=True)
        t = torch.cat(self.truth).gather(0, order).double()
        n = len(s)
        rank = torch.arange(n, device=s.device)[:, None]
        tp = t.cumsum(0)
        precision = tp / (rank + 1)
        # one threshold per distinct score: a row takes the precision at the last row of its tie group
        end = torch.ones_like(s, dtype=torch.bool)
        end[:-1] = s[:-1] != s[1:]
        group_end = torch.where(end, rank, n).flip(0).cummin(0).values.flip(0)
        pos = tp[-1]
        return torch.where(pos > 0, (t * precision.gather(0, group_end)).sum(0) / pos, NAN)

    def _read(self) -> tuple[torch.Tensor, list[float], torch.Tensor]:
        host = torch.cat([self.counts.flatten(), self.sums, self._ap()]).cpu()
        k = self.labels
        return host[:3 * k].view(3, k), host[3 * k:3 * k + 4].tolist(), host[3 * k + 4:]

    def result(self) -> dict[str, float]:
        """``{micro_f1, macro_f1, map, subset_accuracy, hamming, nll}`` over the labelled rows (NaN when
        there were none; ``macro_f1`` / ``map`` also NaN when no label was seen / has a positive).

        Example:
            >>> s = MultiLabelScores(3)
            >>> s.update(torch.tensor([[3.0, -3.0, -3.0], [-1.0, 2.0, -3.0]]), torch.tensor([[1, 0, 0], [0, 1, 0]]))
            >>> s.result()["macro_f1"], s.result()["map"]  # label 2: no positive, never predicted
            (1.0, 1.0)
        """
        counts, (n, exact, wrong, nll), ap = self._read()
        if n == 0:
            return dict.fromkeys(("micro_f1", "macro_f1", "map", "subset_accuracy", "hamming", "nll"), NAN)
        tp, fp, fn = counts
        denom = 2 * tp + fp + fn  # > 0 exactly for the labels seen as a target or a prediction
        seen = denom > 0
        micro = float(2 * tp.sum() / denom.sum()) if denom.sum() > 0 else 0.0
        has = ~torch.isnan(ap)
        return {"micro_f1": micro, "macro_f1": float((2 * tp[seen] / denom[seen]).mean()),
                "map": float(ap[has].mean()), "subset_accuracy": exact / n,
                "hamming": wrong / (n * self.labels), "nll": nll / n}

    def per_class(self, names: Sequence[str], absent: float | None = 0.0) -> dict[str, dict[str, float | None]]:
        """Precision, recall, F1 (an undefined ratio is 0), average precision (NaN without a positive)
        and support (positives) per label name. ``absent``: the precision, recall and F1 of a label with
        no positive that was never predicted (``macro_f1`` leaves it out; the trainer passes None).

        Example:
            >>> s = MultiLabelScores(3)
            >>> s.update(torch.tensor([[3.0, -3.0, -3.0], [-1.0, 2.0, -3.0]]), torch.tensor([[1, 0, 0], [0, 1, 0]]))
            >>> s.per_class(["x", "y", "z"], absent=None)["z"]["f1"] is None
            True
        """
        counts, _, ap = self._read()
        out: dict[str, dict[str, float | None]] = {}
        for k, name in enumerate(names):
            tp, fp, fn = (float(v) for v in counts[:, k])
            if not tp + fp + fn:
                out[name] = {"precision": absent, "recall": absent, "f1": absent, "ap": float(ap[k]), "support": 0}
                continue
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            out[name] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                         "ap": float(ap[k]), "support": int(tp + fn)}
        return out


def _reshift(s: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Sums about shifts ``old`` (target, prediction) rewritten about ``new``."""
    n, sy, syy, sp, spp, syp = s[:6]
    dy, dp = old - new
    return torch.stack([n, sy + n * dy, syy + 2 * dy * sy + n * dy * dy, sp + n * dp, spp + 2 * dp * sp + n * dp * dp,
                        syp + dp * sy + dy * sp + n * dy * dp, s[6], s[7]])


class RegressionScores(_Counts):
    """Streaming regression scores in float64: MAE, RMSE, Pearson r and R² of predictions against
    targets in the same units; a row is unlabelled when the host mask says so or its target is not
    finite.

    Targets and predictions are summed about shifts (the first labelled target and prediction), so
    r and R² keep their precision for values far from 0 (say 1e6 +- 1); pass float64 tensors for
    such values, float32 cannot hold them. ``r`` is NaN when the targets or the predictions are
    constant (scipy warns and gives NaN); ``r2`` is NaN when the targets are constant (where
    scikit-learn's ``r2_score`` gives 1.0 or 0.0). A NaN / inf prediction is scored as ``fill`` and
    counted in ``nonfinite``: set ``fill`` to the training targets' mean, so it reads as the
    constant predictor.

    Args:
        device: where the running sums live (the predictions' device).
        fill: the prediction that replaces a non-finite one, in the targets' units.

    Example:
        >>> s = RegressionScores()
        >>> s.update(torch.tensor([1.0, 2.0, 4.0, 0.0]), torch.tensor([1.0, 3.0, 3.0, float("nan")]))
        >>> {k: round(v, 4) for k, v in s.result().items()}, s.labelled, s.unlabelled
        ({'mae': 0.6667, 'rmse': 0.8165, 'r': 0.7559, 'r2': 0.25}, 3, 1)
    """

    def __init__(self, device: str | torch.device = "cpu", fill: float = 0.0) -> None:
        dev = torch.device(device)
        self.fill = fill
        # n, Σy, Σy², Σp, Σp², Σyp (y, p about `shift`), Σ|p - y|, Σ(p - y)²
        self.sums = torch.zeros(8, dtype=torch.float64, device=dev)
        self.shift = torch.zeros(2, dtype=torch.float64, device=dev)  # (target, prediction)
        self.rows = 0
        self._nonfinite = torch.zeros((), dtype=torch.int64, device=dev)

    def update(self, preds: torch.Tensor, targets: torch.Tensor, labelled: torch.Tensor | None = None) -> None:
        """Add a batch: ``preds`` (B,) or (B, 1) and ``targets`` (B,) on one device; ``labelled`` is an
        optional host mask of rows with a target."""
        p = (preds.squeeze(-1) if preds.dim() == 2 else preds).double()
        y = targets.double()
        self.rows += len(y)
        if not len(y):
            return
        w = _valid(torch.isfinite(y), labelled)
        bad = ~torch.isfinite(p)
        self._nonfinite += (bad & w).sum()
        p = p.masked_fill(bad, self.fill)
        # the shifts are set while nothing has been summed, so moving them changes no sum
        first = torch.stack([y, p]).index_select(1, w.to(torch.uint8).argmax()[None])[:, 0]
        self.shift = torch.where((self.sums[0] == 0) & w.any(), first, self.shift)
        dy = torch.where(w, y - self.shift[0], 0.0)
        dp = torch.where(w, p - self.shift[1], 0.0)
        e = torch.where(w, p - y, 0.0)
        self.sums += torch.stack([w.double().sum(), dy.sum(), (dy * dy).sum(), dp.sum(), (dp * dp).sum(),
                                  (dy * dp).sum(), e.abs().sum(), (e * e).sum()])

    def merge(self, other: RegressionScores) -> None:
        """Add another accumulator's sums, rewritten about this one's shifts (or the other's, when this
        one has summed nothing)."""
        dev = self.sums.device
        o, oshift = other.sums.to(dev), other.shift.to(dev)
        shift = torch.where(self.sums[0] == 0, oshift, self.shift)
        self.sums = _reshift(self.sums, self.shift, shift) + _reshift(o, oshift, shift)
        self.shift = shift
        self.rows += other.rows
        self._nonfinite += other._nonfinite.to(dev)

    def result(self) -> dict[str, float]:
        """``{mae, rmse, r, r2}`` over the labelled rows (NaN when there were none)."""
        n, sy, syy, sp, spp, syp, sabs, ssq = self.sums.cpu().tolist()
        if n == 0:
            return dict.fromkeys(("mae", "rmse", "r", "r2"), NAN)
        vy, vp, cov = syy - sy * sy / n, spp - sp * sp / n, syp - sy * sp / n
        r = max(-1.0, min(1.0, cov / math.sqrt(vy * vp))) if vy > 0 and vp > 0 else NAN
        return {"mae": sabs / n, "rmse": math.sqrt(ssq / n), "r": r, "r2": 1 - ssq / vy if vy > 0 else NAN}

    def per_class(self, names: Sequence[str], absent: float | None = 0.0) -> dict[str, dict[str, float]]:
        """No classes: ``{}``."""
        return {}
