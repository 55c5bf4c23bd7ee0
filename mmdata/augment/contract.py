"""The op contract, checked where it is cheap: what an op may return and draw, and the context an error
raised inside an op carries.

What the loader expects of a sample (the reader's decoded types, :mod:`mmdata.types`):

* ``image``: a ``torch.uint8`` tensor (C, H, W), C in 1-4 (grey, grey + alpha, RGB, RGBA);
* ``audio``: a ``torch.float32`` tensor (channels, time), with ``sample.sample_rate`` a positive int;
* ``spec`` (``logmel``'s features): a ``torch.float32`` tensor (n_mels, frames);
* ``text``: a ``str``; ``label``: an ``int``; other fields (``.npy`` extras): any array.

mmdata's own ops are trusted (their tests check each kernel); an op defined elsewhere (a plugin, a notebook)
is checked after every ``transform`` (:func:`checked_transform`: only the fields it replaced, a few type
tests, audio it made on the CPU for NaN / Inf), every batched kernel (:func:`check_batch`) and every draw
(:func:`check_params`: a walk of the small params dict). An exception raised inside any op gets a note naming
the recipe step, the op and the sample (:func:`note`), so a bare ``ValueError: kaboom`` from a DataLoader
worker says where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmdata.errors import RecipeError, ShardError
from mmdata.types import Batch, Sample, is_image_field

#: the canonical (dtype, rank, what) of the tensor fields a sample carries into collate
SAMPLE_TENSORS: dict[str, tuple[torch.dtype, int, str]] = {
    "image": (torch.uint8, 3, "a torch.uint8 tensor (C, H, W) with C in 1-4"),
    "audio": (torch.float32, 2, "a torch.float32 tensor (channels, time)"),
    "spec": (torch.float32, 2, "a torch.float32 tensor (n_mels, frames)"),
}
#: the same fields in a batch: one more dim (B first)
BATCH_TENSORS: dict[str, tuple[torch.dtype, int, str]] = {
    "image": (torch.uint8, 4, "a torch.uint8 tensor (B, C, H, W)"),
    "audio": (torch.float32, 3, "a torch.float32 tensor (B, C, T)"),
    "spec": (torch.float32, 3, "a torch.float32 tensor (B, n_mels, frames)"),
    "tokens": (torch.int64, 2, "a torch.int64 tensor (B, L)"),
    "label": (torch.int64, 1, "a torch.int64 tensor (B,)"),
}
MAX_IMAGE_CHANNELS = 4
_NOTED = "_mmdata_noted"  # set on an exception once it names its op: the innermost step is the most precise


class OpError(RecipeError):
    """An op broke the op contract at run time: it returned something the loader cannot batch (a dict, a
    float or channels-last image, int16 audio), changed the sample's key, wrote into its input, or drew
    params that cannot go to the replay log. The message names the recipe step, the op and the sample.

    Example:
        >>> str(OpError("image[0] (op image.invert): ..."))[:8]
        'image[0]'
    """


class InputError(ShardError, ValueError):
    """A sample handed to a recipe's ops (``apply_sample``, ``normalize``, the batched entries) or to
    :func:`~mmdata.types.collate` holds an image or audio the reader never makes (a float or 16-bit image,
    channels last, numpy, 1-D or int16 audio, no sample rate where an op needs one). The message names the
    sample and says how to convert it. A ``ValueError`` too, as collate's other refusals are.

    Example:
        >>> str(InputError("sample 'k': image must be ..."))[:10]
        "sample 'k'"
    """


#: what an image / audio must be, as the input errors say it
IMAGE_RULE = "a torch.uint8 tensor (C, H, W) with 1-4 channels"
AUDIO_RULE = "a torch.float32 tensor (channels, time)"
#: audio of more channels than this, and more of them than time samples, is taken for (time, channels): no
#: recording format but WAV holds more (FLAC 8, Ogg 255), so the reader's own (channels, time) clips pass —
#: a 12-channel clip of 4 samples was refused at 8 (QA)
CHANNELS_LAST_AUDIO = 255


def _got(value: Any) -> str:
    """``torch.float32 (3, 4, 4)`` / ``numpy.ndarray uint8 (32, 24, 3)`` / ``list``: what a field holds."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"numpy.ndarray {value.dtype} {value.shape}"
    return f"a {type(value).__module__}.{type(value).__name__}".replace("builtins.", "")


def image_problem(value: Any) -> str | None:
    """Why ``value`` is no image the built-in ops take (None: it is one): a ``torch.uint8`` tensor (C, H, W),
    C in 1-4, H and W at least 1. The reason ends in the conversion that fixes it.

    Example:
        >>> image_problem(torch.zeros(3, 4, 4))
        'image must be a torch.uint8 tensor (C, H, W) with 1-4 channels, got torch.float32 (3, 4, 4): a float image in [0, 1] -> (x * 255).round().to(torch.uint8)'
    """
    if (isinstance(value, torch.Tensor) and value.dtype is torch.uint8 and value.dim() == 3
            and 0 < value.shape[0] <= MAX_IMAGE_CHANNELS and value.shape[1] > 0 and value.shape[2] > 0):
        return None
    hints = []
    shape = tuple(getattr(value, "shape", ()))
    last = len(shape) == 3 and 1 <= shape[2] <= MAX_IMAGE_CHANNELS and not 1 <= shape[0] <= MAX_IMAGE_CHANNELS
    if isinstance(value, np.ndarray):
        hints.append("a numpy array -> torch.from_numpy(a)" + (".permute(2, 0, 1)" if last else ".unsqueeze(0)" if len(shape) == 2 else ""))
    elif not isinstance(value, torch.Tensor):
        hints.append("decode it to a tensor (torchvision.io.decode_image, or torch.from_numpy(np.asarray(img)).permute(2, 0, 1))")
    else:
        if value.is_floating_point():
            hints.append(_float_image_hint(value))
        elif value.dtype is torch.uint16:
            hints.append("a 16-bit image -> (x.to(torch.int32) >> 8).to(torch.uint8)")
        elif value.dtype is not torch.uint8:
            hints.append(f"a {value.dtype} image -> scale it to 0-255, then .to(torch.uint8)")
        if last:
            hints.append("channels last? x.permute(2, 0, 1)")
        elif len(shape) == 2:
            hints.append("a grey (H, W) image -> x.unsqueeze(0)")
        elif len(shape) == 3 and not 1 <= shape[0] <= MAX_IMAGE_CHANNELS:
            hints.append(f"{shape[0]} channels; 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)")
        elif len(shape) == 3 and not (shape[1] and shape[2]):
            hints.append("an empty image (height or width 0)")
        elif len(shape) != 3:
            hints.append(f"{len(shape)} dims, not 3")
    return f"image must be {IMAGE_RULE}, got {_got(value)}: {'; '.join(hints)}"


