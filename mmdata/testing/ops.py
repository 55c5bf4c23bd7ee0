"""A test harness for augmentation ops (torchvision's ``check_kernel`` for mmdata): :func:`check_op` runs an
op on tiny real samples through the per-sample and the batched kernels and checks the op contract
(docs/extending.md); :func:`op_samples` makes the samples; :func:`restored_registry` undoes the op
and fusion registrations of a test.

Example:
    >>> from mmdata.augment import build_op
    >>> check_op(build_op("image", {"op": "hflip", "p": 0.5}, "image[0]"))
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from mmdata.augment import contract
from mmdata.augment.base import _REGISTRY, Op, build_op, registry
from mmdata.types import Batch, Sample, collate

_TEXTS = ("the dog on the left", "a bright red upright box", "left and right", "one", "some words here to play with",
          "", "一张红色背景上的圆形的照片，在户外拍摄。")


def op_samples(n: int = 6, *, channels: int = 3, size: tuple[int, int] = (24, 32), sample_rate: int = 8000,
               seed: int = 0) -> list[Sample]:
    """``n`` small samples as the reader decodes them: a uint8 (channels, H, W) image, float32 (1, T) audio of
    growing length (sample 4 has none), an English or Chinese caption (sample 5 has none) and a label.

    Example:
        >>> s = op_samples()[0]
        >>> s["image"].dtype, tuple(s["image"].shape), s["audio"].dtype, s.sample_rate
        (torch.uint8, (3, 24, 32), torch.float32, 8000)
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        fields: dict[str, Any] = {"image": torch.randint(0, 256, (channels, *size), generator=g, dtype=torch.uint8),
                                  "audio": torch.randn(1, 800 + 160 * i, generator=g) * 0.3, "label": i % 3}
        if _TEXTS[i % len(_TEXTS)]:
            fields["text"] = _TEXTS[i % len(_TEXTS)]
        if i == 4:
            del fields["audio"]
        out.append(Sample(f"k{i}", fields, sample_rate=sample_rate))
    return out


@contextlib.contextmanager
def restored_registry() -> Iterator[None]:
    """Undo every op and fusion registration made inside the block (a test's ops and fusions must not leak
    into the next test, nor into docs/ops.md's generator).

    Example:
        >>> from mmdata.augment.audio import AudioOp
        >>> with restored_registry():
        ...     class Quiet(AudioOp):
        ...         '''Halve the waveform.'''
        ...         name = "quiet_doctest"
        >>> ("audio", "quiet_doctest") in registry()
        False
    """
    from mmdata.train.fusions import FUSIONS

    saved, saved_fusions = dict(registry()), dict(FUSIONS)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)
        FUSIONS.clear()
        FUSIONS.update(saved_fusions)


class _Check:
    """Names the check that failed: ``check_op(image[0] (op image.invert, ...)) [no input mutation]: ...``."""

    def __init__(self, op: Op) -> None:
        self.head = f"check_op({contract.describe(op)})"
        self.name = ""

    def __call__(self, name: str) -> _Check:
        self.name = name
        return self

    def fail(self, msg: str) -> AssertionError:
        return AssertionError(f"{self.head} [{self.name}]: {msg}")

    def __enter__(self) -> _Check:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, AssertionError) and str(exc).startswith(self.head):
            return False
        hint = ""
        if self.name.startswith("batched") and "Shape" in str(exc):
            hint = " (on the batched path sample_params sees a row as shapes and strings: it may not read pixel or sample values)"
        raise self.fail(f"raised {type(exc).__name__}: {exc}{hint}") from exc


def _tolerance(op: Op) -> float:
    """The max abs difference the op's ``tolerance`` statement allows between its kernels (0: ``exact``; a
    number after ``atol`` or ``<=``; a composite: its children's largest)."""
    kids = getattr(op, "children", None)
    if kids:
        return max(_tolerance(c) for c in kids)
    m = re.search(r"(?:atol|<=)\s*([0-9.eE+-]+)", op.tolerance)
    return float(m.group(1)) if m else 0.0


