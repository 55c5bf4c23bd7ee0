"""``mmdata augment``: write K augmented copies of every training sample as a new, verifiable dataset.

Only the *augmented splits* (``train`` by default; ``--augment-split`` / ``augment_splits`` opts other
splits in) get the random sections and the copies: copy *k* of sample ``key`` gets key
``<key>_aug<k>`` (:func:`copy_key`) and draws its params from that key (so copies differ from each other
and are reproducible); ``--keep-original`` also writes the source sample under its own key. A pass over
augment output (its card's ``augmentation`` entry says so) is pass *n* = 2, 3, ...: its copies are
``<key>_p<n>aug<k>``, as a kept ``X_aug0`` of the input and ``X``'s new copy would otherwise share a key;
the card's ``augmentation`` entry records ``pass`` from pass 2 on. Output keys are checked unique before
anything is written: a collision left (bare shards of augment output: no card says which pass) is refused
naming both input samples. Every other
split (val, test, ...) is written through once, under its own keys, with the recipe's deterministic
``normalize`` stage only — what the loader gives it with ``stage="eval"`` — so a model trained on the
output is never scored on augmented copies of its validation or test data. Media are re-encoded
so the loader reads back the values it would have given (PNG images; audio as 16- or 24-bit FLAC when its
values lie on that grid, else 32-bit float WAV, never clipped; UTF-8 text, ``.npy`` features), and the
applied params of each sample are stored in the index column ``aug_params`` (JSON). Splits are kept;
the card's ``augmentation`` entry names the ``augmented_splits`` and the ``eval_splits``. A normalize
``pad_trim`` trims as it does in the loader, but its zero padding is not written (padding is a batching
concern: the written clip is its real frames, ``meta["audio_valid"]``; ``recipe.replay`` of the logged params
gives the padded clip, whose first ``audio_valid`` frames are the written ones). A 16-bit source
image (``image_mode`` ``I;16`` / ``I`` in the index) written as read — a split not augmented, or an
original ``--keep-original`` keeps — keeps the source's image member (its bytes, 16 bits and all: the
loader reads from it the values it read before) when the recipe's normalize stage has no image op; its
augmented copies (the image ops work on 8-bit images), or every row where the normalize stage changes
images, are 8-bit PNGs, counted and named in a warning and in the card (:func:`sixteen_bit_note`). Batch-section
ops (mixup, mixgen) mix samples and are training-time only, so they are refused here.

Provenance: each row of the output's ``index.parquet`` names the input sample it was made from in
``aug_source`` (its key in the input dataset), and in ``source_key`` what that sample was sharded from (the
original file's stem or manifest key, from the input's index; for bare shards, which have no index, the
input key), so predictions of a model trained on the output (``predictions.parquet:source_key``) name the
user's files, and a second pass over augment output still names the first pass's originals.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.augment.audio import AUDIO_SECONDS, collect_notes, notes_summary, real_frames
from mmdata.augment.image import blends_alpha
from mmdata.augment.recipe import Recipe, load_recipe, params_seed, refusal
from mmdata.checks import did_you_mean, plural
from mmdata.codecs import IMAGE_EXTS, NON_FINITE_AUDIO, TEXT_EXTS, encode_text
from mmdata.errors import RecipeError, ShardError
from mmdata.shards.sources import SKIP_REASON, Record, json_member
from mmdata.shards.writer import say_to_caller
from mmdata.types import Sample
from mmdata.urls import is_remote, lookup

#: card entries an augmented copy keeps from its source's card: what they describe passes through unchanged
#: (the citation and homepage too: CC BY asks a derivative to credit the source as it asks to be credited)
CARRIED_CARD_KEYS = ("metadata_columns", "metadata_kinds", "citation", "homepage")


def card_attribution(card: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The per-source attribution a card holds — a builder's entry (``avdigits.attribution``: each
    modality's source, creators, licence) or, for an augmented copy, its source's
    (``augmentation.augmented_from.attribution``) — or None.

    Example:
        >>> card_attribution({"avdigits": {"attribution": [{"modality": "image", "source": "sklearn digits"}]}})
        [{'modality': 'image', 'source': 'sklearn digits'}]
        >>> card_attribution({"augmentation": {"augmented_from": {"attribution": [{"source": "x"}]}}})
        [{'source': 'x'}]
    """
    found = next((v["attribution"] for k, v in card.items()
                  if k != "augmentation" and isinstance(v, dict) and v.get("attribution")), None)
    if found is None:
        aug = card.get("augmentation")
        src = aug.get("augmented_from") if isinstance(aug, dict) else None
        found = src.get("attribution") if isinstance(src, dict) else None
    return [dict(a) for a in found] if isinstance(found, list) and found else None


def encode_sample(sample: Sample) -> dict[str, bytes]:
    """Encode decoded fields back to member bytes: the standard fields as PNG, audio as the loader will read
    it back exactly (:func:`audio_member`), UTF-8 and ``cls``; an array field ``<name>`` as
    ``<name>.npy``; a named text or JSON field (``caption_de.txt``, ``seg.json``) as UTF-8 / JSON under its
    name; a field kept as bytes (``mp4``, ``voice.flac``) as it was. A named image field (``depth.png``:
    its stored values) goes back into a PNG when it came from one and a PNG holds its values exactly (uint8
    with 1-4 channels, 0..65535 with 1, 3 or 4 channels as 16-bit, bool); else (a JPEG's or float TIFF's
    values) ``depth.jpg.npy`` — the same field, the same values. Audio with NaN / inf is refused
    (ShardError naming the sample): the loader would refuse it. A clip ``pad_trim`` zero-padded (``align:
    start``: its real frames in ``meta["audio_valid"]``) is written without the padding, so a reader's
    ``lengths["audio"]`` and the index's ``audio_seconds`` are its real length, as the loader gives them with
    the same recipe (the trim is kept: a clip is at most ``seconds`` long); the training recipe's own
    ``pad_trim`` pads a batch to one width again."""
    from PIL import Image

    out: dict[str, bytes] = {}
    for name, val in sample.items():
        if name == "label":
            continue
        buf = io.BytesIO()
        if name == "image":
            arr = val.numpy()
            Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(buf, format="PNG")
            out["png"] = buf.getvalue()
        elif name == "audio":
            # a clip pad_trim padded: its real frames only (meta["audio_valid"]). The padding is a batching concern
            # (the loader's collate pads a batch again, its lengths["audio"] the real frames): written, it became
            # audio, and every reader's lengths and the index's seconds counted it (QA37 podcast #3)
            val = val[..., :real_frames(sample)]
            if not np.isfinite(val.numpy()).all():  # the loader refuses such audio: say so here, naming the sample
                raise ShardError(f"sample {sample.key!r}: {NON_FINITE_AUDIO} after the recipe; the loader refuses such "
                                 "audio, so it is not written")
            ext, data = audio_member(val.numpy(), int(sample.sample_rate))
            out[ext] = data
        elif name == "text":
            out["txt"] = encode_text(str(val))  # reads back as it was read: no line end lost per generation
        elif hasattr(val, "shape"):
            png = _png_of(name, np.asarray(val))
            if png is not None:
                out[name] = png
            else:
                np.save(buf, np.asarray(val), allow_pickle=False)
                out[f"{name}.npy"] = buf.getvalue()
        elif isinstance(val, (bytes, bytearray, memoryview)):  # the field is the member's extension
            out[name] = bytes(val)
        elif name == "json" or name.endswith(".json"):  # any JSON value, a string too
            out[name] = _json_bytes(val)
        elif isinstance(val, str):
            out[name if name.rsplit(".", 1)[-1] in TEXT_EXTS else f"{name}.txt"] = encode_text(val)
        else:  # a mapping / list / number a user's op put in a field of its own name
            out[f"{name}.json"] = _json_bytes(val)
    _check_member_sizes(sample.key, out)
    return out


def _check_member_sizes(key: str, members: dict[str, bytes]) -> None:
    """Refuse a member the readers would refuse (larger than their ``max_member_bytes``,
    :data:`mmdata.shards.tario.DEFAULT_MAX_MEMBER_BYTES`): written, it passed verify and failed every
    read (QA: 24 minutes of 48 kHz stereo after ``gain`` as a 1.3 GB float WAV)."""
    from mmdata.shards import tario

    limit = tario.DEFAULT_MAX_MEMBER_BYTES
    for ext, data in members.items():
        if len(data) > limit:
            raise ShardError(f"sample {key!r}: member {key}.{ext} would be {len(data):,} bytes, more than the readers "
                             f"read (max_member_bytes {limit:,} bytes), so it is not written; make it smaller in the "
                             f"recipe's normalize stage (audio: pad_trim with pad: false caps the duration, resample "
                             f"lowers the rate, to_mono; images: resize), or --on-error skip leaves such samples out")


def audio_member(wav: np.ndarray, rate: int) -> tuple[str, bytes]:
    """A (C, T) float clip as the member that decodes back to exactly these values: 16-bit FLAC when every
    value lies on the 16-bit grid (a 16-bit source), 24-bit FLAC on the 24-bit grid, else 32-bit float WAV
    (an augmented clip: gain, noise, resampling) — never clipped (a clip louder than full scale stays louder,
    as the loader gives it) and never requantised.

    Example:
        >>> audio_member(np.array([[0.5, -0.25]], np.float32), 8000)[0], audio_member(np.array([[0.1]], np.float32), 8000)[0]
        ('flac', 'wav')
    """
    import soundfile as sf

    x = np.ascontiguousarray(wav.T, dtype=np.float32)
    buf = io.BytesIO()
    if not x.size or x.shape[1] > 8:  # FLAC holds 1-8 channels and no empty stream libsndfile reads back
        return "wav", float_wav(x, rate)
    for bits, subtype in ((15, "PCM_16"), (23, "PCM_24")):
        scaled = x.astype(np.float64) * 2.0**bits
        if (np.isfinite(scaled).all() and (np.rint(scaled) == scaled).all() and scaled.min() >= -2.0**bits
                and scaled.max() < 2.0**bits):
            sf.write(buf, x, rate, format="FLAC", subtype=subtype)
            return "flac", buf.getvalue()
    return "wav", float_wav(x, rate)


def float_wav(x: np.ndarray, rate: int) -> bytes:
    """(T, C) float32 samples as a 32-bit float WAV (IEEE float, a ``fact`` chunk), byte for byte the same for
    the same samples: libsndfile's float WAV carries a PEAK chunk with the time it was written."""
    import struct

    frames, channels = x.shape
    data = np.ascontiguousarray(x, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32, 0)
    body = b"".join((b"WAVE", b"fmt ", struct.pack("<I", len(fmt)), fmt, b"fact", struct.pack("<II", 4, frames),
                     b"data", struct.pack("<I", len(data)), data))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _png_of(name: str, arr: np.ndarray) -> bytes | None:
    """A named image field from a PNG (``depth.png``, CHW values) as a PNG that decodes to exactly these
    values (``codecs.decode_image_values``), or None (not from a PNG, or no PNG mode holds them)."""
    from PIL import Image

    if not name.endswith(".png") or arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        return None
    c = arr.shape[0]
    if arr.dtype == np.bool_ and c == 1:
        im = Image.fromarray(arr[0])  # mode "1"
    elif arr.dtype == np.uint8 and c in (1, 2, 3, 4):
        im = Image.fromarray(arr[0] if c == 1 else arr.transpose(1, 2, 0), {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])
    elif arr.dtype.kind in "iu" and c == 1 and arr.size and 0 <= int(arr.min()) and int(arr.max()) <= 0xFFFF:
        im = Image.fromarray(arr[0].astype(np.uint16))  # 16-bit greyscale (decoded as int32)
    elif arr.dtype.kind in "iu" and c in (3, 4) and arr.size and 0 <= int(arr.min()) and int(arr.max()) <= 0xFFFF:
        import cv2  # 16-bit colour (decoded as int32): Pillow writes no 48- / 64-bit PNG, cv2 does (BGR(A) order)

        ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr.transpose(1, 2, 0)[..., [2, 1, 0, 3][:c]].astype(np.uint16)))
        return buf.tobytes() if ok else None
    else:
        return None
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _json_bytes(val: Any) -> bytes:
    """A JSON field's member: the bytes ``mmdata shard`` writes for the value; one holding NaN / inf
    (which Python's json writes, and reads back) as Python's json writes it."""
    try:
        return json_member(val)
    except ValueError:
        return json_member(val, allow_nan=True)


def _log(out: Sample) -> str:
    return json.dumps([{"op": e["op"], "id": e.get("id"), "params": e["params"]} for e in out.meta.get("aug", [])],
                      sort_keys=True)


def copy_key(key: str, k: int, pass_no: int = 1) -> str:
    """The key of augmented copy ``k`` of input sample ``key`` in augment pass ``pass_no``: ``<key>_aug<k>``
    in a first pass (over data that is not augment output), ``<key>_p<n>aug<k>`` in pass *n* >= 2 (over
    augment output: there ``<key>_aug<k>`` is already an input key, ``--keep-original`` would write both).

    Example:
        >>> copy_key("cat_1a2b3c4d", 0), copy_key("cat_1a2b3c4d_aug0", 1, pass_no=2)
        ('cat_1a2b3c4d_aug0', 'cat_1a2b3c4d_aug0_p2aug1')
    """
    return f"{key}_aug{k}" if pass_no == 1 else f"{key}_p{pass_no}aug{k}"