def _float_image_hint(value: torch.Tensor) -> str:
    """The conversion of a float image to uint8, by its values: scaled by 255 only when they are within [0, 1]
    (read only on this error path; a 'meta' tensor has none to read)."""
    if value.device.type == "meta" or not value.numel():
        return ("a float image in [0, 1] -> (x * 255).round().to(torch.uint8); one in 0-255 -> "
                "x.round().clamp(0, 255).to(torch.uint8)")
    top = float(value.detach().float().nan_to_num(0.0).abs().max())
    if top > 1.0:
        return f"a float image in 0-255 (its values reach {top:g}) -> x.round().clamp(0, 255).to(torch.uint8)"
    return "a float image in [0, 1] -> (x * 255).round().to(torch.uint8)"


def text_problem(value: Any) -> str | None:
    """Why ``value`` is no text the text ops and collate take (None: it is a ``str``); the reason ends in the
    conversion that fixes it.

    Example:
        >>> text_problem(b"a cat")
        "text must be a str, got a bytes: UTF-8 bytes -> x.decode('utf-8')"
    """
    if isinstance(value, str):
        return None
    if isinstance(value, (bytes, bytearray)):
        hint = "UTF-8 bytes -> x.decode('utf-8')"
    elif isinstance(value, (list, tuple)):
        hint = "several captions -> keep one per sample (or ' '.join(x)); another caption goes in a field of its own"
    else:
        hint = "str(x) if it is meant as text; a missing caption -> leave the field out (or None)"
    return f"text must be a str, got {_got(value)}: {hint}"


def audio_problem(value: Any) -> str | None:
    """Why ``value`` is no audio the built-in ops take (None: it is some): a ``torch.float32`` tensor
    (channels, time) with at least one channel. (T, C) audio — more than 255 channels and more channels than
    samples (at least one) — is refused as channels last.

    Example:
        >>> audio_problem(torch.zeros(16000))
        'audio must be a torch.float32 tensor (channels, time), got torch.float32 (16000,): mono (N,) audio -> x.unsqueeze(0)'
    """
    if (isinstance(value, torch.Tensor) and value.dtype is torch.float32 and value.dim() == 2 and value.shape[0] > 0
            and not (value.shape[0] > CHANNELS_LAST_AUDIO and value.shape[0] > value.shape[1] > 0)):
        return None
    hints = []
    shape = tuple(getattr(value, "shape", ()))
    last = len(shape) == 2 and shape[0] > CHANNELS_LAST_AUDIO and shape[0] > shape[1] > 0
    if isinstance(value, np.ndarray):
        hints.append("a numpy array -> torch.from_numpy(a).float()" + (".T.contiguous()" if last else ".unsqueeze(0)" if len(shape) == 1 else ""))
    elif not isinstance(value, torch.Tensor):
        hints.append("decode it to a (channels, time) float32 tensor")
    else:
        if value.dtype in (torch.int16, torch.int32):
            hints.append(f"integer PCM -> x.float() / {32768 if value.dtype is torch.int16 else 2 ** 31}")
        elif value.dtype is not torch.float32:
            hints.append("x.float()")
        if len(shape) == 1:
            hints.append("mono (N,) audio -> x.unsqueeze(0)")
        elif last:
            hints.append(f"channels last? {shape[0]} channels of {shape[1]} samples; (time, channels) -> x.T.contiguous()")
        elif len(shape) == 2 and not shape[0]:
            hints.append("no channels")
        elif len(shape) != 2:
            hints.append(f"{len(shape)} dims, not 2" + (" (one clip is (channels, time), without a batch dim)" if len(shape) == 3 else ""))
    return f"audio must be {AUDIO_RULE}, got {_got(value)}: {'; '.join(hints)}"


def nonfinite_problem(value: torch.Tensor) -> str | None:
    """Why float audio ``value`` (one clip or a batch) holds no waveform the ops take (None: it does): NaN or
    infinite samples, which every op would pass on to the model. Read only on the CPU: a tensor on a device
    (or 'meta') is not read, as that check would wait for the device on every batch. One pass (a sum,
    finite exactly when every sample is; a finite sum that overflows is checked sample by sample).

    Example:
        >>> nonfinite_problem(torch.tensor([[0.5, float("nan"), 0.1]]))
        'audio holds 1 NaN / infinite sample of 3 (the first at channel 0, time 1): every op would pass it on to the model; clean the source, or x.nan_to_num(0.0, posinf=1.0, neginf=-1.0)'
    """
    found = _nonfinite(value)
    if found is None:
        return None
    return (f"audio holds {found}: every op would pass it on to the model; clean the source, or "
            "x.nan_to_num(0.0, posinf=1.0, neginf=-1.0)")


