"""The op reference (``docs/ops.md``), generated from the op registry: every op, its section, whether
it may run in the ``normalize`` stage, its parameters (kind, default, range or choices, meaning) and the
agreement between its per-sample and batched kernels.

Regenerate with ``python -m mmdata.augment.reference > docs/ops.md``; ``tests/augment/test_reference.py``
fails when the file is stale.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from mmdata.augment.base import KIND_DOC, Op, Param, registry
from mmdata.augment.contract import CHANNELS_LAST_AUDIO

SECTION_DOC = {
    "image": "uint8 (C, H, W) images; batched kernels on (B, C, H, W). **Accepted**: a `torch.uint8` tensor (C, H, W), "
             "C in 1-4 (grey, grey + alpha, RGB, RGBA), H and W at least 1. A float or 16-bit image, a channels-last "
             "(H, W, C) or 2-D (H, W) one and a numpy array are refused where they enter (`apply_sample`, `normalize`, "
             "the batched entries, `collate`) with an error naming the sample and the conversion that fixes it "
             "(`(x * 255).round().to(torch.uint8)`, `x.permute(2, 0, 1)`, `torch.from_numpy(a)`).",
    "audio": "float32 (C, T) waveforms with a sample rate; batched kernels on (B, C, T) with lengths. `spec` is the "
             "(n_mels, frames) field written by `logmel`. **Accepted**: a `torch.float32` tensor (channels, time) with "
             "at least one channel; `sample_rate` a positive int (Hz) wherever a recipe runs an op that reads it "
             "({rate_ops}). 1-D (N,) audio (`x.unsqueeze(0)`), (time, channels) audio (more than {channels_last} channels and more "
             "channels than samples: `x.T.contiguous()`), integer PCM (`x.float() / 32768`), float64 and numpy "
             "arrays are refused where they enter (`apply_sample`, `normalize`, the batched entries, `collate`) with "
             "an error naming the sample. So is audio holding NaN or ±Inf, which every op would pass on to the model — "
             "checked on CPU tensors only (one pass over the samples): a batch already on a GPU (`augment_on=\"device\"`, "
             "or `apply_batched` on your own CUDA batch) is not read, as that check would wait for the device on every "
             "batch; check such audio yourself (`torch.isfinite(x).all()`) where it does not come from the reader (whose "
             "decode stops on a NaN WAV). Finite audio far beyond ±1 is taken as it is: a clip whose power overflows "
             "float32 (amplitudes around 1e17 and above) gives `inf` in `logmel`'s `spec`. A hand-built `Batch` must "
             "hold what `collate` makes: one key per row, each `present[m]` a bool (B,) tensor, `lengths['audio']` "
             "int64 (B,) within the padded time (`lengths['image']` int64 (B, 2) within the padded height and width); "
             "anything else is refused naming the field (lengths on a device are checked for dtype and shape, not read).",
    "text": "token-level edits (tokens: words split at white space or U+200B, single CJK characters); the batched kernels edit token ids.",
    "sample": "cross-modal ops: one draw applied to several modalities of a sample.",
    "batch": "mixing after collate (training only); params drawn per batch.",
}


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v == int(v) and abs(v) < 1e6:
        return f"{v:.1f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _allowed(p: Param) -> str:
    if p.choices is not None:
        return ", ".join(f"`{c}`" for c in p.choices)
    if p.lo is None and p.hi is None:
        return ""
    return f"[{_fmt(p.lo)}, {_fmt(p.hi)}]"


def _doc(cls: type[Op]) -> str:
    return " ".join(line.strip() for line in (inspect.getdoc(cls) or "").split("\n\n")[0].splitlines())


def op_reference() -> str:
    """The markdown of ``docs/ops.md``.

    Example:
        >>> "| `size` | int or [height, width] | 64 | [1, 16384] |" in op_reference()
        True
    """
    reg = registry()
    out = ["# Augmentation op reference", "",
           "Generated from the op registry (`python -m mmdata.augment.reference > docs/ops.md`; a test fails when this "
           "file is stale). A recipe step is `{op: NAME, p: P, id: ID, **params}`:", "",
           "* `p` (number in [0.0, 1.0], default 1.0): probability that the op applies to a sample. Ops whose field is "
           "absent (a missing modality, an empty caption) never apply.",
           "* `id` (optional, 1-64 letters, digits, `_`, `-`): the op's identity for its random draws; default "
           "`section.op#k` (its occurrence among ops of that name in the section). Draws are keyed by identity, not "
           "position, so removing, adding or re-parameterising one op leaves the others' draws unchanged.",
           "* **normalize**: deterministic ops (no random params) may also run in the recipe's `normalize` stage "
           "(`normalize: {image: [...], audio: [...], text: [...]}`, `p` must be 1.0), which runs per sample on every "
           "split before collate.",
           "* **kernels**: the tolerance states how closely the batched torch kernel (`augment_on=\"device\"`) "
           "matches the per-sample CPU kernel (`augment_on=\"workers\"`) for the same params; "
           "`tests/augment/test_ops.py` checks every op against it.",
           "* **loading is strict**: a recipe file may have any suffix (JSON is YAML too) and must be UTF-8; a key "
           "given twice in one mapping is an error; numbers must be finite and are never `true`/`false`; a bare "
           "string where a list is expected is a one-element list (`modalities: image`); `one_of` / `some_of` nest "
           "at most 32 deep; YAML anchors and aliases may reuse a block, but a recipe may hold at most 100,000 "
           "values once aliases are expanded; `freq_mask` and `time_mask` with `target: spec` need a `logmel` "
           "before them (in `audio` or `normalize.audio`); a `batch` section has at most one mixing op.",
           "* **targets**: ops marked *moves* move the image's pixels; a recipe's `targets: {seg.png: mask}` (per-pixel "
           "maps beside the image: masks, depth) move with them (nearest, the target's fill where pixels come in); "
           "*refused* ops blend two images and cannot run with targets; the others leave mask targets as they are. "
           "Image targets (`targets: {frame1.png: image}`: a clip's other frames, a stereo pair's other view) get "
           "every image op with the image's params (the same draw; image interpolation; colour ops too).",
           "* **arrays**: `.npy` fields (`array`, `imu`, `ecg`) are outside the augmentation engine: a recipe has no "
           "section for them (`array:` is an unknown section), no op reads them, and `modality_dropout` drops image, "
           "audio and text only. Augment them per sample with the loader's `transform` (`mmdata.loader(ds, "
           "transform=fn)`, after the recipe, in the workers): `fn(s)` returns a new sample, `s.with_fields(ecg=x)` "
           "(crop or pad a window, add noise, transpose a (C, T) file, pick channels) or `s.without(\"ecg\")` (a "
           "dropped sensor); draw its randomness with `mmdata.rng.derive(seed, epoch, s.key, \"ecg\")`, a pure function of "
           "its arguments, so runs repeat. `collate` zero-pads a field's arrays (numpy or torch) along every axis to "
           "the batch's largest, each row's shape in `batch.lengths[field]` (in every batch, also when every row "
           "has one shape, zeros where a row is absent: a recording's length, the frames of "
           "`logmel`'s (n_mels, frames) `spec` on its last axis, a (C, T) window's T), and refuses a batch whose "
           "arrays differ in rank, naming the samples. Arrays differing in more than one axis (a (T, C) file among "
           "(C, T) ones, 1 lead among 12) pad with a `PaddingWarning` naming the samples per shape and the fix (a "
           "`transform` that reorients or picks channels), once per field; per-pixel maps whose last two or first "
           "two axes follow their sample's image (`mask.npy` (H, W), `flow.npy` (H, W, 2), a half-resolution depth) "
           "pad without it. `mmdata shard` warns of a rank mix, and of files differing in more than one axis in a "
           "dataset without images; the card records each field's `varying_axes`.",
           "* **keypoints and boxes**: coordinates stored as arrays (`pose.npy` (T, 75, 3) of x, y, confidence, "
           "keypoints (K, 2), boxes (N, 4)) are arrays too: the ops that move the image's pixels (*moves* below: "
           "flips, crops, rotations, `consistent_hflip`) leave them as they are, in `mmdata augment`'s copies as in the "
           "loader, so after a flip or crop they no longer match the image. The recipe warns once, naming the field, "
           "when a sample holds an array of at least 2 axes with 2-4 values on the last (what coordinates look like) "
           "beside an image it moves, unless its first or last two axes follow the image (as stored, or at 1/2, 1/4 or "
           "1/8 of its size: `flow.npy` (H, W, 2) is a per-pixel map; mirror flow yourself, x -> width - x does not "
           "apply to it). The shape alone cannot tell an IMU window (T, 3) or a GPS track (T, 2) from keypoints: the "
           "warning says \"if it holds x, y coordinates\"; other arrays need nothing. Move coordinates in the loader's `transform`: it gets each sample after the recipe, "
           "with what each op did in `s.meta[\"aug\"]` (`{\"op\": \"image.hflip\", \"params\": {\"applied\": true}}`): for "
           "an applied flip, x -> width - x (1 - x for coordinates in [0, 1]) and swap the left and right joints; "
           "a crop's params give its box. Class names that name a side (`LEFT`, `turn_right`) are not swapped "
           "either: a flip warns of them (`mmdata augment`, `mmdata preview`, and in the warnings of `mmdata train` and "
           "`mmdata ablate`'s runs; not where the data has no image to flip); the words are those of `consistent_hflip`'s "
           "pairs, also in CamelCase (`TurnLeft`), not inside another word (`bright`) nor in `all right`, `right of "
           "way`, `right angle`. Map the label in the same `transform`.",
           "* **padding in augment output**: `mmdata augment` writes a clip that a normalize `pad_trim` padded "
           "(`align: start`) as its real frames, without the padding, so the output's `lengths[\"audio\"]` and "
           "`audio_seconds` are the real lengths, as the loader gives them with the same recipe; the trim is kept. "
           "With `align: center` the padding is written (both ends: the real frames do not start the clip), and "
           "`lengths[\"audio\"]` / `audio_seconds` are the whole window, as the loader gives them for `center`; use "
           "`align: start` to keep the real lengths. "
           "Pad to one width in the training recipe's `normalize` (its collate pads a batch anyway).", ""]
    for section in ("image", "audio", "text", "sample", "batch"):
        names = sorted(n for s, n in reg if s == section)
        rate_ops = ", ".join(f"`{n}`" for n in names if reg[(section, n)].needs_rate)
        out += [f"## {section}", "", SECTION_DOC[section].replace("{rate_ops}", rate_ops).replace(
            "{channels_last}", str(CHANNELS_LAST_AUDIO)), "",
                "| op | normalize | targets | kernels agree |", "|---|---|---|---|"]
        for n in names:
            cls = reg[(section, n)]
            tol = "one kernel (batches only)" if section == "batch" else cls.tolerance
            moves = "" if not cls.moves_pixels else "refused" if section == "batch" else "moves"
            if n in ("one_of", "some_of") and section in ("image", "sample"):
                moves = "as each child"
            out.append(f"| [`{n}`](#{section}-{n}) | {'yes' if cls.deterministic else ''} | {moves} | {tol} |")  # GitHub's anchor
        out.append("")
        for n in names:
            cls = reg[(section, n)]
            out += [f"### {section}: {n}", "", _doc(cls), ""]
            params = dict(cls.PARAMS)
            if n in ("one_of", "some_of"):
                params["ops"] = Param("list", [], doc=f"the child steps ({section} ops, each `{{op: NAME, ...}}`)")
            if not params:
                out += ["No parameters besides `p` and `id`.", ""]
                continue
            out += ["| param | kind | default | allowed | meaning |", "|---|---|---|---|---|"]
            for k, p in params.items():
                out.append(f"| `{k}` | {KIND_DOC.get(p.kind, p.kind)} | {_fmt(p.default)} | {_allowed(p)} | {p.doc} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(op_reference())