def _equal(a: Any, b: Any, atol: float = 0.0) -> str | None:
    """Why ``a`` and ``b`` (field values) differ, or None."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{type(a).__name__} vs {type(b).__name__}"
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
        if a.numel() == 0:
            return None
        x, y = a.detach().cpu().double(), b.detach().cpu().double()
        same_nan = torch.isnan(x) == torch.isnan(y)
        diff = (x - y).abs().nan_to_num(0.0).max().item()
        if not bool(same_nan.all()) or diff > atol:
            return f"max abs difference {diff:g} (allowed {atol:g})"
        return None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return None if np.array_equal(a, b, equal_nan=True) else "arrays differ"
    return None if a == b else f"{a!r:.60} vs {b!r:.60}"


def _same_sample(a: Sample, b: Sample) -> str | None:
    """Why two samples differ in key, fields or rate (meta, where the replay log goes, is not compared), or None."""
    if a.key != b.key or sorted(a.fields) != sorted(b.fields) or a.sample_rate != b.sample_rate:
        return f"key / fields / rate {a.key!r} {sorted(a.fields)} {a.sample_rate} vs {b.key!r} {sorted(b.fields)} {b.sample_rate}"
    for k in a.fields:
        why = _equal(a[k], b[k])
        if why:
            return f"field {k!r}: {why}"
    return None


def _snapshot(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in fields.items():
        if isinstance(v, torch.Tensor):
            out[k] = (v, v.detach().clone(), v._version if not v.is_inference() else None)
        elif isinstance(v, np.ndarray):
            out[k] = (v, v.copy(), None)
        else:
            out[k] = (v, copy.deepcopy(v), None)
    return out


def _mutated(before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Which input field was written (values, torch's version counter) or replaced since :func:`_snapshot`."""
    if sorted(before) != sorted(now):
        return f"the input's fields changed from {sorted(before)} to {sorted(now)} (the fields dict was edited in place)"
    for k, (obj, saved, ver) in before.items():
        if now[k] is not obj:
            return f"the input's {k!r} was replaced in its fields dict"
        if isinstance(obj, torch.Tensor):
            if (ver is not None and obj._version != ver) or _equal(obj, saved):
                return f"the input's {k!r} tensor was written in place"
        elif isinstance(obj, np.ndarray):
            if not np.array_equal(obj, saved, equal_nan=True):
                return f"the input's {k!r} array was written in place"
        elif obj != saved:
            return f"the input's {k!r} was changed in place"
    return None


def _batch_problem(batch: Batch, ref: Batch, atol: float) -> str | None:
    """How the batched result differs from collated per-sample results: presence, valid regions, lengths,
    tokens, other fields."""
    if batch.keys != ref.keys:
        return f"keys {batch.keys} vs {ref.keys}"
    if batch.sample_rate != ref.sample_rate:
        return f"sample_rate {batch.sample_rate} vs {ref.sample_rate}"
    for name in ref.present:
        if name not in batch.present or ref.present[name].tolist() != batch.present[name].tolist():
            return f"present[{name!r}]: {batch.present.get(name)} vs per-sample {ref.present[name]}"
    for name, want in ref.data.items():
        if name not in batch.data:
            return f"field {name!r} missing from the batched result"
        got = batch.data[name]
        if name in ("image", "audio", "spec", "tokens"):
            shapes_ref, shapes_got = ref.valid_shapes(name), batch.valid_shapes(name)
            for i in range(len(ref)):
                pres = ref.present.get("text" if name == "tokens" else name)
                if pres is not None and not bool(pres[i]):
                    continue
                if shapes_ref[i].tolist() != shapes_got[i].tolist():
                    return f"{name}[{i}] (sample {ref.keys[i]!r}): shape {shapes_got[i].tolist()} vs per-sample {shapes_ref[i].tolist()}"
                region = (i, *(slice(0, int(v)) for v in shapes_ref[i].tolist()))
                why = _equal(got[region].cpu(), want[region], 0.0 if name == "tokens" else atol)
                if why:
                    return f"{name}[{i}] (sample {ref.keys[i]!r}): {why}"
        elif isinstance(want, torch.Tensor):
            why = _equal(got.cpu() if isinstance(got, torch.Tensor) else got, want)
            if why:
                return f"{name}: {why}"
        elif got != want:
            return f"{name}: {got!r:.80} vs per-sample {want!r:.80}"
    return None