def _nonfinite(value: torch.Tensor) -> str | None:
    """``1 NaN / infinite sample of 3 (the first at channel 0, time 1)``: the NaN / Inf of float audio ``value``
    on the CPU, or None (none, or a tensor on a device, which is not read). One pass (a sum, finite exactly when
    every sample is; a finite sum that overflows is checked sample by sample)."""
    if value.device.type != "cpu" or not value.numel() or not value.is_floating_point():
        return None
    x = value.detach()
    if bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all()):
        return None
    bad = ~torch.isfinite(x)
    first = [int(i) for i in bad.nonzero()[0]]
    at = ", ".join(f"{d} {i}" for d, i in zip(("row", "channel", "time")[-len(first):], first))
    count = int(bad.sum())
    return f"{count} NaN / infinite sample{'s' * (count > 1)} of {x.numel()} (the first at {at})"


#: what an op that makes NaN / Inf audio is told
_NONFINITE_FIX = ("the op made them from finite audio (a division by zero? the log of 0?): keep its output finite "
                  "(guard the division, or x.nan_to_num(0.0, posinf=1.0, neginf=-1.0))")


def rate_problem(rate: Any) -> str | None:
    """Why ``rate`` is no sample rate (None: it is a positive int, numpy's too)."""
    if isinstance(rate, (int, np.integer)) and not isinstance(rate, bool) and rate > 0:
        return None
    hint = f" -> sample_rate=int({rate!r})" if isinstance(rate, (str, float, np.floating)) and str(rate).replace(".", "", 1).isdigit() else ""
    return f"sample_rate must be a positive int (Hz), got {rate!r}{hint}"


def check_input(sample: Sample, rate_for: str | None = None) -> None:
    """Raise :class:`InputError` naming the sample when its image, audio or text is not what the built-in ops
    take (:func:`image_problem`, :func:`audio_problem`, :func:`text_problem`; a None field is absent), audio
    on the CPU holds NaN / Inf (:func:`nonfinite_problem`: one pass over it), or when ``rate_for`` (the recipe step that reads the rate,
    ``normalize.audio[1] (op resample)``) is given and its audio has no positive int ``sample_rate``.
    Otherwise a few attribute reads per sample: no other tensor is read, none copied."""
    if not isinstance(sample, Sample):
        raise TypeError(f"expected an mmdata.Sample, got {_got(sample)}: wrap the fields as "
                        "Sample(key, fields, sample_rate) (from mmdata import Sample), e.g. Sample('k1', {'image': img})")
    fields = sample.fields
    image, audio, text = fields.get("image"), fields.get("audio"), fields.get("text")
    if text is not None:
        problem = text_problem(text)
        if problem is not None:
            raise InputError(f"sample {sample.key!r}: {problem}")
    if image is not None:
        problem = image_problem(image)
        if problem is not None:
            raise InputError(f"sample {sample.key!r}: {problem}")
    if audio is not None:
        problem = audio_problem(audio) or nonfinite_problem(audio)
        if problem is not None:
            raise InputError(f"sample {sample.key!r}: {problem}")
        if rate_for is not None:
            problem = rate_problem(sample.sample_rate)
            if problem is not None:
                raise InputError(f"sample {sample.key!r}: {problem}; {rate_for} reads the audio's rate "
                                 "(Sample(key, fields, sample_rate=16000))")


def check_batch_input(batch: Batch, rate_for: str | None = None) -> None:
    """:func:`check_input` for a collated batch: ``image`` a uint8 (B, C, H, W) tensor with 1-4 channels,
    ``audio`` float32 (B, C, T) and, for ``rate_for``, ``batch.sample_rate`` a positive int; each of the
    fields the ops read (image, audio, spec, tokens, label) a tensor, and image, audio, spec and text with
    the presence mask (and image and audio with the lengths) :func:`~mmdata.types.collate` gives them —
    without one an op would take every row for absent and leave the batch as it was; keys, masks and lengths
    as collate makes them (:func:`_check_batch_meta`); CPU audio without NaN / Inf (:func:`nonfinite_problem`;
    audio already on a device is not read: that would wait for the device).

    Raises:
        TypeError: ``batch`` is no :class:`~mmdata.types.Batch`.
        InputError: a field is not what the ops take, has no presence mask, or its mask or lengths are not
            what collate makes (:func:`_check_batch_meta`); the message names the field.
    """
    if not isinstance(batch, Batch):
        raise TypeError(f"expected an mmdata.Batch, got {_got(batch)}: build it with mmdata.collate(samples) "
                        "(a list of mmdata.Sample)")
    data = batch.data
    for name in BATCH_TENSORS:
        value = data.get(name)
        if value is not None and not isinstance(value, torch.Tensor):
            fix = " -> torch.from_numpy(x)" if isinstance(value, np.ndarray) else ""
            raise InputError(f"{_what(batch.keys)}: batch[{name!r}] must be {BATCH_TENSORS[name][2]}, got "
                             f"{_got(value)}{fix}")
    for name in ("image", "audio", "spec", "text"):
        missing = [] if name not in data else [
            f"batch.{kind}[{name!r}]" for kind, have in (("present", batch.present), ("lengths", batch.lengths))
            if name not in have and (kind == "present" or name in ("image", "audio"))]
        if missing:
            raise InputError(f"{_what(batch.keys)}: batch[{name!r}] has no {' and no '.join(missing)}: the ops read "
                             f"which rows have {name!r} (and their sizes) from them, and without them would leave every "
                             "row as it is; build the batch with mmdata.collate(samples), which records them")
    image, audio = data.get("image"), data.get("audio")
    if isinstance(image, torch.Tensor) and not (image.dtype is torch.uint8 and image.dim() == 4
                                                and 0 < image.shape[1] <= MAX_IMAGE_CHANNELS):
        row = image[0] if image.dim() > 0 and len(image) else image
        raise InputError(f"{_what(batch.keys)}: batch['image'] holds rows that are no image: {image_problem(row)} "
                         f"(batch {_got(image)})")
    if isinstance(audio, torch.Tensor):
        if not (audio.dtype is torch.float32 and audio.dim() == 3 and audio.shape[1] > 0):
            row = audio[0] if audio.dim() > 0 and len(audio) else audio
            raise InputError(f"{_what(batch.keys)}: batch['audio'] holds rows that are no audio: {audio_problem(row)} "
                             f"(batch {_got(audio)})")
    _check_batch_meta(batch)  # after the data's own checks: a channels-last image is named as one, not by its lengths
    if isinstance(audio, torch.Tensor):
        problem = nonfinite_problem(audio)
        if problem is not None:
            rows = (~torch.isfinite(audio.detach())).flatten(1).any(1).nonzero().flatten().tolist()
            raise InputError(f"{_what(batch.keys)}: batch['audio'] of sample{'s' * (len(rows) > 1)} "
                             f"{', '.join(repr(str(batch.keys[i])) for i in rows[:3])}{', ...' * (len(rows) > 3)}: {problem}")
        if rate_for is not None:
            problem = rate_problem(batch.sample_rate)
            if problem is not None:
                raise InputError(f"{_what(batch.keys)}: batch.{problem}; {rate_for} reads the audio's rate")