def augment_command(*, copies: int = 1, keep_original: bool = False, seed: int = 0, splits: list[str] | None = None,
                    augment_splits: list[str] | None = None, maxcount: int = 1000, on_error: str = "raise",
                    name: str | None = None, license: str | None = None, description: str | None = None) -> str:
    """The ``mmdata augment`` command line that gives an output, from :func:`augment_dataset`'s options:
    ``SRC`` and ``OUT`` for the source and the output, ``RECIPE`` for the recipe (the card's
    ``augmentation.recipe_given`` written to a file: the card records the recipe by its content, not by
    the name of the file it came from, so the same job gives the same card however its recipe was given),
    then each option that is not its default (options that never change the bytes, such as ``workers``,
    are left out).

    Example:
        >>> augment_command(copies=2, seed=5, augment_splits=["train", "val"])
        'mmdata augment SRC OUT -r RECIPE --copies 2 --seed 5 --augment-split train,val'
        >>> augment_command(license="CC BY 4.0")
        "mmdata augment SRC OUT -r RECIPE --license 'CC BY 4.0'"
    """
    import shlex

    words = ["mmdata", "augment", "SRC", "OUT", "-r", "RECIPE"]
    for flag, value, default in (("--copies", copies, 1), ("--keep-original", keep_original, False),
                                 ("--seed", seed, 0), ("--split", splits, None),
                                 ("--augment-split", augment_splits, None), ("--maxcount", maxcount, 1000),
                                 ("--on-error", on_error, "raise"), ("--name", name, None),
                                 ("--license", license, None), ("--description", description, None)):
        if value == default:
            continue
        words += [flag] if value is True else [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return shlex.join(words)


#: a licence text with a NoDerivatives term: CC's ``ND`` after BY / NC / SA (CC-BY-ND-4.0, CC BY-NC-ND 3.0, CCBYND,
#: cc_by_nd_4_0), "NoDerivatives", "NoDerivs" — not a lone "nd" ("nd-weather") nor prose ("no derivative restriction")
_NO_DERIVATIVES = re.compile(r"(?i)(?:by|nc|sa)[\s_.-]*nd(?![a-z])|no[_-]?deriv(?:ative)?s\b")
#: how :func:`derived_license` begins: a second pass reads the first's licence from augmented_from, not this text
_ADAPTED = "adapted from "


def no_derivatives(license: Any) -> bool:
    """Whether the licence text ``license`` forbids sharing adaptations (Creative Commons' NoDerivatives: ``ND``).

    Example:
        >>> [no_derivatives(x) for x in ("CC-BY-ND-4.0", "CC BY-NC-ND 3.0", "Attribution-NoDerivatives 4.0", "CC-BY-4.0", None)]
        [True, True, True, False, False]
        >>> [no_derivatives(x) for x in ("CCBYND", "nd-weather licence: CC-BY-4.0", "There is no derivative restriction")]
        [True, False, False]
    """
    return isinstance(license, str) and _NO_DERIVATIVES.search(license) is not None


def source_license(card: Mapping[str, Any]) -> Any:
    """The licence id of the material in the dataset of ``card``: its ``license``, or for augment output whose
    license is :func:`derived_license`'s text, the id its source had (``augmentation.augmented_from.license``).

    Example:
        >>> source_license({"license": derived_license("CC-BY-ND-4.0"),
        ...                 "augmentation": {"augmented_from": {"license": "CC-BY-ND-4.0"}}})
        'CC-BY-ND-4.0'
    """
    lic = card.get("license")
    aug = card.get("augmentation")
    src = aug.get("augmented_from") if isinstance(aug, Mapping) else None
    if isinstance(src, Mapping) and src.get("license") is not None:
        fields = src.get("field_licenses") if isinstance(src.get("field_licenses"), Mapping) else None
        if lic == derived_license(src["license"], fields):  # what the earlier pass wrote, not a --license given
            return src["license"]
        # its fields' part names which ND fields that pass adapted and which it copied: the recipe's, not known here
        if (fields and isinstance(lic, str) and lic.startswith(f"{src['license']}, except field ")
                and lic.endswith(_SEE_FIELDS)):
            return src["license"]
    return lic


def field_licenses(card: Mapping[str, Any]) -> dict[str, str]:
    """Each field's own licence in ``card``: ``modalities.<field>.license`` (``mmdata add-modality --license``), else
    what an augment output's card carried of its source's (``augmentation.augmented_from.field_licenses``).

    Example:
        >>> field_licenses({"modalities": {"depth": {"license": "CC-BY-ND-4.0"}, "image": {"codecs": ["png"]}}})
        {'depth': 'CC-BY-ND-4.0'}
    """
    aug = card.get("augmentation")
    src = aug.get("augmented_from") if isinstance(aug, Mapping) else None
    carried = src.get("field_licenses") if isinstance(src, Mapping) else None
    out = {str(k): v for k, v in (carried or {}).items() if isinstance(v, str)} if isinstance(carried, Mapping) else {}
    mods = card.get("modalities")
    for name, entry in (mods.items() if isinstance(mods, Mapping) else ()):
        if isinstance(entry, Mapping) and isinstance(entry.get("license"), str):
            out[str(name)] = entry["license"]
    return dict(sorted(out.items()))


def copied_fields(recipe: Any, card: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """Those of the card's ``fields`` that ``recipe`` never changes (:func:`~mmdata.augment.recipe.changed_fields`):
    its copies hold them as read, unless an earlier augment pass adapted them (the card's ``license`` says so). A
    card field is matched by its name (``image``, ``depth.png``) or its members' extensions (``depth.npy`` of a
    field ``depth`` from add-modality). None copied where a sample op from outside mmdata may change any field.

    Example:
        >>> copied_fields({"image": [{"op": "hflip"}]}, {"modalities": {"depth": {"codecs": ["depth.npy"]}}},
        ...               ["depth", "image"])
        ['depth']
    """
    from mmdata.augment.recipe import changed_fields

    changed = changed_fields(recipe)
    lic = card.get("license") if isinstance(card.get("license"), str) else ""
    if changed is None or lic.startswith(_ADAPTED):
        return []
    mods = card.get("modalities") if isinstance(card.get("modalities"), Mapping) else {}
    out = []
    for f in fields:
        entry = mods.get(f) if isinstance(mods.get(f), Mapping) else {}
        codecs = entry.get("codecs") if isinstance(entry.get("codecs"), list) else []
        if f"field {f!r}: {_ADAPTED}" in lic:  # an earlier pass adapted it: a copy of an adaptation is one
            continue
        if f not in changed and not any(str(c) in changed or f"{f}.{c}" in changed for c in codecs):
            out.append(f)
    return out


def field_license_origin(card: Mapping[str, Any], field: str, license: Any, copied: bool) -> dict[str, Any]:
    """Where the licence of ``field`` in ``card`` comes from, as :func:`no_derivatives_note`'s ``origin`` and
    ``earlier``: carried from an earlier augment pass's source (``augmentation.augmented_from.field_licenses``),
    else the field's own (``modalities.<field>.license``, given by ``add-modality --license`` where it added it)."""
    aug = card.get("augmentation")
    src = aug.get("augmented_from") if isinstance(aug, Mapping) else None
    carried = src.get("field_licenses") if isinstance(src, Mapping) else None
    if isinstance(carried, Mapping) and carried.get(field) == license:
        return {"origin": "its source's field licence, augmentation.augmented_from.field_licenses",
                "earlier": not copied}
    mods = card.get("modalities")
    entry = mods.get(field) if isinstance(mods, Mapping) and isinstance(mods.get(field), Mapping) else {}
    given = ": add-modality --license" if entry.get("added_by") == "add-modality" else ""
    return {"origin": f"the field's own licence, modalities.{field}.license{given}"}


#: how :func:`derived_license` ends where it names a field's licence
_SEE_FIELDS = "(see augmentation.augmented_from.field_licenses)"
#: what the card and the warning say of a NoDerivatives field the recipe leaves as it is
_COPIED = "copied unchanged (still under ND: sharing copies is allowed, adaptations not)"


def derived_license(license: Any, fields: Mapping[str, str] | None = None, copied: Iterable[str] = ()) -> Any:
    """The ``license`` an augment output's card gives when no ``--license`` is given: the source's, except a
    NoDerivatives licence, which covers the source's material, not an adaptation of it (augmented copies are
    one): then a text that says so, the source's licence kept as such in ``augmentation.augmented_from.license``.
    ``fields``: the source's per-field licences (:func:`field_licenses`); a NoDerivatives one is named too, as
    adapted, or as copied unchanged where it is in ``copied`` (fields the recipe does not change).

    Example:
        >>> derived_license("CC-BY-4.0")
        'CC-BY-4.0'
        >>> derived_license("CC-BY-ND-4.0")
        'adapted from CC-BY-ND-4.0 material, which forbids sharing adaptations (see augmentation.augmented_from.license)'
        >>> derived_license("CC-BY-4.0", {"depth": "CC-BY-ND-4.0"})[:60]
        "CC-BY-4.0, except field 'depth': adapted from CC-BY-ND-4.0 m"
        >>> derived_license("CC-BY-4.0", {"depth": "CC-BY-ND-4.0"}, copied=["depth"])[:63]
        "CC-BY-4.0, except field 'depth': CC-BY-ND-4.0, copied unchanged"
    """
    nd = {f: v for f, v in (fields or {}).items() if no_derivatives(v)}
    if no_derivatives(license):
        return f"{_ADAPTED}{license} material, which forbids sharing adaptations (see augmentation.augmented_from.license)"
    if nd:
        copied = set(copied)
        named = "; ".join(f"field {f!r}: {v}, {_COPIED}" if f in copied else
                          f"field {f!r}: {_ADAPTED}{v} material, which forbids sharing adaptations"
                          for f, v in nd.items())
        return f"{license}, except {named} {_SEE_FIELDS}"
    return license


def no_derivatives_note(license: Any, name: str, given: str | None = None, field: str | None = None,
                        earlier: bool = False, copied: bool = False, origin: str | None = None) -> str | None:
    """The warning (console and card) for augmenting a dataset whose licence (or one field's, ``field``) is
    NoDerivatives, or None. ``earlier``: the licence is the source's source's (a second augment pass).
    ``copied``: the recipe leaves ``field`` as it is (:func:`mmdata.augment.recipe.changed_fields`): its copies
    are no adaptation. ``origin``: where the field's licence is written (said in the note)."""
    if not no_derivatives(license):
        return None
    origin = origin or "the field's own licence"
    if field and copied:
        kept = ("the output's card names that licence for it (its license; augmentation.augmented_from.field_licenses)"
                if given is None else
                f"the output's card gives --license {given!r} as you asked")
        verb = "holds material under" if earlier else "is licensed"
        return (f"field {field!r} of source dataset {name} {verb} {license} ({origin}), a NoDerivatives licence: "
                f"the recipe does not change this field, so it is {_COPIED}; {kept}")
    card = (f"the output's card gives --license {given!r} as you asked" if given is not None else
            "the output's card does not claim that licence for the copies (its license says they are an adaptation; "
            "augmentation.augmented_from keeps the source's)")
    what = (f"field {field!r} of source dataset {name} {'holds material under' if earlier else 'is licensed'} "
            f"{license} ({origin})" if field else
            f"source dataset {name} holds material under {license} (its source's licence)" if earlier else
            f"source dataset {name} is licensed {license}")
    return (f"{what}, a NoDerivatives licence: it forbids sharing adapted "
            f"material, and augmented copies are adaptations. Use the output for your own training only; do not "
            f"publish or share it unless the rights holder allows it; {card}")


def augment_pass(card: dict[str, Any], src: Any = "the dataset") -> int:
    """The pass an augment job over the dataset of ``card`` is: 1 for a dataset that is not augment
    output (no ``augmentation`` entry; bare shards, which have no card), else the entry's ``pass`` + 1
    (a card without ``pass`` was written by a first pass). A ``pass`` other than a whole number >= 1 is
    a ShardError naming the card (it is untrusted).

    Example:
        >>> augment_pass({}), augment_pass({"augmentation": {"copies": 2}}), augment_pass({"augmentation": {"pass": 2}})
        (1, 2, 3)
    """
    entry = card.get("augmentation")
    if entry is None:
        return 1
    where = f"{str(src).rstrip('/')}/dataset.json"
    if not isinstance(entry, dict):
        raise ShardError(f"{where}: augmentation is {entry!r}; expected a mapping (what `mmdata augment` wrote)")
    done = entry.get("pass", 1)
    if isinstance(done, bool) or not isinstance(done, int) or done < 1:
        raise ShardError(f"{where}: augmentation.pass is {done!r}; expected a whole number >= 1 (the augment pass "
                         f"that wrote the dataset; absent: 1)")
    return done + 1


def _planned_keys(key: str, split_augmented: bool, copies: int, keep_original: bool, pass_no: int) -> list[str]:
    """The output keys of input sample ``key``, as :func:`sample_copies` makes them: the sample itself (a
    split not augmented, or ``keep_original``) and its copies."""
    if not split_augmented:
        return [key]
    return ([key] if keep_original else []) + [copy_key(key, k, pass_no) for k in range(copies)]


def _check_unique_keys(planned: Iterable[tuple[str, str, str]], src: Any, keep_original: bool) -> None:
    """Refuse a job two of whose output samples would share a key, naming both input samples and the way
    out, before anything is written; ``planned``: ``(output key, input key, split)`` of every output
    sample. After :func:`copy_key`'s pass suffix a collision is left only where the pass is unknown (bare
    shards of augment output: ``X``'s copy ``X_aug0`` beside the input's ``X_aug0``, kept) or the input's
    own keys look like copies (``Y`` beside ``Y_aug0``); the writer's own error named one original file on
    both sides."""
    seen: dict[str, tuple[str, str]] = {}
    for out_key, in_key, split in planned:
        if out_key not in seen:
            seen[out_key] = (in_key, split)
            continue
        (a, sa), (b, sb) = seen[out_key], (in_key, split)
        if a == b:  # one input key in two splits (bare shards, one split each, are checked where they are planned)
            raise ShardError(f"{src}: input sample {a!r} would be written in split {sa} and in split {sb}; write one "
                             f"split at a time (--split)")

        def role(k: str, sp: str) -> str:
            if k != out_key:
                return f"an augmented copy of input sample {k!r} (split {sp})"
            how = "kept by --keep-original" if keep_original else "written through"
            return f"input sample {k!r} (split {sp}), {how}"

        ways = ["augment the dataset folder rather than its shards (its dataset.json names the pass: copies of "
                "augment output are keyed <key>_p<n>aug<k>)"]
        if keep_original:
            ways.append("leave out --keep-original")
        raise ShardError(f"{src}: two output samples would have key {out_key!r}: {role(a, sa)}, and {role(b, sb)}; "
                         f"nothing was written. The input's keys look like augment output's (<key>_aug<k> beside "
                         f"<key>): {', or '.join(ways)}, or reshard the input under other keys")


def sample_copies(s: Sample, recipe: Recipe, copies: int, keep_original: bool, split: str,
                  wanted: set[str] | None = None, augment: bool = True, on_error: str = "raise",
                  source_key: str | None = None, pass_no: int = 1,
                  columns: Mapping[str, Any] | None = None, checks: _CopyChecks | None = None) -> Iterator[Record]:
    """The records of one source sample: itself (``keep_original``) and its ``copies`` augmented
    copies ``copy_key(key, k, pass_no)`` (``<key>_aug<k>`` in a first pass), each drawn from its own key
    (the original through the recipe's normalize stage, as the copies and the other splits); only those
    keyed in ``wanted`` when given (the others are not augmented). ``augment=False`` (a split that is not
    augmented): one record under the sample's own key, with the recipe's normalize stage only (``copies`` and
    ``keep_original`` do not apply). ``on_error="skip"``: a copy the recipe refuses (ShardError: a target
    of another size than its image, a random_crop larger than it) is a record without members that says
    why, which the writer reports as skipped, naming the source sample.

    Each record's ``source_key`` is ``source_key`` (what ``s`` was sharded from, from the input's index;
    default: ``s.key``) and its ``aug_source`` column ``s.key``; a record the writer reports as skipped (no
    member) names ``s.key``, the sample to look up in the input. ``columns``: index columns of the source row
    every record of it carries as they are (a ``--segment`` sample's ``segment_*``: the recording it was cut
    from, :func:`segment_columns`). ``checks``: what each augmented copy shows is counted there
    (:class:`_CopyChecks`)."""
    label = s.get("label")
    carried = dict(columns or {})
    origin = s.key if source_key is None else source_key
    # the whole clip's length where the reader decoded only its start (reader_options): a trimming pad_trim then
    # logs the trim it makes of the clip as the source holds it, so the replay log reproduces the output from it
    whole = {AUDIO_SECONDS: s.meta[AUDIO_SECONDS]} if AUDIO_SECONDS in s.meta else {}

    def made(key: str, stage: str) -> Record:
        try:
            out = recipe.apply_sample(Sample(key, s.fields, s.sample_rate, whole), epoch=0, stage=stage)
            if checks is not None:
                checks.made += 1
                if stage == "train":
                    checks.copy(s, out)
            members = encode_sample(out)
            return Record(out.key, origin if members else s.key, members, out.get("label", label), split,
                          extra={**carried, "aug_params": _log(out), "aug_source": s.key})
        except ShardError as exc:
            if on_error != "skip":
                raise
            return Record(key, s.key, {}, None, split, extra={SKIP_REASON: f"refused by the recipe: {refusal(exc)}"})

    if not augment:
        if wanted is None or s.key in wanted:
            yield made(s.key, "eval")
        return
    if keep_original and (wanted is None or s.key in wanted):
        # through the normalize stage, as the copies and the other splits: an offline-normalized dataset is
        # one rate / size / channel count throughout (kept raw, 8-96 kHz originals sat beside 22 kHz copies)
        yield made(s.key, "eval")
    for k in range(copies):
        key = copy_key(s.key, k, pass_no)
        if wanted is None or key in wanted:
            yield made(key, "train")


#: the finding kinds :class:`_CopyChecks` counts beside the audio ops' (:func:`~mmdata.augment.audio.collect_notes`)
INERT, BLANK = "inert", "blank image"


def _constant(x: Any) -> bool:
    """Whether the image ``x`` (a tensor or array, any layout) holds one value throughout (one colour per channel
    is not enough: a white page is 255 in every channel)."""
    flat = x.reshape(-1)
    return bool(flat.numel() if hasattr(flat, "numel") else flat.size) and bool((flat == flat[0]).all())


class _CopyChecks:
    """What the augmented copies of one task show that the recipe cannot tell up front, as findings ``(kind,
    key, detail)`` in ``found`` (the list :func:`~mmdata.augment.audio.collect_notes` collects the audio ops' in):
    a copy of a sample that holds no field the recipe's random sections act on (QA38 IQ #11: "augmented: 1 copy
    each" of 112 samples, 84 of them byte copies), and a copy whose image is one colour where its source's was
    not (QA38 OCR #2: random_crop cut 20 of 44 pages to a white patch; inspect then called them label errors)."""

    def __init__(self, recipe: Recipe, found: list[tuple[str, str, str]]) -> None:
        self._random = load_recipe({k: v for k, v in recipe.to_dict().items() if k != "normalize"})
        self._inert: dict[tuple[str, ...], str | None] = {}
        self.found = found
        self.checked = 0  # augmented copies
        self.made = 0  # every record the recipe made (the audio ops' checks see the normalize stage's too)

    def _reads(self, have: tuple[str, ...]) -> str | None:
        """None where the random sections can act on a sample holding ``have``; else what they read."""
        if have not in self._inert:
            from mmdata.augment.recipe import inert_parts

            _, none = inert_parts(self._random, have)
            secs = [sec for sec in ("image", "audio", "text", "sample") if self._random.sections.get(sec)]
            self._inert[have] = ", ".join(secs) if none and not self._random.is_empty else None
        return self._inert[have]

    def copy(self, src: Sample, out: Sample) -> None:
        self.checked += 1
        have = tuple(m for m in ("image", "audio", "text") if src.fields.get(m) is not None)
        reads = self._reads(have)
        if reads is not None:
            self.found.append((INERT, out.key, f"holds {', '.join(have) or 'none of image, audio, text'}; the random "
                                               f"sections read {reads}"))
        before, after = src.fields.get("image"), out.fields.get("image")
        if before is not None and after is not None and _constant(after) and not _constant(before):
            ops = [f"{e['op']} {json.dumps({k: v for k, v in e['params'].items() if k != 'applied'})}"
                   for e in out.meta.get("aug", []) if str(e.get("op", "")).startswith("image.")
                   and e.get("params", {}).get("applied")]
            self.found.append((BLANK, out.key, "; ".join(ops) or "the image ops"))


#: image ops that move pixels but keep all of the content in the frame: never the cause of a one-colour copy
_KEEPS_CONTENT = frozenset(("image.hflip", "image.vflip", "image.resize", "image.pad_to_size"))


def _blank_cause(hits: Sequence[tuple[str, str]]) -> str:
    """Why copies came out one colour, and what to change, from the image ops their findings name (``hits``:
    key, "image.rotate {...}; image.brightness_contrast {...}"): the ops moving pixels cut or turn the content
    away; the others (``brightness_contrast``) saturate a faint image to one value. It blamed the crop and rotate
    whatever the ops were (QA39 ecommerce #9: a brightness_contrast beta of 50 made a pale grey image white)."""
    from mmdata.augment.base import registry

    named = list(dict.fromkeys(part.split(" ", 1)[0] for _, d in hits for part in d.split("; ") if part.startswith("image.")
                               and part.split(" ", 1)[0] not in _KEEPS_CONTENT))
    classes = {n: registry().get(("image", n.split(".", 1)[1])) for n in named}
    moving = [n for n, c in classes.items() if c is None or getattr(c, "moves_pixels", False)]
    colour = [n for n in named if n not in moving]
    # each colour op's own cause and remedy, in the recipe's option names (QA39 review augment #2: "beta and alpha
    # nearer 0" named the logged params, and alpha 0 is itself one colour; cutout / noise got the brightness text)
    causes = {"image.brightness_contrast": "pushed the image's values to one (a faint or near-white / near-black "
                                           "image saturated at 0 or 255)",
              "image.cutout": "covered the image with its fill (holes as large as the image)",
              "image.gaussian_noise": "drowned the image in noise clipped at 0 and 255"}
    remedies = {"image.brightness_contrast": "narrower brightness / contrast ranges for image.brightness_contrast "
                                             "(e.g. brightness: [-0.1, 0.1], contrast: [-0.1, 0.1])",
                "image.cutout": "a smaller size (or fewer num_holes) for image.cutout (e.g. size: [0.1, 0.3])",
                "image.gaussian_noise": "a smaller std for image.gaussian_noise (e.g. std: [0.02, 0.1])"}
    said = []
    if moving or not named:
        said.append("the image ops moved the content out of the frame (an empty margin cropped, a page rotated away)"
                    + (f" ({', '.join(moving)})" if moving else ""))
    for n in colour:
        said.append(f"{n} {causes.get(n, 'changed the image to one value')}")
    fix = []
    if moving or not named:
        fix.append("a larger random_crop size (or resize first, so the crop covers more of the image), a smaller "
                   "rotate limit, or a larger random_resized_crop scale")
    fix += [remedies.get(n, f"a milder setting of {n}") for n in colour]
    return (f"{' and '.join(said)}, and such copies are no examples of their class. Take {'; or '.join(fix)}")


def copy_notes(found: Iterable[tuple[str, str, str]], checked: int, made: int, normalized: bool) -> list[str]:
    """The warnings (console and card) for the findings of an augment job (:class:`_CopyChecks`, the audio ops'
    checks) over its ``checked`` augmented copies (``made``: every sample written through the recipe): one per
    kind, with the count, keys and what to change."""
    found = list(found)
    out = []
    for kind in (INERT, BLANK):
        hits = [(k, d) for f, k, d in found if f == kind]
        if not hits:
            continue
        shown = ", ".join(repr(k) for k, _ in hits[:3]) + (f" and {len(hits) - 3} more" if len(hits) > 3 else "")
        if kind == INERT:
            out.append(f"the recipe's random sections can act on {checked - len(hits)} of the {checked} augmented "
                       f"copies: {len(hits)} ({shown}; e.g. {hits[0][0]!r} {hits[0][1]}) hold no field they act on, "
                       f"so they equal their originals{' normalized' if normalized else ''}. Augment only the samples that "
                       f"hold what they read (a dataset of those), or add ops for the fields these hold")
        else:
            out.append(f"{len(hits)} of the {checked} augmented copies have an image of one colour where their "
                       f"source's image was not ({shown}; e.g. {hits[0][0]!r}: {hits[0][1]}): {_blank_cause(hits)}")
    return [*out, *notes_summary([x for x in found if x[0] not in (INERT, BLANK)], made)]


def _as_given(text: str, names: Mapping[str, str] | None) -> str:
    """``text`` with each bare shard's full path (the tasks open them so) as the user's source names it
    (``names``: full path -> name as given)."""
    for full, name in (names or {}).items():
        text = text.replace(full, name)
    return text


def _source_losses(ds: Any, made: Iterable[Record], expected: Iterable[str] | None,
                   planned: Any, split: str, names: Mapping[str, str] | None = None) -> tuple[list[Record], int]:
    """``on_error="skip"``: the source samples the reader ``ds`` left out (a member that does not decode, a
    shard cut short), as records without members that the writer reports as skipped — one per output key
    ``planned(key)`` the sample would have given (its copies, a kept original), so a local run plans the
    same shards as a Ray run, which plans from the index — and the number of losses that name no sample
    (a region of a bare shard cut short, or more than the reader's first 100 details where no index says
    which samples were lost). ``made``: the records made from the samples read; ``expected``: the source
    keys that should have come (from the index), None for bare shards (then the reader's details say);
    ``names``: bare shards opened by their full paths, named as the user's source gives them."""
    delivered = {(r.extra or {}).get("aug_source", r.source_key) for r in made}
    why: dict[str, str] = {}
    # the card names a source shard by its name, not where the source sits (QA: a shard cut short was named by
    # its absolute path, so the same data augmented from another folder gave another dataset.json)
    root = getattr(ds, "root", None)
    for shard, key, message in ds.errors:
        if key and key not in why:
            if root is not None:
                message = message.replace(str(root).rstrip("/") + "/", "")
            shard, message = _as_given(shard, names), _as_given(message, names)
            why[key] = f"unreadable in the source (shard {shard}): {message.removeprefix(f'shard {shard}: ')}"
    counts = dict(ds.skipped)
    lost = [k for k in dict.fromkeys(expected if expected is not None else why) if k not in delivered]
    out: list[Record] = []
    for key in lost:
        reason = why.get(key)
        if reason is None:
            if not counts:  # nothing was skipped: not a loss the reader knows of (the caller's own check)
                continue
            reason = (f"unreadable in the source: one of the {sum(counts.values())} samples its reader skipped "
                      f"({', '.join(f'{r}: {n}' for r, n in sorted(counts.items()))}); the reader names the first "
                      f"100 only")
        out.extend(Record(o, key, {}, None, split, extra={SKIP_REASON: reason}) for o in planned(key))
    unnamed = max(0, sum(counts.values()) - len(lost)) if expected is None else 0
    return out, unnamed


def reader_options(recipe: Recipe) -> dict[str, Any]:
    """How augment reads its source for ``recipe``, locally and in Ray tasks alike: images with their alpha
    when the recipe blends it (:func:`~mmdata.augment.image.blends_alpha`), and audio only as far as the
    normalize stage reads it (:func:`~mmdata.augment.audio.decode_frames`: the start a trimming
    ``pad_trim`` keeps, as the loader reads it; None, whole clips, for any other stage). Every record goes
    through the normalize stage first, so the members written are the bytes whole clips give (an hour of
    48 kHz stereo is not decoded to keep 30 s); damage past the frames decoded is not seen, as in the loader.

    Example:
        >>> from mmdata.augment.recipe import load_recipe
        >>> r = load_recipe({"normalize": {"audio": [{"op": "to_mono"}, {"op": "pad_trim", "seconds": 2}]}})
        >>> reader_options(r)["audio_max_frames"](16000), reader_options(load_recipe({}))["audio_max_frames"]
        (32000, None)
    """
    from mmdata.augment.audio import decode_frames

    # named image fields declared `image` under targets: decoded as photos, as the loader does (QA39 codecs review #1)
    return {"image_alpha": blends_alpha(recipe), "audio_max_frames": decode_frames(recipe),
            "photo_fields": recipe.photo_fields()}


def input_source_keys(src: str | Path, storage_options: dict[str, Any] | None = None,
                      splits: list[str] | None = None) -> dict[str, str]:
    """Sample key -> ``source_key`` (what it was sharded from) of a dataset folder's samples in ``splits``
    (default all), from its ``index.parquet``: what augment output names in its own ``source_key``. Empty
    for an index without the column (a sample then names its own key).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_class_folders
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_class_folders(t + "/raw", per_class=1), t + "/ds", progress=False)
        >>> sorted(input_source_keys(t + "/ds").values())[:2]
        ['bird/000', 'cat/000']
    """
    return _source_keys(_index_columns(src, storage_options, ["key", "split"]), splits)


def _index_columns(src: str | Path, storage_options: dict[str, Any] | None, columns: list[str]) -> dict[str, list[Any]]:
    """``columns`` of a dataset folder's ``index.parquet`` and, where the index has it, ``source_key``: one read."""
    from mmdata.shards.index import load_index

    try:
        return load_index(src, columns=[*columns, "source_key"], storage_options=storage_options).to_pydict()
    except ShardError:
        return load_index(src, columns=columns, storage_options=storage_options).to_pydict()  # a damaged index: its error


def text_pairing(src: str | Path, storage_options: dict[str, Any] | None = None) -> tuple[int, float, bool]:
    """(samples holding an image and a text, their texts' median length in characters, whether any sample has
    audio) of a dataset folder, from its index (:func:`~mmdata.augment.recipe.transcription_flip_notes`); (0, 0,
    False) where the index lacks the columns."""
    from mmdata.shards.index import load_index

    try:
        t = load_index(src, columns=["image_height", "text_chars", "audio_seconds"], storage_options=storage_options)
    except (ShardError, KeyError, ValueError, OSError):
        return 0, 0.0, False
    chars = np.asarray(t["text_chars"].to_numpy(zero_copy_only=False), dtype=float)
    image = ~np.asarray(t["image_height"].is_null().to_numpy(zero_copy_only=False), dtype=bool)
    both = chars[image & ~np.isnan(chars) & (chars > 0)]
    audio = bool(t["audio_seconds"].null_count < t.num_rows)
    return int(both.size), float(np.median(both)) if both.size else 0.0, audio


def segment_columns(src: str | Path, storage_options: dict[str, Any] | None = None,
                    splits: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Sample key -> its ``segment_*`` index columns (``mmdata shard --segment``: the recording a sample was cut
    from, the start, duration, frames and channels) of a dataset folder's samples in ``splits`` (default all),
    from its ``index.parquet``; empty for an index without them. Augment output carries them on every row made
    from the sample (QA37 podcast #10: they were dropped, so a copy no longer said which recording it came
    from); they describe the source segment, not the copy (a ``time_stretch`` changes the copy's duration).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_class_folders
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_class_folders(t + "/raw", per_class=1), t + "/ds", progress=False)
        >>> segment_columns(t + "/ds")
        {}
    """
    from mmdata.shards.index import load_index
    from mmdata.shards.sources import SEGMENT_CHANNELS, SEGMENT_DURATION, SEGMENT_FRAMES, SEGMENT_SOURCE, SEGMENT_START

    names = [SEGMENT_SOURCE, SEGMENT_START, SEGMENT_DURATION, SEGMENT_FRAMES, SEGMENT_CHANNELS]
    for cols in (names, names[:-1]):  # segment_channels only where a --segment channel column was given
        try:
            t = load_index(src, columns=["key", "split", *cols], storage_options=storage_options).to_pydict()
        except ShardError:
            continue
        wanted = None if splits is None else set(splits)
        return {k: {c: t[c][i] for c in cols if t[c][i] is not None} for i, (k, sp) in enumerate(zip(t["key"], t["split"]))
                if (wanted is None or sp in wanted) and any(t[c][i] is not None for c in cols)}
    return {}


def _source_keys(t: dict[str, list[Any]], splits: list[str] | None) -> dict[str, str]:
    """:func:`input_source_keys` from the index columns ``key``, ``split`` and (if there) ``source_key``."""
    if "source_key" not in t:
        return {}
    wanted = None if splits is None else set(splits)
    return {k: sk for k, sp, sk in zip(t["key"], t["split"], t["source_key"])
            if sk is not None and (wanted is None or sp in wanted)}


def check_targets(recipe: Recipe, card: Mapping[str, Any], src: Any,
                  storage_options: dict[str, Any] | None = None) -> list[str]:
    """Check the recipe's ``targets`` against the fields of the source dataset's samples (those its card
    lists), before anything is written. A target naming no field moves nothing; where that can corrupt the
    output it is refused: its name is close to a field's (``seg.png`` spelt ``sge.png``), or the dataset has a
    field stored as images beside ``image`` (a per-pixel map, ``depth.png``) that ``targets`` does not list, or
    the maps it names were sharded as samples of their own (source ``s0.seg`` beside ``s0``, from the index):
    that map's pixels would stay while the image's move (or be augmented as images of their own), for good, in
    every copy (QA31). Otherwise (a recipe shared with datasets that have the map: here
    nothing lies beside the image to misalign) it is returned as a note, which :func:`augment_dataset` puts
    in the output card's ``warnings`` and on stderr. Bare shards (no card) are not checked here.

    Example:
        >>> from mmdata.augment.recipe import load_recipe
        >>> card = {"name": "ds", "modalities": {"image": {"codecs": ["png"]}, "label": {"codecs": ["cls"]},
        ...                                      "seg.png": {"codecs": ["seg.png"]}}}
        >>> check_targets(load_recipe({"targets": {"seg.png": "mask"}}), card, "ds")
        []
        >>> check_targets(load_recipe({"targets": {"sge.png": "mask"}}), card, "ds")
        Traceback (most recent call last):
        ...
        mmdata.errors.RecipeError: recipe key targets.sge.png: 'sge.png' names no field of the source dataset ds (its fields: image, label, seg.png): ...
        >>> plain = {"name": "ds2", "modalities": {"image": {"codecs": ["png"]}, "label": {"codecs": ["cls"]}}}
        >>> check_targets(load_recipe({"targets": {"depth.png": "mask"}}), plain, "ds2")
        ["targets.depth.png: 'depth.png' names no field of the source dataset ds2 (its fields: image, label): ..."]
    """
    from mmdata.shards.index import dataset_fields

    fields = dataset_fields(dict(card)) if card else ()
    absent = [t for t in recipe.targets if t not in fields] if fields else []
    if not absent:
        return []
    close = [t for t in absent if did_you_mean(t, fields)]
    # a field stored as images beside the image that targets leaves out: the image ops leave it behind
    from mmdata.augment.recipe import card_image_fields

    maps = [f for f in card_image_fields(card) if f not in recipe.targets]
    own = _own_samples(absent, src, storage_options) if not (close or maps) else None
    name = (close or absent)[0] if own is None else own[0]
    others = [t for t in absent if t != name]
    more = f" (and {', '.join(map(repr, others))})" if others else ""
    said = f"{name!r}{more} names no field of the source dataset"
    if close or maps or own:
        if own:
            unlisted = (f"; its maps were sharded as samples of their own (source {own[1]!r} beside {own[2]!r}: see "
                        f"the source card's warnings), which the recipe would augment as images")
        elif maps:
            unlisted = (f"; the dataset's {', '.join(map(repr, maps))} (stored as images beside 'image') "
                        f"{'are' if len(maps) > 1 else 'is'} not in targets: image ops would leave "
                        f"{'them' if len(maps) > 1 else 'it'} where {'they were' if len(maps) > 1 else 'it was'}")
        else:
            unlisted = ""
        raise RecipeError(f"recipe key targets.{name}: {said} {src} (its fields: {', '.join(fields)}): a target is a "
                          f"field beside the image that moves with it (a member k.seg.png is the field 'seg.png'); "
                          f"one that names no field moves nothing while the image's pixels move{unlisted}. Nothing "
                          f"was written: fix the name or leave it out of targets{did_you_mean(name, fields)}")
    named = card.get("name") or str(src).rstrip("/").rsplit("/", 1)[-1]
    return [f"targets.{name}: {said} {named} (its fields: {', '.join(fields)}): "
            f"{'they move' if others else 'it moves'} nothing in this job (no field of the dataset is stored as "
            f"images beside 'image', so nothing is left unaligned)"]


def _own_samples(targets: Iterable[str], src: Any,
                 storage_options: dict[str, Any] | None) -> tuple[str, str, str] | None:
    """``(target, source key, its sample's source key)`` for the first of ``targets`` whose maps a dataset folder
    holds as samples of their own (``mmdata shard`` of ``s0.png`` + ``s0.seg.png``: source ``s0.seg`` beside
    ``s0``, from its index), else None."""
    try:
        keys = set(input_source_keys(src, storage_options).values())
    except (ShardError, OSError):  # no index to tell by: the job reports a damaged one itself
        return None
    for t in targets:
        stem, _, ext = t.rpartition(".")
        stem = stem if stem and ext.lower() in IMAGE_EXTS else t
        for sk in sorted(keys):
            if isinstance(sk, str) and sk.endswith(f".{stem}") and sk[:-len(stem) - 1] in keys:
                return t, sk, sk[:-len(stem) - 1]
    return None


def plugin_ops(recipe: Recipe) -> list[dict[str, Any]]:
    """The recipe's ops that come from outside mmdata (a ``--plugin`` module, an installed package's entry
    point), each with the module that provides it and that module's distribution and version
    (``importlib.metadata``; None for a module that is no installed package's): what the card's
    ``augmentation.plugin_ops`` records, so a reader of the output (or a rerun without the package)
    knows what to install. Empty for a recipe of mmdata's own ops.

    Example:
        >>> from mmdata.augment.recipe import load_recipe
        >>> plugin_ops(load_recipe({"image": [{"op": "hflip"}]}))
        []
    """
    from mmdata.plugins import describe, used_code

    out = []
    for cls in used_code([recipe.to_dict()]).values():
        if not hasattr(cls, "section"):  # a fusion: not a recipe's
            continue
        module = cls.__module__ or ""
        where = describe([module])[0]
        out.append({"op": f"{cls.section}.{cls.name}", "module": module, "distribution": where["distribution"],
                    "version": where["version"]})
    return sorted(out, key=lambda e: e["op"])


#: job token -> the output card's warnings (:class:`_CardWarnings`) of the jobs running in this process (the
#: local tasks add what their recipe warned of: :func:`_augment_shard`)
_JOBS: dict[str, _CardWarnings] = {}


class _CardWarnings(list):  # type: ignore[type-arg]
    """The output card's ``warnings`` list, as :func:`~mmdata.shards.writer.write_plan` takes it: the source's
    (carried) and :func:`check_targets`' notes, then each text a task's recipe warned of (``Recipe.warned``: a
    per-pixel map that does not move with the image, a target without its image, ...), once, in the order of
    the planned shards (so the card is the same with any ``workers``), prefixed ``recipe:``. Tasks add to it
    while the job runs; the writer copies it into the card when every shard is written."""

    def __init__(self, carried: Iterable[str], order: Mapping[str, int]) -> None:
        super().__init__(carried)
        self._fixed = len(self)
        self._order = dict(order)
        self._at: dict[str, tuple[int, int]] = {}
        self._seq: dict[str, int] = {}
        self._checks: dict[str, tuple[str, list[tuple[str, str, str]], int, int]] = {}
        self._normalized = False
        self._lock = threading.Lock()

    def add(self, shard: str, text: str) -> None:
        line = f"recipe: {text}"
        with self._lock:
            n = self._seq[shard] = self._seq.get(shard, -1) + 1
            at = (self._order.get(shard, len(self._order)), n)
            if line in self[:self._fixed] or self._at.get(line, at) < at:
                return
            self._at[line] = at
            self._update()

    def tally(self, shard: str, split: str, checks: _CopyChecks, normalized: bool) -> None:
        """A task's :class:`_CopyChecks`: the job's counts (:func:`copy_notes`) follow the recipe's lines, over the
        shards written so far in plan order (the card is the same with any ``workers``)."""
        with self._lock:
            self._checks[shard] = (split, list(checks.found), checks.checked, checks.made)
            self._normalized = normalized
            self._update()

    def resumed(self, tallies: Mapping[str, Mapping[str, Any]]) -> None:
        """The tallies a stopped run of this job journalled with its finished shards (the ``copy_checks`` of their
        task results), so a resumed job counts over every shard as a fresh run does (QA38 review 4 #1: the card
        counted only the shards the resumed run wrote). Held until a task tallies (the job's identity, taken
        before its tasks run, is then that of a fresh run); a shard written again replaces its own."""
        with self._lock:
            for shard, c in tallies.items():
                self._checks.setdefault(shard, (str(c["split"]), [tuple(map(str, f)) for f in c["found"]],
                                                int(c["checked"]), int(c["made"])))
                self._normalized = bool(c["normalized"])

    def unchanged(self) -> dict[str, int]:
        """Per split, the augmented copies the random sections could not act on (:class:`_CopyChecks`)."""
        out: dict[str, int] = {}
        for split, found, _, _ in self._checks.values():
            n = sum(1 for kind, _, _ in found if kind == INERT)
            if n:
                out[split] = out.get(split, 0) + n
        return out

    def tallies(self, shard: str) -> dict[str, Any] | None:
        """The tally of ``shard`` (:meth:`tally`), as its task result keeps it in the journal (:meth:`resumed`)."""
        with self._lock:
            if shard not in self._checks:
                return None
            split, found, checked, made = self._checks[shard]
            return {"split": split, "found": [list(f) for f in found], "checked": checked, "made": made,
                    "normalized": self._normalized}

    def counted(self) -> list[str]:
        """The job's count lines (:func:`copy_notes`)."""
        done = [self._checks[sh] for sh in sorted(self._checks, key=lambda sh: self._order.get(sh, len(self._order)))]
        return copy_notes([f for _, found, _, _ in done for f in found], sum(c for _, _, c, _ in done),
                          sum(m for _, _, _, m in done), self._normalized)

    def _update(self) -> None:
        self[self._fixed:] = [*sorted(self._at, key=self._at.__getitem__), *self.counted()]


def augment_dataset(src: str | Path, out: str | Path, recipe: Any, *, copies: int = 1, workers: int = 1,
                    keep_original: bool = False, seed: int = 0, splits: list[str] | None = None,
                    augment_splits: list[str] | None = None, maxcount: int = 1000, progress: bool = True,
                    executor: str = "local", address: str | None = None, storage_options: dict[str, Any] | None = None,
                    on_error: str = "raise", rewrite: bool = False, force: bool = False, name: str | None = None,
                    license: str | None = None, description: str | None = None) -> dict[str, Any]:
    """Write ``copies`` augmented copies of every training sample of ``src`` to ``out``, and the other
    splits through with the normalize stage only.

    ``splits``: the splits written (default all). ``augment_splits``: those that get the random
    sections, ``copies`` and ``keep_original`` (default ``["train"]``: augmenting validation or test
    data would score a model on augmented copies of it); every other written split is written once,
    under its own keys, normalized only (``recipe.apply_sample(s, stage="eval")``). The report and the
    card's ``augmentation`` entry name both lists (``augmented_splits``, ``eval_splits``).

    Deterministic for a fixed recipe and seed: the same bytes for any ``workers`` and ``executor``.
    Each output shard is one task end to end — it reads its source samples (only those: the others
    are passed over undecoded), augments and encodes them with the same per-sample plan, and writes
    the shard — while this process only plans (from ``src``'s index, nothing decoded; of bare shards,
    from their tar headers, the output in their order) and assembles the index and card. Locally the
    tasks run in ``workers`` writer threads, so memory holds a shard's worth of records per worker, not
    the output; each finished shard is journalled and a rerun of a stopped job (Ctrl-C, a killed
    process) resumes, with the bytes of an uninterrupted run. With ``executor="ray"`` (``address``: the
    cluster; see :func:`mmdata.shards.writer.shard`) the tasks are Ray tasks; ``src`` and ``out`` must
    then be on storage every node sees, or URLs.

    ``src`` and ``out`` may be fsspec URLs (``s3://bucket/ds``: a dataset folder or bare shards;
    ``out`` written as :func:`mmdata.shard` writes to an object store), opened with ``storage_options``.

    A recipe's ``batch`` (mixup / mixgen) and ``balance`` sections act while training, not on copies:
    either is a :class:`RecipeError` here (keep them in the training recipe), and so is a ``targets`` entry
    naming no field of a dataset folder's samples where that can misalign a map (:func:`check_targets`; where it
    cannot, a warning). What the recipe itself warns of while the job runs (a per-pixel map that does not move
    with its image, a target without its image) goes into the output card's ``warnings`` too (``recipe: ...``,
    each text once; local runs; whatever the process's warning filters show: they are not changed, and an op's
    own warnings are shown only), and the ops from outside mmdata into
    ``augmentation.plugin_ops`` (:func:`plugin_ops`). ``copies=0`` (with ``keep_original``) augments no
    split: each sample is written once, normalized only, and the card's ``augmented_splits`` is empty.

    ``on_error="skip"``: a sample the recipe refuses (a target of another size than its image, a
    ``random_crop`` larger than it), and a source sample the reader cannot read (a member that does not
    decode, a shard cut short; the reader's ``on_error="skip"``), is left out and listed in the report's and
    card's ``skipped``: one entry per output sample not written (each copy, a kept original), naming the
    source sample (``source``), the output key (``sample``) and why (``reason``: for a source sample, its
    shard and member and the reader's message; a bare shard's tail past a break is planned up to the
    sample met there). ``"raise"`` (default) stops at the first of either, naming it. The other samples are
    written as without the damage (the same bytes, locally and with ``executor="ray"``).

    A rerun of a finished job into a local ``out`` that still holds its output (the same source files,
    recipe, options and code; see :func:`mmdata.shards.writer.up_to_date`) writes nothing and returns the
    report with ``up_to_date`` True; ``rewrite=True`` writes it all the same.

    The output's card keeps what the source's card says of the data: its ``license`` and ``description``
    (a derivative keeps the licence: CC BY asks for attribution down the chain), unless ``license`` /
    ``description`` are given (they override the source's; the source's licence stays in
    ``augmentation.augmented_from.license``) — but a NoDerivatives source licence (``CC-BY-ND-4.0``), which forbids
    sharing adaptations, is warned of (console and card) and not claimed for the copies: the card's ``license``
    says they are adapted from material under it (:func:`derived_license`), its ``citation`` and ``homepage``, and its per-source
    attribution (:func:`card_attribution`) in ``augmentation.augmented_from.attribution``; ``name`` names the output (default: its folder's name). The
    source's ``skipped`` entries of samples and members it lost (what the jobs that wrote it left out) are carried
    into the output's ``skipped``, each with ``origin`` naming the dataset whose job left it out; files of its
    inputs that fed no sample are counted only (``augmented_from.skipped_files_not_carried``: their names are the
    source folder's, not the data's); the report's ``skipped`` lists this job's own losses, ``source_skipped``
    counts the carried ones. The source's warnings are carried (``source dataset NAME: ...``) but its
    identifying-metadata warning: the copies are re-encoded, and this job's own card counts what they carry.

    A job that rewrites an earlier augment output in ``out`` says why in the report's ``rewrote`` (an older
    mmdata, other code, another source content, recipe or options; :func:`rewrite_reason`).

    An ``out`` that holds other files and no mmdata dataset (locally or at a URL) is refused, as
    :func:`mmdata.shard` refuses it (:func:`~mmdata.shards.writer.check_foreign_output`), and so is an ``out``
    holding a dataset that another command wrote (``mmdata shard``, ``mmdata datasets build``: the card's
    ``command``) or the dataset ``src`` was augmented from (its card's ``augmentation.augmented_from``: SRC and OUT
    swapped), naming it (:func:`~mmdata.shards.replacing.check_replacing`); an earlier ``augment`` output there is
    replaced, as above. ``force=True`` writes into (replaces) either anyway. An ``http(s)://`` ``out`` is refused (read-only here).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> rep = augment_dataset(t + "/ds", t + "/aug", {"image": [{"op": "hflip", "p": 1.0}]}, copies=2, progress=False)
        >>> rep["samples"], rep["augmented_splits"], mmdata.verify(t + "/aug")["ok"]
        (6, ['train'], True)
    """
    from mmdata import __version__
    from mmdata.shards.index import is_dataset, load_card
    from mmdata.urls import is_folder_url, local_path, protocol

    if copies < 0:
        raise RecipeError(f"--copies (copies=) must be >= 0, got {copies}")
    if copies == 0 and not keep_original:  # QA: it wrote an empty train split without a word
        raise RecipeError("--copies 0 (copies=0) without --keep-original writes no sample of the augmented splits: "
                          "give --copies 1 or more, or --keep-original (each sample through the normalize stage only)")
    if on_error not in ("raise", "skip"):
        raise RecipeError(f"--on-error (on_error=) must be raise or skip, got {on_error!r}")
    for what, value in (("name", name), ("license", license), ("description", description)):
        if value is not None and not isinstance(value, str):
            raise RecipeError(f"--{what} ({what}=): expected a string, got {type(value).__name__} {value!r}")
    if isinstance(src, (list, tuple)):
        src = [local_path(x) if protocol(x) == "file" else str(x) for x in src]
    elif protocol(src) == "file":
        src = local_path(src)  # other URLs: read with fsspec
    _check_out(src, out)
    from mmdata.shards.writer import check_foreign_output

    # QA: augment wrote over a foreign train-000000.tar (local or at a URL) that shard refuses
    check_foreign_output(out if is_remote(out) else local_path(out, "output folder"), force, storage_options)
    from mmdata.shards.replacing import check_replacing

    # QA35: `augment aug clean` (SRC and OUT swapped) replaced the only sharded copy of clean, exit 0
    check_replacing(out if is_remote(out) else local_path(out, "output folder"), "augment", src=src, force=force,
                    storage_options=storage_options)
    if executor == "ray":
        from mmdata.ray_cluster import require_ray

        require_ray()  # before the samples are augmented: a clear error naming the extra
    base = load_recipe(recipe)
    if base.has_batch_ops:
        raise RecipeError("recipe section 'batch' (mixup / mixgen) mixes samples during training; "
                          "`mmdata augment` writes per-sample copies — remove the batch section")
    if base.balance is not None:
        # the card would list a balance that no copy honours: the written split keeps the source's counts
        raise RecipeError("recipe section 'balance' resamples classes while training; `mmdata augment` writes "
                          "per-sample copies (--copies each) and does not change the class counts — remove the "
                          "balance section here and keep it in the training recipe (or pass balance= to the loader)")
    rec = base.with_seed(params_seed(base.seed, seed))
    listed_shards = isinstance(src, (list, tuple))  # shard paths / URLs, as open_dataset takes them
    folder = not listed_shards and (is_folder_url(src) or (not is_remote(src) and is_dataset(src)))
    card = load_card(src, storage_options) if folder else {}
    notes = check_targets(base, card, src, storage_options)  # before anything is written
    for note in notes:  # a target this dataset lacks, where nothing can misalign: said, and kept in the card
        say_to_caller([note], UserWarning, stacklevel=3)
    if folder:  # recipe parts that cannot act on this dataset (QA33 onemodality #3: copies equal to their sources)
        from mmdata.augment.recipe import card_image_fields, dataset_modalities, inert_parts

        have = dataset_modalities(src, storage_options)
        if have is not None:
            # "section 'image' (...) has no effect: ...", naming the named image fields (frame0.jpg) it leaves
            inert, none = inert_parts(base, have, str(src), card_image_fields(card))
            if none and not base.is_empty:
                inert.append(f"no step can act on {src}: the augmented copies equal their originals")
            for note in inert:  # said as the card keeps it (prefixed "recipe: " there, once: QA33 review)
                say_to_caller([f"recipe: {note}"], UserWarning, stacklevel=3)
            notes = [*notes, *inert]
    from mmdata.augment.recipe import dataset_modalities, label_side_notes, tempo_target_notes, transcription_flip_notes

    # a flip of classes named LEFT / RIGHT: the label is not swapped (QA37 sign #2); none where no image is to flip
    sides = label_side_notes(base, card.get("label_names") if isinstance(card.get("label_names"), list) else None,
                             dataset_modalities(src, storage_options) if folder else None)
    # a flip of pages beside their transcriptions: mirrored glyphs beside the unchanged text (QA38 OCR #7)
    sides = [*sides, *(transcription_flip_notes(base, *text_pairing(src, storage_options)) if folder else [])]
    # a speed change beside a tempo-like numeric field (bpm): the copy keeps the value (QA39 music #2)
    kinds = card.get("metadata_kinds")
    sides = [*sides, *(tempo_target_notes(base, kinds, dataset_modalities(src, storage_options))
                       if folder and isinstance(kinds, Mapping) else [])]
    for note in sides:
        say_to_caller([f"recipe: {note}"], UserWarning, stacklevel=3)
    notes = [*notes, *sides]
    all_splits = list(card.get("splits", {"train": None}))
    chosen = list(splits or all_splits)
    if not folder and len(set(chosen)) > 1:  # QA: every sample went to each split named
        raise ShardError(f"{src}: bare shards have no splits (no dataset.json): give one --split (the split their "
                         f"samples are written to), not {chosen}; shard them into a dataset folder first, keeping their "
                         f"members' bytes (mmdata shard SHARDS DS: the splits their names give, train-000.tar / "
                         f"val-000.tar, or --split train=0.9,val=0.1), then augment DS")
    # each split written names shard files (<split>-000000.tar): checked before anything is read, as
    # `mmdata shard` checks its own (a card is untrusted: '../x', or 'train' beside 'TRAIN', one file on macOS)
    from mmdata.shards.index import CARD, check_split_names

    check_split_names(f"{str(src).rstrip('/')}/{CARD}" if folder else "splits", chosen)
    wanted = list(dict.fromkeys(augment_splits if augment_splits is not None else ["train"]))
    unknown = [sp for sp in wanted if sp not in all_splits and sp not in chosen]
    if unknown:
        raise ShardError(f"{src}: augment split(s) {unknown} are not splits of the dataset; it has {sorted(all_splits)}")
    # --copies 0 (--keep-original): each sample once, through the normalize stage only: no split is augmented
    augmented = [sp for sp in chosen if sp in wanted] if copies else []
    summary = {"augmented_splits": augmented, "eval_splits": [sp for sp in chosen if sp not in augmented],
               "eval_stage": "normalize" if rec.has_normalize else "none", "random_ops": rec.has_random}
    if augmented and copies and not rec.has_random:  # an empty (or normalize-only) recipe: copies, not augmentations
        say_to_caller([f"the recipe has no random ops (image, audio, text or sample sections): the {copies} "
                       f"'augmented' copies of each {'/'.join(augmented)} sample equal the sample "
                       f"{'normalized' if rec.has_normalize else 'as read'}"], UserWarning, stacklevel=3)
    # the source by name and content, not by where it lies: a card holds no paths (copies of one source,
    # local or at a URL, give the same card)
    source = {"name": card.get("name") or str(src).rstrip("/").rsplit("/", 1)[-1], "fingerprint": card.get("fingerprint")}
    original = source_license(card)  # a second pass: the first's source's id, not derived_license's text (QA37 review)
    if original is not None:  # the attribution chain: the source's licence, even where --license overrides it
        source["license"] = original
    per_field = field_licenses(card)  # add-modality --license: a field's own licence, which the writer's card drops
    if per_field:
        source["field_licenses"] = per_field
    # a field's own attribution (add-modality --attribution), which the writer carries onto the output's modalities
    # as it carries field_licenses (QA37 third round)
    mods = card.get("modalities")
    field_credit = {f: m["attribution"] for f, m in (mods.items() if isinstance(mods, Mapping) else ())
                    if isinstance(m, Mapping) and isinstance(m.get("attribution"), str) and m["attribution"]}
    if field_credit:
        source["field_attributions"] = field_credit
    attribution = card_attribution(card)  # each modality's source and creators, which CC BY asks to credit
    if attribution:
        source["attribution"] = attribution
    carried = source_skipped(card, source["name"])
    entries = [x for x in card.get("skipped") or [] if isinstance(x, dict)]
    if entries:
        source["skipped_count"] = len(entries)
    if len(entries) > len(carried):  # files of the source's inputs that fed no sample: counted, never named
        source["skipped_files_not_carried"] = len(entries) - len(carried)
    earlier = original != card.get("license")  # the id an earlier pass recorded, not this card's own licence
    copied = copied_fields(rec, card, per_field)
    nd_notes = [n for n in (no_derivatives_note(original, source["name"], license, earlier=earlier),
                            *(no_derivatives_note(v, source["name"], license, field=f, copied=f in copied,
                                                  **field_license_origin(card, f, v, f in copied))
                              for f, v in per_field.items()))
                if n is not None]
    for nd_note in nd_notes:  # QA37 licence #4: an ND dataset's augmented copies claimed its licence, without a word
        say_to_caller([nd_note], UserWarning, stacklevel=3)
    pass_no = augment_pass(card, src)
    # the recipe drawn with (its seed combines the recipe's and --seed) and what reproduces the run: the recipe as
    # given and --seed (QA: the card named neither, and its options said seed 0 under --seed 5)
    extra = {"augmented_from": source, "recipe": rec.to_dict(), "recipe_given": base.to_dict(), "seed": seed,
             "copies": copies, "keep_original": keep_original,
             **summary, **({"pass": pass_no} if pass_no > 1 else {})}  # a first pass's card as before passes counted
    outside = plugin_ops(rec)  # what a reader of the output must install to rerun or replay it
    if outside:
        extra["plugin_ops"] = outside
    # what the source's card says of members the copies keep as they are (a manifest's --meta columns)
    kept = {k: card[k] for k in CARRIED_CARD_KEYS if k in card}
    before = _earlier_card(out)  # an earlier augment job's card in OUT: why this job rewrites it, if it does
    # planned from the index (nothing decoded) — or, for bare shards, from their tar headers — one task per output
    # shard: memory holds a shard's worth per worker, each finished shard is kept and journalled (a rerun
    # resumes). QA: the local run held the whole output in memory before writing any shard (776 MB RSS for 500
    # samples x 6 copies), and Ctrl-C left nothing to resume; bare shards were still read whole
    rep = _augment_planned(src, out, rec, copies=copies, keep_original=keep_original, splits=chosen, on_error=on_error,
                           pass_no=pass_no, augmented=set(augmented), maxcount=maxcount, progress=progress,
                           address=address, card=card, seed=seed,
                           card_extra={"augmentation": extra, **kept, "mmdata_version": __version__,
                                       # a derivative keeps the source's licence and description unless given
                                       "license": (license if license is not None else
                                                   derived_license(original, per_field, copied)),
                                       "description": description if description is not None else card.get("description"),
                                       "command": augment_command(copies=copies, keep_original=keep_original,
                                                                  seed=seed, splits=splits,
                                                                  augment_splits=augment_splits, maxcount=maxcount,
                                                                  on_error=on_error, name=name, license=license,
                                                                  description=description)},
                           storage_options=storage_options, executor=executor, workers=workers, rewrite=rewrite,
                           name=name, carried_skipped=carried, notes=notes,
                           plain_notes=nd_notes)
    own = [e for e in rep.get("skipped") or [] if "origin" not in e]  # this job's losses; the source's counted apart
    rep = rep | {"skipped": own, "source_skipped": len(rep.get("skipped") or []) - len(own)}
    if before is not None and not rep.get("up_to_date") and not rep.get("resumed_shards"):
        rep["rewrote"] = "--rewrite" if rewrite else rewrite_reason(before, extra)
    return _with_growth(rep | {"copies": copies, **summary}, src, out, folder)


#: the kinds of a source card's ``skipped`` entries an augment job carries by name: what the source's samples lost.
#: Files and folders of the source's inputs that fed no sample (a stray file, an add-modality file matching no
#: key: after an erasure, the erased person's) are no loss of the data and their names are another folder's:
#: counted in ``augmentation.augmented_from.skipped_files_not_carried``, not named (QA34 gdpr #1)
CARRIED_SKIPS = ("sample", "member")


#: how the shard job's identifying-metadata warning begins (:func:`mmdata.shards.writer.identifying_metadata_warning`)
IDENTIFYING_WARNING = "identifying metadata is published"


def source_skipped(card: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The entries of a source card's ``skipped`` an augment job carries into its own card (those of
    :data:`CARRIED_SKIPS`: samples and members the data lost): each with ``origin`` naming the dataset whose job
    left it out (an entry carried before keeps its origin), so a derivative still says what its data lost on
    the way (``mmdata inspect`` counts them).

    Example:
        >>> source_skipped({"skipped": [{"what": "member", "source": "a.png", "reason": "truncated PNG"},
        ...                             {"what": "file", "source": "jane.depth.npy", "reason": "matches no sample"}]}, "birds")
        [{'what': 'member', 'source': 'a.png', 'reason': 'truncated PNG', 'origin': 'source dataset birds'}]
    """
    entries = card.get("skipped") or []
    if not isinstance(entries, list):
        raise ShardError(f"the card of source dataset {name}: skipped is {type(entries).__name__}; expected a list")
    return [{**e, "origin": e.get("origin") or f"source dataset {name}"} for e in entries
            if isinstance(e, dict) and e.get("what", "sample") in CARRIED_SKIPS]


#: the growth of a modality's members (mean bytes a written sample / a source sample) that is warned about
GROWTH_WARN = 2.0


def member_growth(src: str | Path, out: str | Path) -> dict[str, dict[str, Any]]:
    """Per modality (image, audio), how much larger the written members are than the source's: the mean
    member bytes of a sample of ``out`` over that of ``src`` (both from ``index.parquet``, over the
    splits ``out`` holds), with the formats (extensions) on either side. Empty for a source without an
    index (bare shards) or at a URL.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> member_growth(t + "/ds", t + "/ds")["image"]["ratio"]
        1.0
    """
    import pyarrow.parquet as pq

    from mmdata.codecs import field_of
    from mmdata.shards.index import INDEX

    if is_remote(src) or is_remote(out) or not (Path(src) / INDEX).is_file() or not (Path(out) / INDEX).is_file():
        return {}
    cols = ["key", "split", "members", "sizes"]
    from mmdata.shards.index import parquet_source

    tables = [pq.read_table(parquet_source(Path(d) / INDEX), columns=cols).to_pydict() for d in (src, out)]
    splits = set(tables[1]["split"])
    sides: list[dict[str, tuple[int, int, set[str]]]] = []
    for t in tables:
        per: dict[str, list[Any]] = {}
        for key, split, names, sizes in zip(t["key"], t["split"], t["members"], t["sizes"]):
            if split not in splits:
                continue
            for name, size in zip(names or [], sizes or []):
                ext = name[len(key) + 1:].lower() if name.startswith(f"{key}.") else name.rsplit(".", 1)[-1].lower()
                field = field_of(ext)
                if field in ("image", "audio"):
                    acc = per.setdefault(field, [0, set(), set()])
                    acc[0] += int(size or 0)
                    acc[1].add(key)
                    acc[2].add(ext)
        sides.append({f: (v[0], len(v[1]), v[2]) for f, v in per.items()})
    out_growth: dict[str, dict[str, Any]] = {}
    for field in ("image", "audio"):
        if field in sides[0] and field in sides[1] and sides[0][field][0] and sides[0][field][1] and sides[1][field][1]:
            (sb, sn, sx), (ob, on, ox) = sides[0][field], sides[1][field]
            out_growth[field] = {"ratio": round((ob / on) / (sb / sn), 2), "source_bytes": sb // sn, "bytes": ob // on,
                                 "source_formats": sorted(sx), "formats": sorted(ox)}
    return out_growth


def _with_growth(rep: dict[str, Any], src: Any, out: str | Path, folder: bool) -> dict[str, Any]:
    """The report with ``member_growth`` and a warning for a modality whose members grew by more than
    :data:`GROWTH_WARN` (QA: JPEG photos written as PNG and 16-bit FLAC as float WAV grew several times
    without a word)."""
    import warnings

    growth = member_growth(src, out) if folder else {}
    if growth:
        rep["member_growth"] = growth
    for field, g in growth.items():
        if g["ratio"] > GROWTH_WARN:
            why = ("images are written as PNG (lossless: the loader reads back exactly the augmented pixels; a JPEG "
                   "source is lossy and smaller)" if field == "image" else
                   "audio is written as FLAC only when every value lies on the 16- / 24-bit grid, else as 32-bit float "
                   "WAV (gain, noise, resample and mixing leave that grid), so the loader reads back exactly the "
                   "augmented values")
            say_to_caller([f"{field} members of {out} are {g['ratio']:g}x the source's size: {g['bytes']:,} bytes a "
                           f"sample ({', '.join(g['formats'])}) against {g['source_bytes']:,} "
                           f"({', '.join(g['source_formats'])}); {why}. A normalize stage that makes them smaller "
                           f"(resize, resample, pad_trim) or fewer --copies keeps the output small"], UserWarning,
                          stacklevel=4)
    return rep


def _check_out(src: Any, out: str | Path) -> None:
    """Refuse an output folder that is the source dataset or lies inside it: the job would replace the
    source's index and shards (the originals lost), or leave shards its index does not list (verify fails)."""
    if isinstance(src, (str, Path)) and not is_remote(src):
        lookup(src, "source")  # too long, a link loop: one error naming it, not resolve()'s traceback
    if not is_remote(out):
        lookup(out, "output folder")
    else:
        from mmdata.shards.output import refuse_read_only

        refuse_read_only(out)
    if not isinstance(src, (str, Path)) or is_remote(src) or is_remote(out) or not Path(src).is_dir():
        return
    s, o = Path(src).resolve(), Path(out).resolve()
    if o == s or s in o.parents:
        where = "is" if o == s else "lies inside"
        raise ShardError(f"output folder {out} {where} the source dataset {src}: the augmented shards, index.parquet "
                         f"and dataset.json would {'replace' if o == s else 'sit among'} the source's own"
                         f"{' (the originals lost)' if o == s else ' (its verify would then fail)'}; write to another "
                         f"folder (e.g. a sibling such as {str(src).rstrip('/')}-aug)")


def describe(rep: dict[str, Any], *, keep_original: bool, out: str | Path) -> str:
    """One line for the CLI: the samples written per split and which splits were augmented.

    Example:
        >>> rep = {"samples": 5, "shards": 1, "copies": 1, "splits": {"train": 4, "val": 1},
        ...        "augmented_splits": ["train"], "eval_splits": ["val"], "eval_stage": "normalize"}
        >>> for part in describe(rep, keep_original=True, out="aug").split("; "):
        ...     print(part)
        wrote 5 samples in 1 shard to aug: train 4 (augmented: 1 copy each + originals)
        val 1 (not augmented: normalize stage only, 1 copy each)
    """
    counts = rep.get("splits", {})
    parts = []
    same = "" if rep.get("random_ops", True) else "; the recipe has no random ops: the copies equal the originals"
    for sp in rep["augmented_splits"]:
        # copies of samples holding nothing the random sections act on (QA38 IQ #11: "1 copy each" of 112, 84 unchanged)
        inert = (rep.get("unchanged_copies") or {}).get(sp) if not same else None
        equal = (f"; {inert} of the copies equal their originals: their samples hold no field the recipe's random "
                 f"sections act on" if inert else "")
        parts.append(f"{sp} {counts.get(sp, 0)} (augmented: {plural(rep['copies'], 'copy', 'copies')} each"
                     f"{' + originals' if keep_original else ''}{same}{equal})")
    how = "normalize stage only" if rep.get("eval_stage") == "normalize" else "as read"
    for sp in rep["eval_splits"]:
        parts.append(f"{sp} {counts.get(sp, 0)} (not augmented: {how}, 1 copy each)")
    if not rep["augmented_splits"]:
        parts.append("no sample augmented (--copies 0: each sample once)" if rep.get("copies") == 0 and
                     rep["eval_splits"] else "no split augmented (see --augment-split)")
    resumed = (f" (resumed: kept the {rep['resumed_shards']} shards an earlier run of this job had finished)"
               if rep.get("resumed_shards") else "")
    left = rep.get("skipped") or []
    if left:  # --on-error skip: samples the recipe refused, or whose source did not decode (or left without a member)
        samples = [e for e in left if e.get("what", "sample") == "sample"]
        sources = {e["source"] for e in samples}
        of = f" of {plural(len(sources), 'source sample')}" if len(sources) < len(samples) else ""
        other = len(left) - len(samples)  # a source file that is no tar, a member with no sample (bare shards)
        what = ", ".join(x for x in (f"{plural(len(samples), 'sample', 'samples')}{of}" if samples else "",
                                     f"{plural(other, 'unreadable source file or member', 'unreadable source files or members')}"
                                     if other else "") if x)
        parts.append(f"skipped {what}, listed in dataset.json (skipped): {left[0]['source']}: {left[0]['reason']}"
                     + (" ..." if len(left) > 1 else ""))
    if rep.get("source_skipped"):  # the source's own losses, carried with their origin: not this job's
        parts.append(f"the source's {plural(rep['source_skipped'], 'entry', 'entries')} of what its jobs left out "
                     f"carried into dataset.json (skipped, each with its origin)")
    what = f"{plural(rep['samples'], 'sample', 'samples')} in {plural(rep['shards'], 'shard', 'shards')}"
    if rep.get("up_to_date"):
        return (f"up to date: {out} already holds this job's {what}: " + "; ".join(parts) + "; nothing rewritten (the "
                "source, recipe, options and shards are unchanged since it was written; --rewrite writes it again)")
    again = f" (rewrote the earlier output: {rep['rewrote']})" if rep.get("rewrote") else ""
    return f"wrote {what} to {out}: " + "; ".join(parts) + resumed + again


def _earlier_card(out: str | Path) -> dict[str, Any] | None:
    """The card an earlier augment job left in the local folder ``out`` (None: none, another kind of dataset,
    unreadable, or a URL)."""
    if is_remote(out):
        return None
    try:
        card = json.loads((Path(out) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) and isinstance(card.get("augmentation"), dict) else None


def rewrite_reason(before: dict[str, Any], augmentation: dict[str, Any]) -> str:
    """Why an augment job rewrote the output an earlier job left (its card ``before``; ``augmentation``: this job's
    card entry), for the report's ``rewrote`` and the CLI's line (QA34 upgrade #8: an output written by an older
    mmdata was rewritten without a word, though the help promises a rerun writes nothing).

    Example:
        >>> rewrite_reason({"augmentation": {"seed": 1}}, {"seed": 1})
        'it was written by an older mmdata (its card records no code)'
        >>> rewrite_reason({"augmentation": {"seed": 1}, "code": {"digest": "x"}}, {"seed": 2})
        'it was written by other mmdata code or libraries; the recipe or options differ (seed)'
        >>> rewrite_reason({"augmentation": {"seed": 4, "recipe": {"seed": 11, "ops": []}}, "code": {"digest": "x"}},
        ...                {"seed": 5, "recipe": {"seed": 12, "ops": []}}).endswith("differ (seed)")
        True
    """
    from mmdata.shards.writer import code_card

    old = before.get("augmentation") or {}
    why = []
    code = before.get("code")
    if not isinstance(code, dict):
        why.append("it was written by an older mmdata (its card records no code)")
    elif code.get("digest") != code_card()["digest"]:
        rev = code.get("git_revision")
        why.append("it was written by other mmdata code or libraries" + (f" (git {str(rev)[:10]})" if rev else ""))
    src_a = (old.get("augmented_from") or {}).get("fingerprint")
    src_b = (augmentation.get("augmented_from") or {}).get("fingerprint")
    if src_a != src_b:
        why.append(f"its source's content changed (fingerprint {str(src_a)[:12]} -> {str(src_b)[:12]})")
    def same(k: str) -> bool:
        a, b = old.get(k), augmentation[k]
        if k == "recipe" and isinstance(a, dict) and isinstance(b, dict):
            # the stored recipe carries the seed derived from --seed: another --seed is the seed's change, not the
            # recipe's (QA34 review E2 #8)
            a, b = ({x: v for x, v in r.items() if x != "seed"} for r in (a, b))
        return a == b

    changed = [k for k in ("recipe", "seed", "copies", "keep_original") if k in augmentation and not same(k)]
    if changed:
        why.append(f"the recipe or options differ ({', '.join(changed)})")
    return "; ".join(why) or ("its shards, the source's files or an option not in the card changed since, or the "
                              "earlier job did not finish")


def _name(out: str | Path) -> str:
    """The dataset name of an output folder: its last path component (of a URL's path too; of ``.``, the
    folder's own name, as ``mmdata shard`` names it)."""

    if not is_remote(out):
        return Path(os.path.abspath(out)).name
    return str(out).rstrip("/").rsplit("/", 1)[-1]


def _augment_planned(src: str | Path, out: str | Path, rec: Recipe, *, copies: int, keep_original: bool,
                     splits: list[str], augmented: set[str], maxcount: int, progress: bool, address: str | None,
                     card: dict[str, Any], card_extra: dict[str, Any], storage_options: dict[str, Any] | None = None,
                     on_error: str = "raise", pass_no: int = 1, executor: str = "ray",
                     workers: int = 1, rewrite: bool = False, seed: int = 0, name: str | None = None,
                     carried_skipped: list[dict[str, Any]] | None = None,
                     notes: Iterable[str] = (), plain_notes: Iterable[str] = ()) -> dict[str, Any]:
    """Plan the output from ``src``'s index (keys and splits only: nothing is decoded here) — or, for
    bare shards, from their tar headers, in their order — exactly as :func:`~mmdata.shards.writer.write_records`
    plans the records of an in-memory run, then run one :func:`_augment_shard` task per output shard
    (the splits in ``augmented`` get copies; the others one normalized record per sample): Ray tasks, or
    locally in ``workers`` writer threads (:func:`~mmdata.shards.writer.write_plan`). Each finished shard
    is journalled, so a rerun of a stopped job resumes; a task holds its own shard's records only."""
    import hashlib

    from mmdata.shards import index as idx
    from mmdata.shards import writer
    from mmdata.shards.writer import job_options, plan_shards, sorted_unique, write_plan

    if card:
        for split in splits:  # an unknown split: the reader's error, as locally (the card suffices)
            if split not in card.get("splits", {}):
                raise ShardError(f"{src}: no split {split!r}; it has {sorted(card.get('splits', {}))}")
        table = _index_columns(src, storage_options, ["key", "split", "shard"])
        rows = list(zip(*(table[c] for c in ("key", "split", "shard"))))
        deep = _sixteen_bit_keys(src, storage_options, splits)
        listed = {split: [idx.check_shard_name(src, sh) for sh in card["splits"][split]["shards"]] for split in splits}
        for sh in (sh for names in listed.values() for sh in names) if not is_remote(src) else ():
            # refused here as the local reader refuses them: the tasks would open them blindly
            refused = idx.refused_shard(Path(src) / sh, Path(src), sh)
            if refused is not None:
                raise ShardError(refused)
        # the tasks' working directory is not ours
        root: str | None = str(src).rstrip("/") if is_remote(src) else str(Path(src).resolve())
        source = card.get("fingerprint")
        originals = _source_keys(table, splits)
        carried_columns = segment_columns(src, storage_options, splits)
        shown, lost = {}, []
    else:
        rows, listed, source, shown, lost = _bare_rows(src, splits, storage_options, on_error)
        root = None  # bare shards: each task opens its source shards by their full paths / URLs
        originals = {}
        carried_columns = {}
        deep = set()  # no index to say which images are 16-bit
    wanted = set(splits)
    if root is None:  # QA: a key twice read "would be written in split train and in split train"
        where: dict[tuple[str, str], str] = {}
        for key, split, sh in rows:
            first = where.get((key, split))
            if first is None:
                where[(key, split)] = sh
            elif first != sh:
                raise ShardError(f"{src}: sample {key!r} is in shard {shown.get(first, first)} and in shard "
                                 f"{shown.get(sh, sh)}: keys name one sample each; give each shard once, or rename "
                                 f"one of them")
            else:
                raise ShardError(f"{src}: sample {key!r} is twice in shard {shown.get(sh, sh)}, its members apart (a "
                                 f"tar holds a sample's members next to each other: tar --sort=name, or webdataset's "
                                 f"writers)")
    records: list[Record] = []
    origin: dict[str, tuple[str, str]] = {}  # output key -> (source key, source shard)
    planned = [(o, key, split, shard) for key, split, shard in rows if split in wanted
               for o in _planned_keys(key, split in augmented, copies, keep_original, pass_no)]
    _check_unique_keys([(o, key, split) for o, key, split, _ in planned], src, keep_original)
    for o, key, split, shard in planned:
        records.append(Record(o, o, split=split))
        origin[o] = (key, shard)
    # QA42 clinical #2: 16-bit scans written "as read" came out as 8-bit PNGs. A row written as read is its
    # source's key (a split not augmented, a kept original); where the normalize stage leaves images alone its
    # image member is the source's, byte for byte
    as_read = not rec.normalize_sections.get("image")
    raw_image = {o for o, key, _, _ in planned if key in deep and o == key} if as_read else set()
    note = sixteen_bit_note([o for o, key, _, _ in planned if key in deep and o not in raw_image], as_read)
    if note is not None:
        say_to_caller([note], UserWarning, stacklevel=4)
        notes = [*notes, note]
    # a dataset folder's samples by key (its shards hold them so: a task draws on one or two); bare shards' in
    # their order in the shards (a task reads whole every source shard it draws on: other tools' shards are
    # often written shuffled, and by key each task would read them all)
    plan = plan_shards(sorted_unique(records) if root is not None else records, maxcount)
    # the splits written (QA31: options.split was null under --split val; only the command said so)
    options = job_options(maxcount=maxcount, on_error=on_error, seed=seed) | {"split": list(splits)}
    plugins: list[str] = []
    if executor == "ray" or (workers > 1 and len(plan) > 1 and writer._pack is None):
        # the tasks run in fresh processes (Ray workers; the pure-Python writer's spawned pool): they import the
        # plugin modules whose ops the recipe names, as an ablation's workers do (QA: unknown image op there)
        from mmdata.plugins import loaded, used_code, worker_plugins

        plugins = worker_plugins(used_code([rec.to_dict()]), loaded())
    if executor != "ray" and workers > 1 and len(plan) > 1:
        _import_kernels(rec)
    extra: dict[str, dict[str, Any]] = {}
    for p in plan:
        keys = [r.key for r in p["records"]]
        needed = {origin[k][1] for k in keys}
        inputs = sorted({origin[k][0] for k in keys})
        extra[p["name"]] = {"augment": {
            "src": root, "recipe": rec.to_dict(), "copies": copies, "keep_original": keep_original, "keys": keys,
            "on_error": on_error, "pass": pass_no,
            "augment": p["split"] in augmented, "decode_threads": 1 if executor == "ray" else 0, "plugins": plugins,
            "sources": inputs, "storage_options": storage_options,
            **({"raw_image": [k for k in keys if k in raw_image]} if raw_image & set(keys) else {}),
            "source_keys": {k: originals[k] for k in inputs if k in originals},
            **({"columns": cols} if (cols := {k: carried_columns[k] for k in inputs if k in carried_columns}) else {}),
            "source_shards": [sh for sh in listed[p["split"]] if sh in needed],
            "shard_of": {origin[k][0]: origin[k][1] for k in keys},
            "shard_names": {sh: shown[sh] for sh in listed[p["split"]] if sh in needed and sh in shown}}}
    # the job's identity for the resume journal and a rerun's up-to-date check: options, recipe, copies, what
    # a damaged source sample does, the source's bytes (a local folder's files as they are now: QA, a flipped
    # byte in a source tar kept the output "up to date"), the code of the user's own ops, and the plan
    files = None if card and is_remote(src) else _source_files(src, card, listed)
    ident = {"options": options, "augmentation": card_extra["augmentation"], "source": source, "on_error": on_error,
             "source_files": files, "user_code": _user_code(rec),
             "plan": [(p["name"], p["split"], extra[p["name"]]["augment"]["keys"]) for p in plan],
             **({"raw_image": sorted(raw_image)} if raw_image else {})}  # other bytes than an 8-bit job's
    plan_hash = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    # the source card's warnings hold for the copies too (12-bit images in 16-bit files decode nearly black, label
    # spellings read as one class): carried, naming the source (QA: the output's card and inspect lost them)
    named = card_extra["augmentation"]["augmented_from"]["name"]  # the source's name, as augment_dataset named it
    # but not its identifying-metadata warning: every image and audio member is re-encoded from decoded values (no
    # EXIF, XMP, text chunks or tags), the writer scans what this job writes for its own card, and the source's
    # warning names the source's files (QA34 gdpr #6: a false claim that named the erased subject's files)
    carried = [f"source dataset {named}: {w}" for w in card.get("warnings") or []
               if not str(w).startswith(IDENTIFYING_WARNING)] if card else []
    # then check_targets' notes, and what the recipe warns of while the job runs (QA31: a per-pixel map left where
    # it was went to stderr only): each local task adds what its own recipe warned of (Recipe.warned), so the
    # process's warning filters are neither read nor changed (QA31 review: two jobs in threads lost each other's)
    kept = _CardWarnings([*carried, *plain_notes, *(n if n == note else f"recipe: {n}" for n in notes)],
                         {p["name"]: i for i, p in enumerate(plan)})
    token = f"{os.getpid()}:{id(kept)}"
    for p in plan:
        extra[p["name"]]["augment"]["job"] = token
    left = [*(carried_skipped or []), *lost]  # the source's losses first, with their origin; then this job's
    _JOBS[token] = kept
    kept.resumed(_journalled_tallies(out, plan_hash))
    try:
        rep = write_plan(out, plan, {p["name"]: [] for p in plan}, [], options, plan_hash, skipped=left or None,
                          warnings=kept, label_names=card.get("label_names"), progress=progress,
                          name=name or _name(out), card_extra=card_extra, executor=executor, address=address,
                          write_fn=_augment_shard, task_extra=extra, storage_options=storage_options, workers=workers,
                          rewrite=rewrite,
                          # bare shards at a URL whose server gives no ETag / Last-Modified cannot be told unchanged
                          checkable=root is not None or all(st not in (None, "None") for _, _, st in source))
    finally:
        _JOBS.pop(token, None)
    # what the copies showed (QA38): said once for the job, counted over its shards, as the card keeps it
    for line in kept.counted():
        say_to_caller([f"recipe: {line}"], UserWarning, stacklevel=4)
    unchanged = kept.unchanged()
    return rep | ({"unchanged_copies": unchanged} if unchanged else {})


def _journalled_tallies(out: str | Path, plan_hash: str) -> dict[str, dict[str, Any]]:
    """Shard -> the ``copy_checks`` (:meth:`_CardWarnings.tallies`) of the shards a stopped run of the job of
    ``plan_hash`` journalled in the local folder ``out``; {} for another plan's journal, none, or a URL (there a
    resumed job counts only the shards it writes)."""
    if is_remote(out):
        return {}
    from mmdata.errors import MMDataError
    from mmdata.shards.journal import NAME, _read, _records
    from mmdata.shards.writer import _read_marker

    try:
        records, _ = _records(_read(Path(out) / NAME))
    except (OSError, MMDataError):
        return {}
    if not records or records[0] != plan_hash.encode():
        return {}
    out_: dict[str, dict[str, Any]] = {}
    for data in records[1:]:
        meta = _read_marker(data, rows=False)
        if isinstance(meta, dict) and isinstance(meta.get("copy_checks"), dict):
            out_[str(meta.get("name"))] = meta["copy_checks"]
    return out_


def _source_files(src: str | Path, card: dict[str, Any], listed: dict[str, list[str]]) -> list[list[Any]] | None:
    """A local dataset folder's card, index and the shards read, each ``[name, size, change stamp]`` (bare
    shards: None, their identity has them already)."""

    from mmdata.shards import index as idx
    from mmdata.shards.sources import file_stamp

    if not card:
        return None
    # every tar under the folder, whatever its layout (columns keep theirs in image/, audio/, ...: QA, a flipped byte
    # there kept the output "up to date"), and the metadata files
    tars = {p.relative_to(src).as_posix() for p in Path(src).rglob("*.tar*") if p.is_file()}
    names = [idx.CARD, idx.INDEX, idx.SHARDS, *sorted(tars | {sh for shards in listed.values() for sh in shards})]
    out = []
    for name in names:
        try:
            st = os.stat(Path(src) / name)
        except OSError:
            out.append([name, -1, 0])
        else:
            out.append([name, st.st_size, file_stamp(st)])
    return out


def _user_code(rec: Recipe) -> dict[str, str]:
    """When ``rec`` uses ops from outside mmdata (a user's ``--plugin``): the sha256 of every module of the
    user's own loaded in this process (not mmdata's, not the interpreter's or an installed package's) —
    the op's file and the helpers it imports: editing any is another job (QA: an edited plugin op, then a
    helper module it imports, kept the old output "up to date")."""
    import inspect
    import site
    import sys
    import sysconfig

    from mmdata.plugins import used_code

    used = used_code([rec.to_dict()])
    if not used:
        return {}
    installed = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                  *sysconfig.get_paths().values(), *site.getsitepackages(),
                                                  site.getusersitepackages()) if p}
    ours = str(Path(__file__).resolve().parents[1])
    out = {}
    for label, cls in used.items():
        try:
            out[label] = hashlib.sha256(Path(inspect.getsourcefile(cls) or "").read_bytes()).hexdigest()
        except (TypeError, OSError):
            out[label] = hashlib.sha256(repr((cls.__module__, cls.__qualname__)).encode()).hexdigest()
    for name, mod in sorted(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith(".py"):
            continue
        path = str(Path(f).resolve())
        if path.startswith(ours) or any(path.startswith(p + "/") for p in installed):
            continue
        try:
            out[f"module {name}"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            continue
    return out


def _bare_rows(src: str | Path, splits: list[str], storage_options: dict[str, Any] | None,
               on_error: str = "raise") -> tuple[Any, ...]:
    """For bare shards (no index): ``(rows, listed, identity, shown, lost)`` as the index would give them —
    ``(key, split, shard)`` for every sample of every shard in every wanted split (a local run reads
    every shard once per split), each split's shards in order, the shards' identity for the resume
    journal and the up-to-date check (path or URL, size, change stamp or ETag / Last-Modified), each
    shard's name as ``src`` gives it (the tasks open them by their full paths; messages name them as
    given), and the losses no sample carries. Only tar headers are parsed: nothing is decoded or
    augmented here (member bytes are skipped, by seeking where the stream allows). Damage the tar reader
    meets is a ShardError naming the shard, or with ``on_error="skip"`` planned as the reader reads past
    it: a sample it names is planned (its task lists it as lost), what names no sample (a member with no
    key, a file that is no tar, an empty one) is one entry of ``lost`` (the card's ``skipped``), and the
    samples after it are planned as any (QA: the plan stopped at the first damage, and everything after it
    in that shard was lost without a word)."""

    from mmdata.shards.sources import file_stamp, skip_entry
    from mmdata.shards.tario import expand_sources, is_url, iter_samples
    from mmdata.urls import call, filesystem

    given = [str(g) for g in expand_sources(src, storage_options)]
    shards = [s if is_url(s) else str(Path(s).resolve()) for s in given]
    shown = dict(zip(shards, given))
    if len(set(shards)) < len(shards):  # a link to another shard, a pattern naming one twice
        a, b = next((given[i], given[j]) for j in range(len(shards)) for i in range(j) if shards[i] == shards[j])
        raise ShardError(f"{src}: {a} and {b} are the same file ({shards[given.index(a)]}): each of its samples "
                         f"would be written twice; give each shard once")
    keys: list[tuple[str, str]] = []
    lost: list[dict[str, Any]] = []
    ident = []
    for sh in shards:
        name = shown[sh]
        met: str | None = None  # the key of the last sample met with a problem (planned once)
        here: set[str] = set()  # the keys of this shard planned so far
        for key, _, problem in iter_samples(sh, want=lambda _: False, storage_options=storage_options):
            if problem is not None:
                message = problem[1].replace(sh, name)
                if on_error != "skip":  # as the tasks' reader (on_error="raise") stops
                    raise ShardError(f"{message if name in message else f'shard {name}: {message}'}; --on-error skip "
                                     f"leaves what it damaged out and lists it in the card")
                if key:  # planned: its task lists it as lost, with the reader's reason, or delivers it
                    # once, when it follows damage (the sample's member after a broken header reads as a "repeated
                    # key"); a key met again after other samples is planned again: the check of duplicates names it
                    if key not in here or (met is None and keys[-1:] != [(key, sh)]):
                        keys.append((key, sh))
                        here.add(key)
                    met = key
                else:
                    whole = problem[0] in _WHOLE_SHARD and not here  # nothing of it read: the file
                    lost.append(skip_entry(name, "file" if whole else "member",
                                           f"unreadable in the source (shard {name}): "
                                           f"{message.removeprefix(f'shard {name}: ')}"))
                continue
            if key == met and keys[-1:] == [(key, sh)]:
                continue  # the sample its problem was met in, delivered after all: planned already
            met = None
            keys.append((key, sh))  # type: ignore[arg-type]
            here.add(key)  # type: ignore[arg-type]
        if is_remote(sh):
            fs, path = filesystem(sh, storage_options)
            info = call(sh, "look it up", fs.info, path)
            stamp = next((info[k] for k in ("ETag", "etag", "LastModified", "Last-Modified", "last_modified", "updated",
                                            "mtime", "modified") if info.get(k)), None)
            ident.append((sh, info.get("size"), str(stamp)))
        else:
            st = os.stat(sh)
            ident.append((sh, st.st_size, file_stamp(st)))
    rows = [(key, split, sh) for split in splits for key, sh in keys]
    return rows, {split: shards for split in splits}, ident, shown, lost


#: problems of the tar reader that stand for the whole shard when met before any sample of it
_WHOLE_SHARD = frozenset({"corrupt tar header", "truncated shard", "corrupt compressed stream", "unreadable shard"})


def _import_kernels(rec: Recipe) -> None:
    """Import what the recipe's kernels import on first use, here in the main thread, before the local
    writer threads run tasks: two threads importing albumentations for the first time at once deadlocked
    on its modules, which import each other (``_DeadlockError`` on ``albumentations.augmentations.crops``,
    or "partially initialized module": QA, ``mmdata augment -j 2`` failed 2 of 14 runs)."""
    import importlib

    from mmdata.augment import audio, image

    spec = json.dumps(rec.to_dict())
    modules = ["mmdata.shards.reader", *image.KERNEL_IMPORTS, *(audio.KERNEL_IMPORTS if '"audio"' in spec else ())]
    for name in modules:
        importlib.import_module(name)
    if '"typo"' in spec:
        from mmdata.augment.text import char_map

        for kind in ("keyboard", "ocr"):
            char_map(kind)


#: index ``image_mode`` values of 16-bit (and 32-bit int) images, which the reader decodes by ``v >> 8``
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _sixteen_bit_keys(src: str | Path, storage_options: dict[str, Any] | None, splits: list[str]) -> set[str]:
    """Keys of ``src``'s samples (in ``splits``) whose image the index records as 16-bit; an index without
    ``image_mode`` (written before it was recorded) gives none."""
    from mmdata.shards.index import load_index

    try:
        t = load_index(src, columns=["key", "split", "image_mode"], storage_options=storage_options).to_pydict()
    except (ShardError, KeyError, ValueError):
        return set()
    wanted = set(splits)
    return {k for k, sp, m in zip(t["key"], t["split"], t["image_mode"]) if sp in wanted and m in SIXTEEN_BIT_MODES}


def sixteen_bit_note(keys: list[str], as_read: bool) -> str | None:
    """The warning (console and card) for output rows of 16-bit source images written as 8-bit PNGs, or None.

    Example:
        >>> sixteen_bit_note(["a_aug0", "b_aug0"], as_read=True)[:58]
        '2 16-bit source images written as 8-bit (the augmented cop'
        >>> sixteen_bit_note([], as_read=True) is None
        True
    """
    if not keys:
        return None
    shown = ", ".join(repr(k) for k in sorted(keys)[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    why = ("the augmented copies: image ops work on 8-bit images; the rows written as read keep the source's 16-bit "
           "image bytes" if as_read else "the recipe's normalize stage has image ops, and image ops work on 8-bit images")
    return (f"{len(keys)} 16-bit source image{'s' if len(keys) != 1 else ''} written as 8-bit ({why}; e.g. {shown}): "
            "each keeps the high byte (v >> 8), as the loader reads 16-bit images; keep the source dataset for its "
            "16-bit values")


def _keep_source_images(made: dict[str, Record], aug: dict[str, Any], split: str, threads: int) -> None:
    """Give the records ``aug["raw_image"]`` names (16-bit images written as read) their source's image
    member, bytes as they are, in place of the 8-bit PNG; read undecoded, only those samples."""
    import dataclasses

    import mmdata

    keys = [k for k in aug["raw_image"] if k in made and made[k].members.get("png") is not None]
    if not keys or aug.get("src") is None:
        return
    ds = mmdata.open_dataset(aug["src"], split=split, partition=False, decode=False, decode_threads=threads,
                             storage_options=aug.get("storage_options"), keys=keys,
                             on_error=aug.get("on_error", "raise"))
    for s in ds:
        r = made.get(s.key)
        exts = [e for e in s.fields if e in IMAGE_EXTS]
        if r is None or len(exts) != 1 or not isinstance(s.fields[exts[0]], (bytes, bytearray)):
            continue
        raw = bytes(s.fields[exts[0]])
        members = {(exts[0] if e == "png" else e): (raw if e == "png" else v) for e, v in r.members.items()}
        made[s.key] = dataclasses.replace(r, members=members)


def _augment_shard(task: dict[str, Any]) -> dict[str, Any]:
    """One output shard of ``mmdata augment``, end to end (a Ray task, or a local writer's): read the
    source samples it needs (only the source shards holding them; of a dataset folder, only those samples
    are decoded), augment and encode them exactly as every run does (:func:`sample_copies`: one seeded plan
    per output key), write the shard."""
    import mmdata
    from mmdata.shards.writer import _payload_record, _write_task

    aug = task["augment"]
    if aug.get("plugins"):  # a fresh process: register the recipe's plugin ops before it is built
        from mmdata.plugins import load_plugins

        load_plugins(aug["plugins"], entry_points=False)
    rec = load_recipe(aug["recipe"])
    wanted, need = set(aug["keys"]), set(aug["sources"])
    # a Ray task: one decode thread, as it declares one CPU (the bytes do not depend on it)
    threads = aug.get("decode_threads", 1)
    so = aug.get("storage_options")
    on_error = aug.get("on_error", "raise")
    if aug["src"] is None:  # bare shards: exactly the ones holding this task's samples, in order
        ds = mmdata.open_dataset(list(aug["source_shards"]), split=task["split"], partition=False,
                                 decode_threads=threads, storage_options=so, on_error=on_error, **reader_options(rec))
        # the task's samples only are decoded: the stream passes the others over (bare shards have no index for
        # keys= to count a selection by; the check below names what did not come)
        ds.keys = frozenset(need)
    else:
        # keys=: the task's samples only are decoded (the others are passed over), from the shards holding them
        # (an output shard draws on a few source samples: decoding whole source shards per task cost each
        # source shard one decode per output shard it feeds)
        ds = mmdata.open_dataset(aug["src"], split=task["split"], partition=False, decode_threads=threads,
                                 storage_options=so, on_error=on_error, keys=aug["sources"], **reader_options(rec))
    made: dict[str, Record] = {}
    job = _JOBS.get(aug.get("job", ""))
    # a local task counts what its copies show for the job's warnings (a Ray task's ops warn once in its process)
    collecting = collect_notes() if job is not None else contextlib.nullcontext([])
    try:
        with collecting as found:
            checks = _CopyChecks(rec, found) if job is not None else None
            for s in ds:
                if s.key not in need:
                    continue
                try:
                    for r in sample_copies(s, rec, aug["copies"], aug["keep_original"], task["split"], wanted,
                                           augment=aug.get("augment", True), on_error=on_error,
                                           source_key=aug.get("source_keys", {}).get(s.key), pass_no=aug.get("pass", 1),
                                           columns=aug.get("columns", {}).get(s.key), checks=checks):
                        made[r.key] = r
                except ShardError as exc:  # the recipe refused a copy: name the shard and the sample as the input has it
                    sh = aug.get("shard_of", {}).get(s.key)
                    where = f"shard {(aug.get('shard_names') or {}).get(sh, sh)}, " if sh else ""
                    raise ShardError(f"{where}source sample {s.key!r} of split {task['split']!r}: "
                                     f"{refusal(exc)}") from None
    except ShardError as exc:  # bare shards opened by their full paths: named as the source gives them
        message = _as_given(str(exc), aug.get("shard_names"))
        if message == str(exc):
            raise
        raise ShardError(message) from None
    finally:
        # a local task: what its recipe warned of (this task's own Recipe, so no other job's) goes into the card
        if job is not None:
            for text in getattr(rec, "warned", ()):  # Recipe.warned: the texts this recipe warned of
                job.add(task["name"], text)
    if checks is not None:
        job.tally(task["name"], task["split"], checks, rec.has_normalize)
    if aug.get("raw_image"):
        _keep_source_images(made, aug, task["split"], threads)
    if on_error == "skip":  # the samples its reader skipped, as a local run lists them (same records, same plan)
        lost, _ = _source_losses(ds, made.values(), aug["sources"],
                                 lambda k: _planned_keys(k, aug.get("augment", True), aug["copies"],
                                                         aug["keep_original"], aug.get("pass", 1)), task["split"],
                                 names=aug.get("shard_names"))
        made.update((r.key, r) for r in lost if r.key in wanted)
    missing = [k for k in aug["keys"] if k not in made]
    if missing:
        names = aug.get("shard_names") or {}
        sources = sorted({k for k in aug["sources"] if not any(m in made for m in
                                                                 _planned_keys(k, aug.get("augment", True), aug["copies"],
                                                                               aug["keep_original"], aug.get("pass", 1)))})
        raise ShardError(f"{aug['src'] or 'bare shards'}: shards {[names.get(sh, sh) for sh in aug['source_shards']]} of "
                         f"split {task['split']!r} do not hold the source samples {sources[:3]} ({len(sources)} in all) "
                         f"that {'the index lists' if aug['src'] else 'their tar headers listed when the job was planned'}"
                         f" there: did the source change during the job?")
    res = _write_task({k: v for k, v in task.items() if k != "augment"}
                      | {"records": [_payload_record(made[k]) for k in aug["keys"]]})
    if checks is not None and (tally := job.tallies(task["name"])) is not None:  # journalled with the shard: a
        res["copy_checks"] = tally  # resumed job counts the findings of the shards a stopped run wrote (QA38 rv4 #1)
    return res