def _batch_types(batch: Any, n: int) -> str | None:
    if not isinstance(batch, Batch):
        return f"returned {type(batch).__name__}, not an mmdata.Batch"
    for name, value in batch.data.items():
        rule = contract.BATCH_TENSORS.get(name)
        if rule is not None:
            dtype, rank, what = rule
            if not isinstance(value, torch.Tensor) or value.dtype != dtype or value.dim() != rank or value.shape[0] != n:
                return f"batch[{name!r}] is {getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}; expected {what}"
    audio = batch.data.get("audio")
    found = contract._nonfinite(audio) if isinstance(audio, torch.Tensor) else None
    if found is not None:  # the run's own check is off for a class with copy_input = False: check_op keeps it
        return f"the batched kernel returned batch['audio'] holding {found}; {contract._NONFINITE_FIX}"
    return contract.mix_problem(batch)  # label_b and mix_lam together, as the loss reads them


def _needs_spec(op: Op) -> bool:
    return op.field == "spec" or any(_needs_spec(c) for c in getattr(op, "children", ()))


def _recipe(op: Op, seed: int) -> Any:
    """A one-op recipe around ``op`` itself (a ``logmel`` in normalize first when it reads ``spec``)."""
    from mmdata.augment.recipe import Recipe

    norm = {"audio": [build_op("audio", {"op": "logmel"}, "normalize.audio[0]", normalize=True)]} if _needs_spec(op) else None
    return Recipe(seed, {op.section: [op]}, None, norm)


def check_op(op: Op, sample: Sample | Sequence[Sample] | None = None, *, seed: int = 0, epochs: int = 2,
             atol: float | None = None, batched: bool = True, device: str | torch.device | None = None,
             require_applied: bool = True, targets: bool = True) -> None:
    """Check ``op`` against the op contract on real samples; raise AssertionError naming the failed check.

    Checks, per sample and epoch: the op is registered under its section and name, and
    ``build(op.to_dict())`` round-trips and behaves the same (**round trip**); params drawn twice for the same
    (seed, epoch, key) are equal and JSON values, and replaying them from JSON gives the same output
    (**params**); the kernel leaves its input as it was — tensors, arrays, the fields dict (**no input
    mutation**); the same params give the same output (**deterministic apply**); the output is a sample the
    loader can batch: uint8 (C, H, W) images, float32 (C, T) audio, str text, int labels, the same key
    (**output types**); an op that moves pixels and has a ``move_map`` moves a target numbered pixel by pixel
    to the image's new height and width, sampled nearest, and to where ``transform`` moves the image's pixels
    (**targets**, unless ``targets=False``); it applied to some sample
    (**applied**, unless ``require_applied=False``); and the
    batched kernel on the collated samples equals the per-sample kernel with the same params, within the op's
    ``tolerance`` or ``atol`` (**batched == per-sample**; also the vectorised torch kernels forced on the CPU,
    and on ``device`` when given), leaving its input batch as it was. A batch-section op (mixup) gets the
    checks that apply to one draw per batch.

    Args:
        op: the op (e.g. ``build_op("image", {"op": "invert", "p": 0.5}, "image[0]")``); ``p < 1`` also
            runs a copy with ``p = 1``.
        sample: a sample or samples to run on (default :func:`op_samples`: RGB image, mono audio, text, label;
            some samples lack audio or text). Give samples the op applies to.
        seed, epochs: the draws checked: ``(seed, epoch, key)`` for epoch in ``range(epochs)``.
        atol: max abs difference allowed between the kernels (default: from ``op.tolerance``).
        batched: run the batched checks.
        device: also run the batched kernel on this device (``"cuda"``) against the per-sample CPU kernel.
        require_applied: fail when no draw applied the op.
        targets: check ``move_map`` (False: an op that moves pixels and changes colours, which the alignment
            check reads positions from).

    Raises:
        AssertionError: ``check_op(image[0] (op image.invert, class myops.Invert)) [no input mutation]: ...``.
    """
    samples = op_samples() if sample is None else [sample] if isinstance(sample, Sample) else list(sample)
    chk = _Check(op)
    _round_trip(op, chk)
    if op.section == "batch":
        _check_batch_op(op, samples, seed, epochs, chk)
        return
    ops = [op]
    if op.p < 1.0:
        with contextlib.suppress(Exception):  # an op that allows only p = 1 elsewhere (to_rgb) keeps its own p
            ops.append(build_op(op.section, {**op.to_dict(), "p": 1.0}, op.where))
    applied = False
    for o in ops:
        applied |= _check_samples(o, samples, seed, epochs, chk, targets)
        if batched:
            _check_batched(o, samples, seed, epochs, chk, atol, device)
    if require_applied and not applied:
        raise chk("applied").fail(f"no draw applied the op to the {len(samples)} samples in {epochs} epochs; give samples it "
                                  "applies to (sample=...), or require_applied=False")