#: the lengths collate records: (shape after B, which dims of the data they bound, what they hold)
_LENGTHS = {"image": ((2,), (2, 3), "(B, 2) int64 (height, width)"), "audio": ((), (2,), "(B,) int64 (time samples)"),
            "tokens": ((), (1,), "(B,) int64 (tokens)")}


def _lengths_kind(name: str, value: Any) -> str:
    """The ``_LENGTHS`` entry of field ``name``: ``image`` for a named image field (``frame1.png``: (B, C, H, W)),
    whose lengths are (h, w) as the image's (QA36 video #4, :func:`mmdata.types.field_lengths`); else ``name``."""
    return "image" if isinstance(value, torch.Tensor) and value.dim() == 4 and is_image_field(name) else name


def _check_batch_meta(batch: Batch) -> None:
    """Raise :class:`InputError` when a batch's keys, presence masks or lengths are not what
    :func:`~mmdata.types.collate` makes: one key per row of every data field, each ``present[m]`` a bool
    (B,) tensor, each ``lengths[m]`` an int64 tensor of B rows (image (B, 2), audio and tokens (B,), another
    field (B, its dims)) whose values lie within the padded data. Shapes and dtypes only, except the values of
    host (CPU) lengths — a handful of ints; lengths on a device are not read (that would wait for the device).

    Example:
        >>> b = Batch(keys=["a", "b"], data={"label": torch.tensor([1, 2])}, present={"label": torch.tensor([1, 1])})
        >>> try:
        ...     _check_batch_meta(b)
        ... except InputError as e:
        ...     print(str(e)[:105])
        a batch of 2 samples ('a', 'b'): batch.present['label'] must be a torch.bool tensor (B,) = (2,) (one flag
    """
    keys = batch.keys
    if not isinstance(keys, (list, tuple)):
        raise InputError(f"batch.keys must be a list of the samples' keys (one per row), got {_got(keys)}")
    n, where = len(keys), _what(keys)
    for name, value in batch.data.items():
        if name == "text" and isinstance(value, list) and len(value) != n:
            raise InputError(f"{where}: batch.keys has {n} keys but batch['text'] has {len(value)} texts: one key per "
                             "row (mmdata.collate(samples) gives them)")
        if name in BATCH_TENSORS and isinstance(value, torch.Tensor) and (value.dim() == 0 or value.shape[0] != n):
            rows = "no rows (a 0-dim tensor)" if value.dim() == 0 else f"{value.shape[0]} rows"
            raise InputError(f"{where}: batch.keys has {n} keys but batch[{name!r}] has {rows} ({_got(value)}): one key "
                             "per row (mmdata.collate(samples) gives them)")
    for name, mask in batch.present.items():
        if not (isinstance(mask, torch.Tensor) and mask.dtype is torch.bool and tuple(mask.shape) == (n,)):
            fix = ""
            if isinstance(mask, (list, tuple, np.ndarray)):
                fix = " -> torch.tensor(x, dtype=torch.bool)"
            elif isinstance(mask, torch.Tensor) and mask.dtype is not torch.bool and tuple(mask.shape) == (n,):
                fix = " -> x.bool()"
            raise InputError(f"{where}: batch.present[{name!r}] must be a torch.bool tensor (B,) = ({n},) (one flag per "
                             f"key: does the row hold {name!r}), got {_got(mask)}{fix}")
    for name, ln in batch.lengths.items():
        value = batch.data.get(name)
        tail, dims, what = _LENGTHS.get(_lengths_kind(name, value), (None, (), "(B, its dims) int64"))
        if tail is None and isinstance(value, torch.Tensor) and value.dim() > 1:
            tail, dims = (value.dim() - 1,), tuple(range(1, value.dim()))
        shape = str((n, *(tail or ())))
        ok = isinstance(ln, torch.Tensor) and ln.dtype is torch.int64 and ln.dim() >= 1 and ln.shape[0] == n
        if ok and tail is not None:
            ok = tuple(ln.shape[1:]) == tail
        if not ok:
            fix = " -> x.long()" if isinstance(ln, torch.Tensor) and ln.dtype is not torch.int64 and not ln.is_complex() else ""
            raise InputError(f"{where}: batch.lengths[{name!r}] must be {what}, shape {shape} here, got {_got(ln)}{fix}")
        if not isinstance(value, torch.Tensor) or ln.device.type != "cpu" or not n:
            continue  # values read only on the host (no device sync), against a data tensor to bound them
        bound = [int(value.shape[d]) for d in dims if d < value.dim()]
        if not bound:  # a field of one value per row: no size to bound
            continue
        rows = ln.reshape(n, -1).tolist()  # a few ints: Python, not a torch reduction (no OpenMP region)
        cols = list(zip(*rows))
        if len(cols) == len(bound) and all(min(c) >= 0 and max(c) <= b for c, b in zip(cols, bound)):
            continue
        for i, row in enumerate(rows):  # the first row out of range, for the message
            if len(row) == len(bound) and all(0 <= v <= b for v, b in zip(row, bound)):
                continue
            raise InputError(f"{where}: batch.lengths[{name!r}] must be {what} with values in "
                             f"{' x '.join(f'[0, {b}]' for b in bound)} (batch[{name!r}] is {_got(value)}), got "
                             f"{row if len(row) > 1 else row[0]} for row {i} (key {str(keys[i])!r})")