def _round_trip(op: Op, chk: _Check) -> None:
    with chk("round trip"):
        cls = registry().get((op.section, op.name))
        if cls is not type(op):
            raise chk.fail(f"registry()[({op.section!r}, {op.name!r})] is {cls}, not {type(op).__qualname__}: a recipe "
                           f"step {{op: {op.name}}} would build another op")
        d = op.to_dict()
        try:
            json.dumps(d, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise chk.fail(f"to_dict() {d!r} is no plain recipe value (YAML / JSON): {exc}") from None
        again = build_op(op.section, copy.deepcopy(d), op.where).to_dict()
        if again != d:
            raise chk.fail(f"build(op.to_dict()).to_dict() != op.to_dict(): {again} vs {d}")


def _draw(op: Op, rec: Any, s: Sample, epoch: int, uid: str) -> dict[str, Any]:
    """The params the recipe draws for ``s`` (a composite through the recipe: its children draw in turn)."""
    if getattr(op, "children", None):
        out = rec.apply_sample(s, epoch)
        return next(e for e in reversed(out.meta["aug"]) if e["id"] == uid)["params"]
    from mmdata.rng import param_rng

    return op.draw(param_rng(rec.seed, epoch, s.key, uid) if op.uses_rng else None, s)


def _check_samples(op: Op, samples: list[Sample], seed: int, epochs: int, chk: _Check, targets: bool = True) -> bool:
    rec = _recipe(op, seed)
    uid = rec.steps[-1].uid
    twin = build_op(op.section, op.to_dict(), op.where)
    applied = False
    for s0 in samples:
        s = rec.normalize(s0) if rec.has_normalize else s0
        s = Sample(s.key, s.fields, s.sample_rate, {})
        for epoch in range(epochs):
            with chk("params"):
                snap = _snapshot(dict(s.fields))
                try:
                    params = _draw(op, rec, s, epoch, uid)
                    again = _draw(op, rec, s, epoch, uid)
                except contract.OpError as exc:
                    raise chk.fail(str(exc)) from None
                # JSON first: NaN != NaN, so two equal draws holding one would read as draws that differ
                bad = contract.params_problem(params)
                if bad:
                    raise chk.fail(f"sample {s.key!r}: {bad}; params go to the replay log as JSON")
                if again != params:
                    raise chk.fail(f"sample {s.key!r}, epoch {epoch}: two draws for the same (seed, epoch, key) differ: "
                                   f"{params} vs {again}; draw only from the rng given to sample_params")
                replayed = json.loads(json.dumps(params))
                why = _mutated(snap, dict(s.fields))
                if why:
                    raise chk.fail(f"sample {s.key!r}: drawing params changed the sample: {why}")
            if not params.get("applied"):
                continue
            applied = True
            with chk("output types"):
                try:
                    got = op.transform(s, params)  # the raw kernel, without the recipe's protective copy
                except contract.OpError as exc:
                    raise chk.fail(str(exc)) from None
            with chk("no input mutation"):
                why = _mutated(snap, dict(s.fields))
                if why:
                    raise chk.fail(f"sample {s.key!r}: {why}; return new tensors (x.clone() before in-place ops). The loader "
                                   "keeps decoded samples (cache=True): an in-place write reaches the next epoch")
            with chk("output types"):
                try:
                    contract.check_sample(op, s, got, every_field=True)
                except contract.OpError as exc:
                    raise chk.fail(str(exc)) from None
            if targets and op.moves_pixels and type(op).move_map is not Op.move_map and "image" in s and "image" in got:
                with chk("targets"):
                    _check_move_map(op, s, got, params, chk)
            with chk("deterministic apply"):
                out = rec.apply_sample(s, epoch)  # the recipe's path: a run of image kernels, the checks of a plugin op
                for other, what in ((op.transform(s, params), "the same params twice"),
                                    (op.apply(s, replayed), "params replayed from JSON (the replay log)"),
                                    (out, "the recipe (per-sample path)")):
                    why = _same_sample(got, other)
                    if why:
                        raise chk.fail(f"sample {s.key!r}, epoch {epoch}: {what} gave another output ({why}); apply must "
                                       "be a pure function of (sample, params): no RNG, no state")
            with chk("round trip"):
                why = _same_sample(got, twin.transform(s, params))
                if why:
                    raise chk.fail(f"sample {s.key!r}: build(op.to_dict()) transforms differently ({why}); a constructor "
                                   "argument that is not in PARAMS is lost by to_dict")
    return applied


def _check_move_map(op: Op, s: Sample, got: Sample, params: dict[str, Any], chk: _Check) -> None:
    """``move_map`` of a target numbered pixel by pixel (multiples of 64): an int32 (H, W, 1) array back with
    the image's new height and width, holding only the input's numbers or 0 (nearest sampling: a blend of two
    labels is no multiple of 64)."""
    H, W = (int(v) for v in s["image"].shape[-2:])
    numbered = (np.arange(1, H * W + 1, dtype=np.int64) * 64).astype(np.int32).reshape(H, W, 1)
    try:
        out = op.move_map(numbered.copy(), params, 0)
    except Exception as exc:
        raise chk.fail(f"sample {s.key!r}: move_map raised {type(exc).__name__}: {exc}") from None
    want = (*(int(v) for v in got["image"].shape[-2:]), 1)
    if not isinstance(out, np.ndarray) or out.dtype != np.int32 or out.shape != want:
        what = f"a {out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise chk.fail(f"sample {s.key!r}: move_map of an int32 (H, W, 1) target returned {what}; expected int32 {want}: "
                       "the image's new height and width, the target's own dtype and channels")
    if out.size and (int(out.min()) < 0 or int(out.max()) > 64 * H * W or bool((out % 64).any())):
        raise chk.fail(f"sample {s.key!r}: move_map returned values the target does not hold; sample it nearest "
                       "(mmdata.augment.targets.nearest), with 0 where pixels come in from outside")
    _check_aligned(op, s, params, out[..., 0], chk)