def describe(op: Any) -> str:
    """``image[0] (op image.invert, class myops.Invert)``: how errors name an op (the class only when it is
    not one of mmdata's own, where the name says it all)."""
    cls = type(op)
    head = f"{getattr(op, 'where', '?')} (op {cls.section}.{cls.name}"
    if not getattr(cls, "_builtin", False):
        head += f", class {cls.__module__}.{cls.__qualname__}"
    return head + ")"


def note(exc: BaseException, op: Any, key: Any) -> None:
    """Add ``mmdata: in recipe step image[0] (op image.invert, ...) on sample 'k3'`` to ``exc`` (a note: the
    exception keeps its type, so handlers and tests of it still match), once: the innermost step wins.
    ``key``: a sample key, or a list of them (a batch)."""
    if getattr(exc, _NOTED, False):
        return
    from mmdata.io import out_of_memory

    if out_of_memory(exc) is not None:  # the machine's memory, not this step's or this sample's fault
        return
    try:
        add_note(exc, f"mmdata: in recipe step {describe(op)} on {_what(key)}")
        setattr(exc, _NOTED, True)
    except (AttributeError, TypeError):  # an exception type without __dict__ / notes: leave it as it is
        pass


def add_note(exc: BaseException, text: str) -> None:
    """``BaseException.add_note`` on Python 3.11+; on 3.10, which has no notes (nor prints ``__notes__``), the
    note joins ``__notes__`` and, for an exception whose one argument is its message, the message itself
    (on a new line), so a 3.10 user reads it too.

    Raises:
        AttributeError, TypeError: the exception takes no attributes (a type without ``__dict__``).

    Example:
        >>> err = ValueError("bad pixel")
        >>> add_note(err, "mmdata: in recipe step image[0]")
        >>> getattr(err, "__notes__")
        ['mmdata: in recipe step image[0]']
    """
    if hasattr(exc, "add_note"):
        exc.add_note(text)
        return
    notes = getattr(exc, "__notes__", None)
    exc.__notes__ = [*(notes if isinstance(notes, list) else []), text]  # type: ignore[attr-defined]
    if len(exc.args) == 1 and isinstance(exc.args[0], str) and not isinstance(exc, KeyError):  # KeyError reprs its arg
        exc.args = (f"{exc.args[0]}\n{text}",)


def _what(key: Any) -> str:
    """``sample 'k3'``, or ``a batch of 8 samples ('k0', 'k1', 'k2', ...)`` for a list of keys."""
    if isinstance(key, (list, tuple)):
        shown = ", ".join(repr(str(k)) for k in key[:3])
        return f"a batch of {len(key)} samples ({shown}{', ...' if len(key) > 3 else ''})"
    return f"sample {key!r}"


def fail(op: Any, key: Any, problem: str) -> OpError:
    """The :class:`OpError` for ``problem`` of ``op`` on the sample (or batch of samples) ``key``, marked as
    naming its place already (no note is added to it)."""
    err = OpError(f"{describe(op)} on {_what(key)}: {problem}")
    setattr(err, _NOTED, True)  # the message names the place already
    return err