def _check_aligned(op: Op, s: Sample, params: dict[str, Any], moved: np.ndarray, chk: _Check) -> None:
    """The numbered target lands where ``transform`` puts the image's pixels: the image is made of two ramps
    (channel 0 the row, channel 1 the column, scaled to 0..255, which bilinear sampling keeps linear), so
    each output pixel of the image says which source pixel it came from; 95% of the target's pixels (2 pixels
    away from where it reads its fill: the image blends with its own fill there) must name the same one
    within a pixel."""
    C, H, W = (int(v) for v in s["image"].shape)
    if C < 2 or H < 4 or W < 4:
        return
    ys, xs = np.mgrid[0:H, 0:W]
    ramps = np.zeros((C, H, W), np.uint8)
    ramps[0], ramps[1] = np.rint(ys * 255 / (H - 1)), np.rint(xs * 255 / (W - 1))
    image = op.transform(s.with_fields(image=torch.from_numpy(ramps)), params)["image"].numpy().astype(np.float64)
    core = np.pad(moved > 0, 1)  # the frame's edge counts as outside: a rotated image's taps leave it there
    for _ in range(2):  # pixels 2 away from the outside: the image's bilinear taps reach 1 pixel further
        near = core.copy()
        near[1:, :] &= core[:-1, :]
        near[:-1, :] &= core[1:, :]
        near[:, 1:] &= core[:, :-1]
        near[:, :-1] &= core[:, 1:]
        core = near
    core = core[1:-1, 1:-1]
    if image.shape[1:] != moved.shape or core.sum() < 8:
        return
    src = moved[core] // 64 - 1
    dy = np.abs(image[0][core] * (H - 1) / 255 - src // W)
    dx = np.abs(image[1][core] * (W - 1) / 255 - src % W)
    near = ((dy <= 1 + (H - 1) / 255) & (dx <= 1 + (W - 1) / 255)).mean()
    if near < 0.95:
        raise chk.fail(f"sample {s.key!r}: move_map moves the target elsewhere than transform moves the image: only "
                       f"{near:.0%} of its pixels come from the source pixel the image's do (within a pixel), with "
                       f"params {params}; an op that also changes colours can skip this check: check_op(op, targets=False)")


def _check_batched(op: Op, samples: list[Sample], seed: int, epochs: int, chk: _Check, atol: float | None,
                   device: Any) -> None:
    rec = _recipe(op, seed)
    tol = _tolerance(op) if atol is None else atol
    rows = [rec.normalize(s) if rec.has_normalize else s for s in samples]
    rows = [Sample(s.key, s.fields, s.sample_rate, {}) for s in rows]
    from mmdata.augment.audio import AUDIO_VALID, AudioOp

    own = type(op).transform_batch not in (Op.transform_batch, AudioOp.transform_batch)
    modes = [False, True] if own else [False]
    sets = [("", rows)]
    padded = _pad_trimmed(list(samples)) if isinstance(op, AudioOp) else None
    if padded is not None:  # as after the trainer's pad_trim: real frames in meta["audio_valid"] (review C F3)
        padded = [rec.normalize(s) if rec.has_normalize else s for s in padded]
        padded = [Sample(s.key, s.fields, s.sample_rate, {k: v for k, v in s.meta.items() if k == AUDIO_VALID})
                  for s in padded]
        sets.append((", clips pad_trim padded", padded))
    for what, batch_rows in sets:
        _check_batched_rows(op, rec, batch_rows, epochs, chk, tol, device, modes, what)


def _pad_trimmed(rows: list[Sample]) -> list[Sample] | None:
    """``rows`` as a ``pad_trim`` (align start) a quarter longer than the longest clip leaves them: zero-padded
    to one width, their real frames in ``meta["audio_valid"]``; None without audio."""
    from mmdata.augment.audio import with_real

    lens = [int(s["audio"].shape[-1]) for s in rows if isinstance(s.fields.get("audio"), torch.Tensor)]
    if not lens:
        return None
    w = max(lens) + max(1, max(lens) // 4)
    return [with_real(s, torch.nn.functional.pad(s["audio"], (0, w - s["audio"].shape[-1])), int(s["audio"].shape[-1]))
            if isinstance(s.fields.get("audio"), torch.Tensor) else s for s in rows]


def _check_batched_rows(op: Op, rec: Any, rows: list[Sample], epochs: int, chk: _Check, tol: float, device: Any,
                        modes: list[bool], what: str) -> None:
    from mmdata.augment import batching

    saved = batching.VECTORISED_ON_CPU
    try:
        for epoch in range(epochs):
            with chk(f"batched == per-sample{what}"):
                per = [rec.apply_sample(s, epoch) for s in rows]
                ref = collate(per)
            for vec in modes:
                batching.VECTORISED_ON_CPU = vec
                kind = ("vectorised kernels on CPU" if vec else "CPU kernels") + what
                with chk(f"batched == per-sample ({kind})"):
                    batch = collate(rows)
                    snap = _snapshot(dict(batch.data))
                    got = rec.apply_batched(batch, epoch)
                    why = _batch_types(got, len(rows))
                    if why:
                        raise chk.fail(f"epoch {epoch}: {why}")
                    if [e[-1] for e in got.meta["aug"]] != [s.meta["aug"][-1] for s in per]:
                        raise chk.fail(f"epoch {epoch}: the batched path drew other params than the per-sample path; "
                                       "sample_params may read shapes and strings only (a batch row is a view)")
                    why = _batch_problem(got, ref, tol)
                    if why:
                        raise chk.fail(f"epoch {epoch}: {why}")
                    why = _mutated(snap, dict(batch.data))
                    if why:
                        raise chk.fail(f"epoch {epoch}: the batched kernel changed its input batch: {why}")
            if device is not None:
                batching.VECTORISED_ON_CPU = saved
                with chk(f"batched == per-sample (on {device}{what})"):
                    got = rec.apply_batched(collate(rows).to(device), epoch).to("cpu")
                    why = _batch_problem(got, ref, tol) or _batch_types(got, len(rows))
                    if why:
                        raise chk.fail(f"epoch {epoch}: {why}")
    finally:
        batching.VECTORISED_ON_CPU = saved


def _check_batch_op(op: Any, samples: list[Sample], seed: int, epochs: int, chk: _Check) -> None:
    from mmdata.augment.recipe import Recipe
    from mmdata.rng import derive

    rec = Recipe(seed, {"batch": [op]})
    twin = build_op("batch", op.to_dict(), op.where)
    for epoch in range(epochs):
        batch = collate(samples)
        snap = _snapshot(dict(batch.data))
        with chk("params"):
            a = op.draw_batch(derive(seed, epoch, "check", 0), batch)
            b = op.draw_batch(derive(seed, epoch, "check", 0), batch)
            bad = contract.params_problem(a)  # first: NaN != NaN
            if bad:
                raise chk.fail(f"{bad}; params go to the log as JSON")
            if a != b:
                raise chk.fail(f"epoch {epoch}: two draws from the same generator differ: {a} vs {b}")
        with chk("output types"):
            out = rec.apply_batch_section(batch, epoch)
            why = _batch_types(out, len(samples))
            if why:
                raise chk.fail(why)
        with chk("no input mutation"):
            why = _mutated(snap, dict(batch.data))
            if why:
                raise chk.fail(f"the batch op changed its input batch: {why}")
        with chk("deterministic apply"):
            again = rec.apply_batch_section(collate(samples), epoch)
            other = Recipe(seed, {"batch": [twin]}).apply_batch_section(collate(samples), epoch)
            for what, x in (("the same batch twice", again), ("build(op.to_dict())", other)):
                why = _batch_problem(x, out, 0.0)
                if why:
                    raise chk.fail(f"epoch {epoch}: {what} gave another batch: {why}")


__all__ = ["check_op", "op_samples", "restored_registry"]