def field_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the sample field ``name`` (None: it can).

    Example:
        >>> field_problem("image", torch.zeros(24, 32, 3, dtype=torch.uint8))
        "'image' has shape (24, 32, 3): 24 channels; expected a torch.uint8 tensor (C, H, W) with C in 1-4 (channels last? use .permute(2, 0, 1))"
    """
    if value is None:
        return f"{name!r} is None; remove a field with sample.without({name!r}) instead"
    rule = SAMPLE_TENSORS.get(name)
    if rule is not None:
        dtype, rank, what = rule
        if not isinstance(value, torch.Tensor):
            hint = " (torch.from_numpy(a) makes one; an image as (C, H, W))" if isinstance(value, np.ndarray) else ""
            return f"{name!r} is a {type(value).__module__}.{type(value).__name__}; expected {what}{hint}"
        if value.dtype != dtype:
            hint = ""
            if name == "image" and value.is_floating_point():
                hint = " (a float image in [0, 1]? scale and round: (x * 255).round().clamp(0, 255).to(torch.uint8))"
            elif name in ("audio", "spec"):
                hint = " (x.float(); integer PCM: x.float() / 32768)"
            return f"{name!r} has dtype {value.dtype}; expected {what}{hint}"
        if value.dim() != rank:
            return f"{name!r} has shape {tuple(value.shape)}; expected {what}"
        if name == "image" and not 1 <= value.shape[0] <= MAX_IMAGE_CHANNELS:
            return (f"{name!r} has shape {tuple(value.shape)}: {value.shape[0]} channels; expected {what} "
                    "(channels last? use .permute(2, 0, 1))")
        return None
    if name == "text" and not isinstance(value, str):
        return f"'text' is a {type(value).__name__} ({value!r:.40}); expected a str"
    if name == "label" and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        return f"'label' is a {type(value).__name__} ({value!r:.40}); expected an int class id"
    return None


def check_sample(op: Any, before: Sample, out: Any, *, every_field: bool = False, original: Sample | None = None,
                 written: Any = ()) -> None:
    """Raise :class:`OpError` when ``out`` (what ``op`` made of ``before``) is no sample the loader can batch:
    not a :class:`~mmdata.types.Sample`, another key, a field it replaced (or wrote into in place: ``written``,
    names of ``before``'s fields) of the wrong type, dtype or rank, or NaN / Inf audio it made from finite
    audio (``every_field``: every field, also those it left alone). ``before`` may be the private copy
    :func:`checked_transform` handed the op; ``original`` is then the sample it was copied from, which the
    audio is judged against. A class with ``copy_input = False`` is not read for NaN (unless ``every_field``:
    :func:`mmdata.testing.check_op`)."""
    key = before.key
    if not isinstance(out, Sample):
        hint = " (return sample.with_fields(image=...), a new Sample)" if isinstance(out, Mapping) or out is None else ""
        raise fail(op, key, f"transform returned {type(out).__name__}, expected an mmdata.Sample{hint}")
    if out.key != key:
        raise fail(op, key, f"transform changed the sample key to {out.key!r}; keys identify samples (draws, logs, "
                             "resume): keep it")
    old = before.fields
    for name, value in out.fields.items():
        if every_field or old.get(name) is not value or name in written:
            problem = field_problem(name, value)
            if problem is not None:
                raise fail(op, key, problem)
    if "audio" in out.fields and (every_field or out.sample_rate != before.sample_rate or old.get("audio") is not out.fields["audio"]):
        sr = out.sample_rate
        if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
            raise fail(op, key, f"sample_rate is {sr!r} with 'audio' present; expected a positive int (Hz)")
    audio = out.fields.get("audio")
    if (isinstance(audio, torch.Tensor) and (every_field or getattr(op, "copy_input", None) is not False)
            and (every_field or old.get("audio") is not audio or "audio" in written)):
        # on the CPU only (a device tensor is not read: that would wait for the device); a source's NaN is
        # check_input's to name, at the recipe's entry. Judged against the sample the op was given, not the
        # private copy it may have written into (x.div_(x.abs().amax()) on a silent clip)
        was = (original if original is not None else before).fields.get("audio")
        found = _nonfinite(audio)
        if found is not None and (not isinstance(was, torch.Tensor) or _nonfinite(was) is None):
            raise fail(op, key, f"transform returned audio holding {found}; {_NONFINITE_FIX}")


def params_problem(params: Any, path: str = "params") -> str | None:
    """Why ``params`` cannot go to the replay log (JSON) — None when it can: dicts with str keys, lists,
    str, int, finite float and bool; a numpy scalar or array, a tuple (the log gives it back as a list, which a
    kernel may treat otherwise) and NaN / infinity (no JSON: the log's ``NaN`` token is refused by strict JSON
    readers) are named with their path (``params['shift']``).

    Example:
        >>> params_problem({"size": (3, 4)})
        "params['size'] is a tuple; use a list (the replay log's JSON gives a list back)"
    """
    if isinstance(params, float) and not math.isfinite(params):  # np.float64 is a float too
        what = "NaN is not JSON" if math.isnan(params) else "an infinity is not JSON"
        return f"{path} is {params!r}: {what} (strict JSON readers refuse the log's token); use None or a finite number"
    if params is None or isinstance(params, (str, bool, int, float)):  # np.float64 is a float: JSON writes it
        return None
    if isinstance(params, tuple):
        return f"{path} is a tuple; use a list (the replay log's JSON gives a list back)"
    if isinstance(params, dict):
        for k, v in params.items():
            if not isinstance(k, str):
                return f"{path} has key {k!r} of type {type(k).__name__}; JSON keys are strings"
            bad = params_problem(v, f"{path}[{k!r}]")
            if bad:
                return bad
        return None
    if isinstance(params, list):
        for j, v in enumerate(params):
            bad = params_problem(v, f"{path}[{j}]")
            if bad:
                return bad
        return None
    hint = " (.tolist() / float() / int() make JSON values)" if isinstance(params, (np.ndarray, np.generic, torch.Tensor)) else ""
    return f"{path} is a {type(params).__module__}.{type(params).__name__}, not JSON{hint}"


def check_params(op: Any, params: Any, sample: Any) -> None:
    """Raise :class:`OpError` when ``sample_params`` / ``fallback_params`` returned no dict of JSON values
    (params go to ``meta["aug"]``, the Parquet replay log and back: a numpy value would fail only when the log
    is saved, far from the op)."""
    key = getattr(sample, "key", None)
    if not isinstance(params, dict):
        raise fail(op, key, f"sample_params returned {type(params).__name__}; expected a dict of JSON values (or None: "
                             "nothing to do for this sample)")
    if "applied" in params:
        raise fail(op, key, "sample_params returned an 'applied' key; the protocol sets it (return None for "
                             "'nothing to do')")
    bad = params_problem(params)
    if bad:
        raise fail(op, key, f"{bad}; params go to the replay log as JSON")


def _private(sample: Sample, names: Any) -> Sample:
    """``sample`` with fresh copies of its tensors / arrays among ``names`` (and a fresh fields and meta dict)."""
    fields = dict(sample.fields)
    for k in names:
        v = fields.get(k)
        if isinstance(v, torch.Tensor):
            fields[k] = v.clone()
        elif isinstance(v, np.ndarray):
            fields[k] = v.copy()
    return Sample(sample.key, fields, sample.sample_rate, dict(sample.meta))


def _versions(fields: Mapping[str, Any], skip: Any = ()) -> list[tuple[str, torch.Tensor, int]]:
    out = []
    for k, v in fields.items():
        if k not in skip and isinstance(v, torch.Tensor):
            try:
                out.append((k, v, v._version))
            except RuntimeError:  # an inference-mode tensor has no version counter
                pass
    return out


def checked_transform(op: Any, sample: Sample, params: dict[str, Any]) -> Sample:
    """``op.transform(sample, params)`` for an op defined outside mmdata, within the contract: the op works on
    a private copy of the fields it may write (its ``field``; every field for a sample-level op) unless it
    says it never writes into its input (``copy_input = False``), so a kernel that writes in place cannot
    corrupt the loader's cached samples (``cache=True``) or the caller's; any other input tensor written in
    place (torch's version counter) and any return the loader cannot batch raise :class:`OpError`."""
    copied: Any = ()
    if op._copies:
        copied = (op.field,) if op.field is not None else tuple(sample.fields)
        src = _private(sample, copied)
    else:
        src = sample
    watched = _versions(sample.fields, copied)
    mine = _versions({k: src.fields[k] for k in copied if k in src.fields})  # the private copies, which it may write
    out = op.transform(src, params)
    for k, t, ver in watched:
        if t._version != ver:
            raise fail(op, sample.key, f"transform wrote into the input's {k!r} tensor in place; a cached sample "
                                        "(loader cache=True) would carry the change into the next epoch: return new tensors "
                                        "(x = x.clone() before in-place ops, or out-of-place ops)")
    check_sample(op, src, out, original=sample, written=[k for k, t, ver in mine if t._version != ver])
    return out


def check_batch(op: Any, before: Batch, out: Any, *, written: Any = ()) -> None:
    """Raise :class:`OpError` when a batched kernel of an op defined outside mmdata returned no batch like
    collate makes: not a :class:`~mmdata.types.Batch`, other keys, a replaced field of the wrong dtype / rank,
    a replaced field whose size no longer fits ``batch.lengths`` (lengths left as they were), a mix target the
    loss cannot read (:func:`mix_problem`: ``label_b`` without ``mix_lam``...), or NaN / Inf audio made from
    finite audio (on the CPU only; not read for a class with ``copy_input = False``). ``written``: the fields of
    ``before`` the kernel wrote into in place (torch's version counter, read by the caller), checked as replaced
    ones; their NaN is the op's (a source's is refused where the recipe starts, :func:`check_batch_input`)."""
    keys = before.keys
    if not isinstance(out, Batch):
        raise fail(op, keys, f"the batched kernel returned {type(out).__name__}; expected an mmdata.Batch "
                              "(batch.replace(image=...))")
    if list(out.keys) != list(keys):
        raise fail(op, keys, "the batched kernel changed the batch's keys (rows are matched to samples by position)")
    for name, value in out.data.items():
        if before.data.get(name) is value and name not in written:
            continue
        rule = BATCH_TENSORS.get(name)
        if rule is not None:
            dtype, rank, what = rule
            if not isinstance(value, torch.Tensor) or value.dtype != dtype or value.dim() != rank or value.shape[0] != len(keys):
                got = (f"{type(value).__name__} {value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor)
                       else type(value).__name__)
                raise fail(op, keys, f"batch[{name!r}] is {got}; expected {what} with B = {len(keys)}")
        elif name == "text" and (not isinstance(value, list) or len(value) != len(keys) or not all(isinstance(t, str) for t in value)):
            raise fail(op, keys, f"batch['text'] must be a list of {len(keys)} str")
    if any(out.data.get(k) is not before.data.get(k) for k in ("label_b", "mix_lam")):
        problem = mix_problem(out)
        if problem is not None:
            raise fail(op, keys, problem)
    for name, ln in out.lengths.items():
        value = out.data.get(name)
        if isinstance(value, torch.Tensor) and value is not before.data.get(name):
            problem = _lengths_problem(name, value, ln, before, keys)
            if problem is not None:
                raise fail(op, keys, f"{problem}: update batch.lengths[{name!r}] when the kernel changes the length "
                                     "(each row's valid size; collate's padding lies past it)")
    audio, was = out.data.get("audio"), before.data.get("audio")
    if (isinstance(audio, torch.Tensor) and audio.dim() == 3 and (audio is not was or "audio" in written)
            and getattr(op, "copy_input", None) is not False):
        found = _nonfinite(audio)  # on the CPU only, as check_batch_input at the entry
        if found is not None and ("audio" in written or not isinstance(was, torch.Tensor) or _nonfinite(was) is None):
            bad = ~torch.isfinite(audio.detach())
            rows = bad.flatten(1).any(1).nonzero().flatten().tolist()
            names = ", ".join(repr(str(keys[i])) for i in rows[:3]) + ", ..." * (len(rows) > 3)
            raise fail(op, keys, f"the batched kernel returned batch['audio'] holding {found} in the rows of "
                                 f"sample{'s' * (len(rows) > 1)} {names}{_in_padding(bad, out.lengths.get('audio'))}; "
                                 f"{_NONFINITE_FIX}")


def _in_padding(bad: torch.Tensor, lengths: Any) -> str:
    """`` (all past batch.lengths['audio']: ...)`` when every True of ``bad`` (B, C, T) lies past its row's length
    (``lengths``, host int64 (B,)), else ``""``: NaN in the padding only, which a model that reads whole rows
    still sees."""
    if not (isinstance(lengths, torch.Tensor) and lengths.device.type == "cpu" and tuple(lengths.shape) == bad.shape[:1]):
        return ""
    valid = torch.arange(bad.shape[-1]) < lengths.reshape(-1, 1, 1)
    if bool((bad & valid).any()):
        return ""
    return (" (all past batch.lengths['audio'] (the padding, which a model reading the whole row sees): pad "
            "with 0.0, as collate does)")


def mix_problem(batch: Batch) -> str | None:
    """Why a mixed batch's targets are not what the loss reads (None: they are, or the batch is not mixed):
    ``label_b`` and ``mix_lam`` together on a batch with labels (the loss mixes only when both are there:
    with one of them each row trains on its own label alone), ``mix_lam`` alone on one without (a metadata
    target mixes with it), ``mix_lam`` a float tensor (B,) of weights in [0, 1] (read on the CPU only),
    ``label_b`` an int64 tensor (B,).

    Example:
        >>> b = Batch(keys=["a", "b"], data={"label": torch.tensor([0, 1]), "label_b": torch.tensor([1, 0])})
        >>> mix_problem(b)[:50]
        "writes batch['label_b'] but no batch['mix_lam']: t"
    """
    n, lb, lam = len(batch.keys), batch.data.get("label_b"), batch.data.get("mix_lam")
    loss = "the loss mixes the targets (mix_lam * CE(label) + (1 - mix_lam) * CE(label_b)) only when both are there"
    if lb is not None and lam is None:
        return (f"writes batch['label_b'] but no batch['mix_lam']: {loss}, so every row would train on its own label "
                "alone; write batch['mix_lam'], a float32 tensor (B,) (1.0 where a row's label is not mixed)")
    if lam is not None and lb is None and "label" in batch.data:
        return (f"writes batch['mix_lam'] but no batch['label_b'] on a batch with labels: {loss}, so a run that trains "
                "the class label would train every row on its own label alone; write batch['label_b'] whenever the "
                "batch has a 'label' (the class loss reads it, whatever target this run trains): the partner's label "
                "(a row's own where it is not mixed)")
    if lam is not None and not (isinstance(lam, torch.Tensor) and lam.is_floating_point() and tuple(lam.shape) == (n,)):
        return f"batch['mix_lam'] is {_got(lam)}; expected a float tensor (B,) = ({n},): one weight of the row's own label per row"
    if lam is not None and lam.device.type == "cpu":  # B numbers; a device tensor is not read (a wait per batch)
        off = ~((lam >= 0) & (lam <= 1))  # NaN too
        if bool(off.any()):
            i = int(off.nonzero()[0])
            return (f"batch['mix_lam'] holds {float(lam[i]):g} at row {i} (key {str(batch.keys[i])!r}); expected weights "
                    "in [0, 1]: the share of the row's own target in the mix")
    if lb is not None and not (isinstance(lb, torch.Tensor) and lb.dtype is torch.int64 and tuple(lb.shape) == (n,)):
        return f"batch['label_b'] is {_got(lb)}; expected a torch.int64 tensor (B,) = ({n},): the partner's class id per row"
    return None


def _lengths_problem(name: str, value: torch.Tensor, ln: Any, before: Batch, keys: Any) -> str | None:
    """Why the ``lengths`` an op's batched kernel left for field ``name`` do not fit the ``value`` it returned
    (None: they do, or they are not host int64 tensors of one row per key, which is no length change): a
    row longer than the padded size, or a size that grew past every row while the lengths stayed as they
    were. Host lengths only (a few ints); the data's shape is read, never its values."""
    n = len(keys)
    if not (isinstance(ln, torch.Tensor) and ln.device.type == "cpu" and ln.dtype is torch.int64 and ln.dim() >= 1
            and ln.shape[0] == n and n):
        return None
    kind = _lengths_kind(name, value)
    dims = _LENGTHS[kind][1] if kind in _LENGTHS else tuple(range(1, value.dim()))
    rows = ln.reshape(n, -1).tolist()
    if not rows or len(rows[0]) != len(dims) or any(d >= value.dim() for d in dims):
        return None
    bound = [int(value.shape[d]) for d in dims]
    size = f"{bound[0]} wide" if len(bound) == 1 else f"{' x '.join(map(str, bound))} ({'height x width' if name == 'image' else 'in its sized dims'})"
    for i, row in enumerate(rows):
        if any(v > b for v, b in zip(row, bound)):
            return (f"batch[{name!r}] is {size} but batch.lengths[{name!r}] holds {row if len(row) > 1 else row[0]} "
                    f"(row {i}, key {str(keys[i])!r})")
    was, old_ln = before.data.get(name), before.lengths.get(name)
    if not (isinstance(was, torch.Tensor) and isinstance(old_ln, torch.Tensor) and was.dim() == value.dim()):
        return None
    if ln is not old_ln and not (ln.shape == old_ln.shape and torch.equal(ln, old_ln)):
        return None  # the kernel wrote lengths of its own
    top = [max(c) for c in zip(*rows)]
    for d, b, t in zip(dims, bound, top):
        if b != int(was.shape[d]) and b > t:
            most = top if len(top) > 1 else top[0]
            return f"batch[{name!r}] is {size} but batch.lengths[{name!r}] holds {most} at most, as before the kernel"
    return None
