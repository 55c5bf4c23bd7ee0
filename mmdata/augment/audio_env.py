"""Audio ops that simulate where speech was recorded: a telephone band (``band_limit``, optionally through
8-bit mu-law), a pitch shift that keeps the duration (``pitch_shift``), background noise from a folder of
noise files (``background_noise``, e.g. MUSAN) and room reverberation (``reverb``: an impulse response from a
folder, or a synthetic exponentially decaying one) — the audiomentations ops speech recipes reach for.

Both kernels of each op run one function per clip (:func:`band_limit`, :func:`pitch_shift`, :func:`mix_at_snr`,
:func:`convolve_ir`): the batched kernel calls it on each row's valid samples on the batch's device, so the
kernels agree to float rounding (exactly on the CPU). Parameters come from the plan only (a file's name, a
crop offset as a fraction, an SNR, a seed for a synthetic IR): ``apply`` draws nothing and reads no clock.

**Files named by a recipe** (``path`` of ``background_noise`` and ``reverb``). Recipes are untrusted, and a
noise folder is data, not code, so it needs no ``--trust-code``; instead the folder must lie inside an
*allowed root*: a relative ``path`` (no ``..`` part, no ``~``) is resolved against the current working
directory, which is the root; an absolute ``path`` must lie inside a root given through the API,
:func:`allow_root` (the CLI gives none: a recipe file cannot name ``/etc``, nor anything above the working directory). Symbolic links are
followed only where they stay inside the root: a file or folder that resolves outside it is an error naming
the recipe key and the link, and linked folders are not entered. The folder is read once, when the op is
built: its audio files (:data:`mmdata.codecs.AUDIO_EXTS`, in sub-folders too; names starting with ``.`` are
skipped) sorted by their relative POSIX name, which is what the plan records (a file that has become a link
out of the root since is refused when read). Files are decoded with :func:`mmdata.codecs.decode_audio` (its
size limits) and resampled to each clip's rate with :func:`mmdata.augment.audio.resample`; decoded files are
cached per process (up to :data:`CACHE_SAMPLES` samples).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdata.augment.audio import AudioOp, _rows, resample
from mmdata.augment.base import Param
from mmdata.errors import RecipeError
from mmdata.types import Batch, Sample

#: the absolute folders (resolved) that an absolute ``path`` in a recipe may lie inside: :func:`allow_root`
_ROOTS: list[Path] = []
#: samples of decoded, resampled files kept per process (noise and impulse responses together; 64 MB of float32):
#: a MUSAN noise folder at 16 kHz (~6 h) does not fit, so a worker decodes again what it has not used lately
CACHE_SAMPLES = 16_000_000
#: the largest noise / impulse-response file read, in bytes (``mmdata shard``'s default ``--max-file-size``): a
#: larger one is refused, naming it, when the folder is listed and again when it is read (QA28: a 20 GB sparse
#: ``.wav`` was read whole). 1 GiB of 16-bit PCM is MAX_AUDIO_SAMPLES, the most :func:`decode_audio` decodes.
MAX_FILE_BYTES = 1 << 30
#: the (folder, file, why) of the IRs :class:`Reverb` left clips dry for and warned about (once per process)
_DRY_WARNED: set[tuple[str, str, str]] = set()
#: mu-law's mu for 8-bit companding (G.711 / torchaudio ``mu_law_encoding(quantization_channels=256)``)
MU = 255


def allow_root(path: str | os.PathLike[str]) -> Path:
    """Allow recipes to name files under ``path`` by an absolute path (``background_noise.path``,
    ``reverb.path``); relative paths are always resolved against the current working directory.

    Returns:
        The resolved root.

    Example:
        >>> import tempfile
        >>> root = allow_root(tempfile.mkdtemp())
        >>> root.is_absolute(), root in _ROOTS
        (True, True)
        >>> _ROOTS.remove(root)  # the allowed roots are process-wide
    """
    root = Path(path).expanduser().resolve(strict=True)
    if not root.is_dir():
        raise NotADirectoryError(f"allow_root: {path} is not a folder")
    if root not in _ROOTS:
        _ROOTS.append(root)
    return root


def _inside(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def resolve_files(value: str, where: str) -> tuple[Path, Path, tuple[str, ...]]:
    """The root, the folder ``value`` names (a recipe's ``path``, resolved) and its audio files' relative POSIX
    names, sorted, by the rules in the module docstring.

    Raises:
        RecipeError: naming ``where``: an empty path, a ``..`` part, an absolute path outside the allowed
            roots, a folder that does not exist, a link out of the root, or no audio files.
    """
    from mmdata.codecs import AUDIO_EXTS

    if not isinstance(value, str) or not value or "\x00" in value:
        raise RecipeError(f"{where}: expected a folder of audio files, got {value!r}")
    raw = Path(value)
    if value.startswith("~") or ".." in raw.parts:
        raise RecipeError(f"{where}: {value!r} may not contain '..' or start with '~'; name a folder inside the "
                          "working directory, or an absolute folder allowed with mmdata.augment.audio_env.allow_root()")
    if raw.is_absolute():
        # resolved as the roots are (a root allowed through a symbolic link holds its own paths; QA26 review)
        roots = [r for r in _ROOTS if _inside(Path(os.path.realpath(raw)), r)]
        if not roots:
            allowed = ", ".join(str(r) for r in _ROOTS) or "none"
            raise RecipeError(f"{where}: absolute path {value!r} is outside the allowed roots ({allowed}); a recipe "
                              "names a folder relative to the working directory, or one allowed with "
                              "mmdata.augment.audio_env.allow_root(path) from Python")
        root = roots[0]
    else:
        root = Path.cwd().resolve()
    try:
        folder = (root / raw if not raw.is_absolute() else raw).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise RecipeError(f"{where}: folder {value!r} not found ({exc.__class__.__name__}: {exc})") from None
    if not _inside(folder, root):
        raise RecipeError(f"{where}: {value!r} resolves to {folder}, outside its root {root} (a symbolic link out)")
    if not folder.is_dir():
        raise RecipeError(f"{where}: {value!r} is not a folder")
    names: list[str] = []

    def unreadable(exc: OSError) -> None:  # a subfolder os.walk cannot list: its files would go unsaid
        raise RecipeError(f"{where}: cannot list {exc.filename} ({exc.strerror or exc}); a noise / impulse-response "
                          "folder must be readable whole")

    for here, dirs, files in os.walk(folder, onerror=unreadable):  # links to folders are not entered
        base = Path(here)
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # hidden: .git, macOS ._ resource forks
        files = [f for f in files if not f.startswith(".")]
        for d in dirs:
            if (base / d).is_symlink() and not _inside((base / d).resolve(), root):
                raise RecipeError(f"{where}: {base / d} is a symbolic link out of the root {root}")
        for f in files:
            full = base / f
            if f.rsplit(".", 1)[-1].lower() not in AUDIO_EXTS or "." not in f:
                continue
            real = full.resolve()
            if not _inside(real, root):
                raise RecipeError(f"{where}: {full} is a symbolic link out of the root {root}")
            if not real.is_file():
                raise RecipeError(f"{where}: {full} is not a regular file")
            size = real.stat().st_size
            if size > MAX_FILE_BYTES:
                raise RecipeError(f"{where}: {full}: {_too_big(size)}")
            names.append(full.relative_to(folder).as_posix())
    if not names:
        raise RecipeError(f"{where}: no audio files ({', '.join(AUDIO_EXTS[:4])}, ...) in {value!r} ({folder})")
    return root, folder, tuple(sorted(names))


_CACHE: OrderedDict[tuple[str, int, int, int], torch.Tensor] = OrderedDict()


def _too_big(size: int) -> str:
    return (f"{size} bytes, over the limit of {MAX_FILE_BYTES} bytes ({MAX_FILE_BYTES / 2**30:g} GiB, "
            f"mmdata.augment.audio_env.MAX_FILE_BYTES) for a noise or impulse-response file; cut it into shorter "
            f"files or leave it out of the folder")


class _TooBig(Exception):
    """A file over :data:`MAX_FILE_BYTES` met when it is read (it grew after the folder was listed)."""


def _decoded(path: str, mtime_ns: int, size: int, rate: int) -> torch.Tensor:
    """A file decoded (mmdata's decoder) and resampled to ``rate``: float32 (C, N) on the CPU, from the
    per-process cache (least recently used files leave it past :data:`CACHE_SAMPLES` samples)."""
    from mmdata.codecs import decode_audio

    key = (path, mtime_ns, size, rate)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise _TooBig(_too_big(size))
        # read(n) allocates n bytes first: the file's size (+1 to see it grow), then no further than the limit
        data = fh.read(size + 1)
        if len(data) > size:
            data += fh.read(MAX_FILE_BYTES + 1 - len(data))
    if len(data) > MAX_FILE_BYTES:
        raise _TooBig(_too_big(len(data)))
    x, sr = decode_audio(data)
    x = torch.as_tensor(x, dtype=torch.float32)
    x = resample(x, int(sr), rate) if int(sr) != rate else x
    _CACHE[key] = x
    total = sum(t.numel() for t in _CACHE.values())
    while len(_CACHE) > 1 and total > CACHE_SAMPLES:
        total -= _CACHE.popitem(last=False)[1].numel()
    return x


def load_file(folder: Path, name: str, rate: int, where: str, root: Path | None = None) -> torch.Tensor:
    """``folder / name`` decoded and resampled to ``rate`` (cached; a file changed on disk is read again).

    Raises:
        RecipeError: the file is gone or cannot be decoded, or (``root`` given) it has become a link out of
            ``root`` since the folder was listed, naming ``where`` and the file.
    """
    path = folder / name
    if root is not None and not _inside(path.resolve(), root):
        raise RecipeError(f"{where}: {path} is a symbolic link out of the root {root}")
    try:
        st = path.stat()
        return _decoded(str(path), st.st_mtime_ns, st.st_size, int(rate))
    except _TooBig as exc:
        raise RecipeError(f"{where}: {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a file of the folder, named for the user
        from mmdata.io import out_of_memory

        if out_of_memory(exc) is not None:  # the machine's memory (the size cap above bounds the file): one rule,
            raise  # the CLI's one line, no recipe step or noise file blamed (review of QA28)
        raise RecipeError(f"{where}: cannot read {path}: {exc.__class__.__name__}: {exc}") from None


def _fit_channels(y: torch.Tensor, channels: int) -> torch.Tensor:
    """``y`` (c, N) as ``channels`` channels: as it is when they match, else its mean broadcast."""
    if y.shape[0] == channels:
        return y
    return y.mean(dim=0, keepdim=True).expand(channels, y.shape[-1])


def _per_row(batch: Batch, params: Sequence[dict[str, Any]], fn: Any) -> Batch:
    """``fn(row, params)`` on each present row's valid samples (same length out), written into a copy. On a
    'meta' batch (:meth:`Recipe.plan_batched`'s shape-only pass) the copy alone: every op here keeps the layout."""
    x = batch["audio"].clone()
    if x.is_meta:
        return batch.replace(audio=x)
    for i, (row, p) in enumerate(zip(_rows(batch), params)):
        if row is not None and p.get("applied", True):
            x[i, :, : row.shape[-1]] = fn(row.contiguous(), p)
    return batch.replace(audio=x)


# -- band_limit ----------------------------------------------------------------------------------------------
def mu_law(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Mu-law encode to ``mu + 1`` levels and decode back (torchaudio's ``mu_law_encoding`` /
    ``mu_law_decoding``): values clipped to [-1, 1], then quantised on the companded scale."""
    xd = x.double().clamp(-1.0, 1.0)
    y = torch.sign(xd) * torch.log1p(mu * xd.abs()) / math.log1p(mu)
    q = torch.floor((y + 1) / 2 * mu + 0.5)
    y = q / mu * 2 - 1
    return (torch.sign(y) * (torch.exp(y.abs() * math.log1p(mu)) - 1) / mu).to(x.dtype)


def band_limit(x: torch.Tensor, sr: int, low_hz: float, high_hz: float, mulaw: bool = False) -> torch.Tensor:
    """Keep the frequencies in [``low_hz``, ``high_hz``] of (C, T) audio: the clip's DFT (float64) with the bins
    outside the band set to zero, transformed back (a brick-wall filter of the clip taken as periodic:
    energy outside the band is removed, not attenuated; ``high_hz`` at or above ``sr / 2`` cuts nothing at
    the top, ``low_hz`` 0 keeps DC); then an 8-bit mu-law round trip when ``mulaw``.

    Example:
        >>> t = torch.arange(8000) / 8000
        >>> y = band_limit(torch.sin(2 * math.pi * 100 * t)[None], 8000, 300.0, 3400.0)
        >>> float(y.abs().max()) < 1e-4  # a 100 Hz tone is gone (float32 rounding of the input left)
        True
    """
    T = x.shape[-1]
    if T == 0:
        return x.clone()
    spec = torch.fft.rfft(x.double(), n=T, dim=-1)
    f = torch.fft.rfftfreq(T, 1.0 / sr, dtype=torch.float64, device=x.device)
    keep = (f >= low_hz) & (f <= high_hz)
    y = torch.fft.irfft(spec * keep.to(spec.dtype), n=T, dim=-1).to(x.dtype)
    return mu_law(y) if mulaw else y


class BandLimit(AudioOp):
    """Telephone band: keep only ``low_hz`` .. ``high_hz`` (each drawn from its range; 300-3400 Hz by default)
    with an FFT mask over the whole clip (a brick wall: energy outside the band is removed; a cut at or above
    half the sample rate removes nothing there), then with ``mulaw: true`` an 8-bit mu-law encode / decode
    round trip (G.711's companding: values clipped to [-1, 1]). Kernels agree to float rounding (the same
    float64 FFT per clip; with ``mulaw`` a value within rounding of a level boundary could take the next
    level on another device)."""

    section, name = "audio", "band_limit"
    needs_rate = True
    keeps_layout = True
    PARAMS = {"low_hz": Param("range", [300.0, 300.0], 0.0, 192000.0, doc="low cut in Hz, drawn from [min, max] (0: none)"),
              "high_hz": Param("range", [3400.0, 3400.0], 1.0, 192000.0,
                               doc="high cut in Hz, drawn from [min, max] (at or above half the rate: none)"),
              "mulaw": Param("bool", False, doc="8-bit mu-law encode / decode after the filter")}
    tolerance = "allclose, atol 1e-5"

    def validate(self, where: str) -> None:
        if self.low_hz[1] >= self.high_hz[0]:
            raise RecipeError(f"{where}.low_hz: {self.low_hz} reaches high_hz {self.high_hz}; every low cut must be "
                              "below every high cut (e.g. low_hz: [200, 400], high_hz: [3000, 3800])")

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        sr = int(sample.sample_rate or 0)
        if sr and self.low_hz[1] >= sr / 2:
            raise RecipeError(f"{self.where}.low_hz: {self.low_hz[1]:g} Hz is not below half the sample rate of sample "
                              f"{sample.key!r} ({sr / 2:g} Hz at {sr} Hz): nothing would be left; lower low_hz")
        return {"low_hz": float(rng.uniform(*self.low_hz)), "high_hz": float(rng.uniform(*self.high_hz))}

    def _apply(self, x: torch.Tensor, sr: int, p: dict[str, Any]) -> torch.Tensor:
        return band_limit(x, sr, p["low_hz"], p["high_hz"], self.mulaw)

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        return sample.with_fields(audio=self._apply(sample["audio"], int(sample.sample_rate), params))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        sr = int(batch.sample_rate)
        return _per_row(batch, params, lambda r, p: self._apply(r, sr, p))


# -- pitch_shift ---------------------------------------------------------------------------------------------
def _stft_size(sr: int) -> int:
    """The phase vocoder's FFT: about 64 ms (512 at 8 kHz, 1024 at 16 kHz, 2048 at 44.1 / 48 kHz)."""
    return 1 << max(6, int(round(math.log2(max(64, sr * 0.064)))))


#: output frames :func:`time_stretch` computes at a time (its working memory, not the clip's length, sets the peak)
STRETCH_BLOCK = 256


def time_stretch(x: torch.Tensor, sr: int, length: int) -> torch.Tensor:
    """(C, T) audio stretched to ``length`` samples at the same pitch: a phase vocoder (librosa's
    ``phase_vocoder``: magnitudes interpolated between frames, phase advanced by each bin's measured
    frequency) with identity phase locking (bins follow their spectral peak's phase, so a tone keeps its
    level), on a Hann STFT of :func:`_stft_size` with a hop of a quarter of it, in float64."""
    T = x.shape[-1]
    n_fft = _stft_size(sr)
    hop = n_fft // 4
    win = torch.hann_window(n_fft, dtype=torch.float64, device=x.device)
    # zero-padded ends, as librosa's stft: a mirrored end is a tone running backwards, whose phase the vocoder
    # cannot advance, and the frames over it overlap-added into a spike of up to 1.9x the clip's peak in its last
    # few ms (QA36: 220 Hz at 48 kHz shifted 3 semitones ended at 0.77 for 0.5); zeros fade the last frame instead
    D = torch.stft(x.double(), n_fft, hop, window=win, center=True, pad_mode="constant", return_complex=True)
    frames = D.shape[-1]
    rate = T / length  # > 1: shorter
    n_out = int(math.ceil(frames / rate))
    D = torch.nn.functional.pad(D, (0, 2))
    F_ = D.shape[-2]
    advance = torch.linspace(0, math.pi * hop, F_, dtype=torch.float64, device=x.device)[None, :, None]
    out = D.new_empty((*D.shape[:-1], n_out))
    carry = torch.angle(D[..., :1])  # the phase before the block's first output frame
    for b0 in range(0, n_out, STRETCH_BLOCK):  # blocks of output frames: memory O(block), not O(clip)
        steps = torch.arange(b0, min(n_out, b0 + STRETCH_BLOCK), dtype=torch.float64, device=x.device) * rate
        i = steps.floor().long()
        alpha = (steps - i)[None, None]
        c0, c1 = D[..., i], D[..., i + 1]
        mag = (1 - alpha) * c0.abs() + alpha * c1.abs()
        dphase = torch.angle(c1) - torch.angle(c0) - advance
        inc = advance + dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi))
        acc = torch.cumsum(inc, dim=-1)
        phase = carry + acc - inc  # phase before each output frame's step
        carry = torch.remainder(carry + acc[..., -1:], 2 * math.pi)
        # identity phase locking (Laroche & Dolson 1999): each bin keeps its phase relative to the spectral peak
        # it belongs to (the nearer local maximum of the magnitude), and only peaks advance on their own; without
        # it a tone spread over several bins drifts out of phase across them (a 440 Hz tone stretched by 1.25 lost
        # 5.6 dB, librosa's own phase_vocoder on a reflect-padded STFT as well)
        k = torch.arange(F_, device=x.device)[None, :, None].expand_as(mag)
        edge = torch.full_like(mag[..., :1, :], -1.0)
        left, right = torch.cat([edge, mag[..., :-1, :]], dim=-2), torch.cat([mag[..., 1:, :], edge], dim=-2)
        peak = (mag >= left) & (mag > right) & (mag > 0)
        before = torch.cummax(torch.where(peak, k, -1), dim=-2).values
        after = torch.flip(torch.cummin(torch.flip(torch.where(peak, k, F_), [-2]), dim=-2).values, [-2])
        owner = torch.where((before < 0) | ((after < F_) & (after - k < k - before)), after, before)
        owner = torch.where((owner < 0) | (owner >= F_), k, owner)
        ref = torch.angle(torch.where(alpha < 0.5, c0, c1))
        out[..., b0:b0 + len(steps)] = torch.polar(mag, phase.gather(-2, owner) + ref - ref.gather(-2, owner))
    return torch.istft(out, n_fft, hop, window=win, center=True, length=length).to(x.dtype)


#: :func:`pitch_shift`'s frequency ratio is ``up / down`` with the smaller of the two ``PITCH_GRID`` (within
#: 0.06%, one cent, of ``2 ** (semitones / 12)``): a small ratio of integers keeps the resample a cached polyphase product
#: (10 s at 16 kHz: ~0.5 s on one core, where the exact ratio of the two lengths took up to 4 s)
PITCH_GRID = 960


def pitch_ratio(semitones: float) -> tuple[int, int]:
    """The frequency ratio :func:`pitch_shift` applies, as ``(up, down)`` integers (reduced by their gcd).

    Example:
        >>> pitch_ratio(12.0), pitch_ratio(0.0)
        ((2, 1), (1, 1))
    """
    r = 2.0 ** (semitones / 12.0)
    up, down = (int(round(PITCH_GRID * r)), PITCH_GRID) if r >= 1 else (PITCH_GRID, int(round(PITCH_GRID / r)))
    g = math.gcd(up, down)
    return up // g, down // g


def pitch_shift(x: torch.Tensor, sr: int, semitones: float) -> torch.Tensor:
    """(C, T) audio with every frequency multiplied by ``2 ** (semitones / 12)`` (:func:`pitch_ratio`: to one
    cent), the duration kept (librosa's ``effects.pitch_shift``, which audiomentations' PitchShift calls):
    :func:`time_stretch` to ``L = ceil(T x up / down)`` samples, then :func:`~mmdata.augment.audio.resample`
    by ``down / up``, cut to ``T``.

    Example:
        >>> x = torch.sin(2 * math.pi * 440 * torch.arange(8000) / 8000)[None]
        >>> pitch_shift(x, 8000, 2.0).shape
        torch.Size([1, 8000])
    """
    T = x.shape[-1]
    up, down = pitch_ratio(semitones)
    if T < 2 or up == down:
        return x.clone()
    L = -(-T * up // down)
    return resample(time_stretch(x, sr, L).contiguous(), up, down)[..., :T].contiguous()


class PitchShift(AudioOp):
    """Shift the pitch by ``semitones`` drawn from a range, keeping the duration: a phase vocoder (with
    identity phase locking) stretches the clip by the pitch ratio, then a resample brings it back to its
    length — librosa's ``pitch_shift``, which audiomentations' PitchShift calls. Like any phase vocoder it
    smears transients a little, and noise-like sound comes out 2-3 dB quieter (white noise, -4 to +4
    semitones; shifting up also drops what moves above half the rate); tones keep their level, to the
    clip's ends (the vocoder's STFT is zero-padded, as librosa's: a mirrored end overshot there, QA36).
    The frequency ratio is ``2 ** (semitones / 12)`` to within one cent (a ratio of integers, the smaller 960). Kernels agree
    to float rounding; so do the results at different torch thread counts (the resample's matrix product:
    ``num_workers=0`` on a machine of 4+ cores vs DataLoader workers, README)."""

    section, name = "audio", "pitch_shift"
    needs_rate = True
    keeps_layout = True
    PARAMS = {"semitones": Param("range", [-2.0, 2.0], -24.0, 24.0, doc="pitch shift in semitones, drawn from [min, max]")}
    tolerance = "allclose, atol 1e-5"

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"semitones": float(rng.uniform(*self.semitones))}

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        return sample.with_fields(audio=pitch_shift(sample["audio"], int(sample.sample_rate), params["semitones"]))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        sr = int(batch.sample_rate)
        return _per_row(batch, params, lambda r, p: pitch_shift(r, sr, p["semitones"]))


# -- background_noise ----------------------------------------------------------------------------------------
def loop_crop(y: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """``length`` samples of (C, N) ``y`` from ``start``, looping back to its start as often as needed."""
    N = y.shape[-1]
    idx = (torch.arange(length, device=y.device) + start) % N
    return y[..., idx]


def mix_at_snr(x: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``x + g * noise`` with ``g`` such that ``10 log10(mean(x^2) / mean((g noise)^2)) = snr_db`` (powers over
    all channels, in float64); a silent clip or silent noise leaves ``x`` as it is.

    Example:
        >>> x, n = torch.ones(1, 100), torch.full((1, 100), 3.0)
        >>> round(float((mix_at_snr(x, n, 20.0) - x).pow(2).mean()), 6)
        0.01
    """
    ps = float(x.double().pow(2).mean()) if x.numel() else 0.0
    pn = float(noise.double().pow(2).mean()) if noise.numel() else 0.0
    if ps == 0.0 or pn == 0.0:
        return x.clone()
    g = math.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (x.double() + g * noise.double()).to(x.dtype)


class _FileOp(AudioOp):
    """Ops that read files from a recipe's ``path`` (the rules: the module docstring)."""

    name = ""
    _root: Path | None = None
    _folder: Path | None = None
    _files: tuple[str, ...] = ()

    def _resolve(self, where: str) -> None:
        if self.path:
            self._root, self._folder, self._files = resolve_files(self.path, f"{where}.path")

    def _load(self, name: str, rate: int, channels: int) -> torch.Tensor:
        if self._folder is None or name not in self._files:
            raise RecipeError(f"{self.where}: file {name!r} is not among the {len(self._files)} files of path "
                              f"{self.path!r} (params from another folder?)")
        return _fit_channels(load_file(self._folder, name, rate, f"{self.where}.path", self._root), channels)


class BackgroundNoise(_FileOp):
    """Add a noise file drawn from the folder ``path`` (e.g. MUSAN's ``noise/``) at an SNR drawn from
    [``min_snr_db``, ``max_snr_db``] (powers over the clip, as audiomentations' AddBackgroundNoise): the file is
    decoded, resampled to the clip's rate, mixed to mono unless its channels match the clip's, and looped /
    cropped to the clip's length from an offset the plan draws (a fraction of the file: drawing reads no
    file). ``path`` is relative to the working directory (no ``..``; links out of it refused), or absolute
    inside a root allowed from Python (``mmdata.augment.audio_env.allow_root``); its files are listed once,
    sorted. Kernels agree to float rounding."""

    section, name = "audio", "background_noise"
    needs_rate = True
    # keeps_layout stays False, which costs nothing (on the plan's 'meta' batch the kernel only copies: _per_row);
    # tests/augment/test_plan_ahead.py builds every keeps_layout op with its defaults, and `path` has none
    PARAMS = {"path": Param("str", "", doc="folder of noise files (relative to the working directory; see above)"),
              "min_snr_db": Param("float", 3.0, -40.0, 100.0, doc="lowest signal-to-noise ratio in dB"),
              "max_snr_db": Param("float", 30.0, -40.0, 100.0, doc="highest signal-to-noise ratio in dB")}
    tolerance = "allclose, atol 1e-5"

    def validate(self, where: str) -> None:
        if self.min_snr_db > self.max_snr_db:
            raise RecipeError(f"{where}: min_snr_db {self.min_snr_db} > max_snr_db {self.max_snr_db}")
        if not self.path:
            raise RecipeError(f"{where}.path: give a folder of noise files (e.g. path: musan/noise)")
        self._resolve(where)

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"file": self._files[int(rng.integers(0, len(self._files)))], "offset": float(rng.random()),
                "snr_db": float(rng.uniform(self.min_snr_db, self.max_snr_db))}

    def _apply(self, x: torch.Tensor, sr: int, p: dict[str, Any]) -> torch.Tensor:
        noise = self._load(p["file"], sr, x.shape[0])
        if noise.shape[-1] == 0 or x.shape[-1] == 0:
            return x.clone()
        start = min(noise.shape[-1] - 1, int(p["offset"] * noise.shape[-1]))
        return mix_at_snr(x, loop_crop(noise, start, x.shape[-1]).to(x.device), p["snr_db"])

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        return sample.with_fields(audio=self._apply(sample["audio"], int(sample.sample_rate), params))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        sr = int(batch.sample_rate)
        return _per_row(batch, params, lambda r, p: self._apply(r, sr, p))


# -- reverb --------------------------------------------------------------------------------------------------
def synthetic_ir(sr: int, rt60: float, seed: int) -> torch.Tensor:
    """An impulse response (1, n) of ``rt60`` seconds (``n = ceil(rt60 x sr)``): a direct path of 1, then
    Gaussian noise (float64, CPU generator seeded by ``seed``) decaying by 60 dB over ``rt60``."""
    n = max(1, int(math.ceil(rt60 * sr)))
    g = torch.Generator().manual_seed(int(seed))
    h = torch.randn(n, generator=g, dtype=torch.float64)
    h = h * torch.exp(-math.log(1000.0) * torch.arange(n, dtype=torch.float64) / (rt60 * sr))
    h[0] = 1.0
    return h[None]


#: the most :func:`convolve_ir` amplifies, over what the impulse response scaled to unit energy gives: scaling
#: the wet clip to the dry one's RMS restores a tone in a room's notch (up to 20 dB), but a wet clip whose energy
#: is nearly all in the dropped tail (a DC clip through a differentiator) is not blown up to full scale
REVERB_MAX_GAIN = 10.0
#: a wet clip holding less than this share of the whole convolution's energy (-60 dB, the level that defines
#: rt60) is no reverberated clip: the IR's sound falls past the clip's end, and what is left inside is FFT
#: round-off, which scaling to the dry RMS blew up to noise at full scale (QA29). A synthetic IR (its direct path
#: at 0) keeps far more: about 8e-5 for 16 samples of noise with a 10 s ``rt60`` at 48 kHz.
REVERB_MIN_SHARE = 1e-6


def ir_usable(ir: torch.Tensor) -> bool:
    """Whether an impulse response can reverberate a clip: not empty, finite, not all zero.

    Example:
        >>> ir_usable(torch.tensor([[0.0, 1.0]])), ir_usable(torch.zeros(1, 8))
        (True, False)
    """
    return ir.numel() > 0 and bool(torch.isfinite(ir).all()) and bool(ir.abs().amax() > 0)


def convolve_ir(x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor | None:
    """(C, T) audio convolved with an impulse response (1 or C, n) (FFT, float64), cut to the clip's length
    (the tail past the end dropped; a pre-delay is kept, as in audiomentations' ApplyImpulseResponse and
    torch-audiomentations' default), then scaled to the dry clip's RMS with a gain of at most
    :data:`REVERB_MAX_GAIN` over the IR scaled to unit energy (a silent clip stays silent).

    Returns None where the IR gives the clip no reverberated sound: it is not usable (:func:`ir_usable`), or
    the clip holds less than :data:`REVERB_MIN_SHARE` of the convolution's energy (the IR's sound starts past
    the clip's end). :class:`Reverb` then leaves the clip dry, warns and counts.

    Example:
        >>> x = torch.tensor([[0.0, 1.0, 0.0, -1.0]])
        >>> convolve_ir(x, torch.tensor([[0.0, 2.0]])).round(decimals=4)  # a pre-delay of one sample, kept
        tensor([[0.0000, 0.0000, 1.4142, 0.0000]])
        >>> convolve_ir(x, torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])) is None  # its sound starts past the end
        True
    """
    T = x.shape[-1]
    if T == 0:
        return x.clone()
    if not ir_usable(ir):
        return None
    h = ir.to(device=x.device, dtype=torch.float64)
    n = T + h.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    whole = torch.fft.irfft(torch.fft.rfft(x.double(), size) * torch.fft.rfft(h, size), size)[..., :n]
    y = whole[..., :T]
    dry, wet = x.double().pow(2).mean().sqrt(), y.pow(2).mean().sqrt()
    if not float(wet) > 0:  # a silent clip (or one the IR's sound misses entirely)
        return y.to(x.dtype) if float(whole.abs().amax()) == 0 else None
    if float(y.pow(2).sum()) < REVERB_MIN_SHARE * float(whole.pow(2).sum()):
        return None
    y = y * torch.minimum(dry / wet, REVERB_MAX_GAIN / h.pow(2).sum().sqrt())
    return y.to(x.dtype)


class Reverb(_FileOp):
    """Room reverberation: convolve with an impulse response drawn from the folder ``path`` (same rules as
    ``background_noise``: resampled to the clip's rate, mixed to mono unless its channels match), or, with no
    ``path``, a synthetic one — Gaussian noise decaying 60 dB over an ``rt60`` drawn from its range, after a
    direct path of 1. The output keeps the clip's length (the tail past its end is dropped; an IR's pre-delay
    is kept, as audiomentations' ApplyImpulseResponse does) and is scaled to the dry clip's RMS, with a gain of
    at most 10 over the IR scaled to unit energy. An IR file that is silent (or not finite), or whose sound
    starts past a clip's end (under a millionth of the wet energy inside the clip), leaves that clip as it is,
    warned once per file naming it and counted in the op's ``left_dry`` (file -> clips). Kernels agree to
    float rounding."""

    section, name = "audio", "reverb"
    needs_rate = True
    keeps_layout = True
    PARAMS = {"path": Param("str", "", doc="folder of impulse responses (relative to the working directory); "
                                           "empty: synthetic"),
              "rt60": Param("range", [0.2, 0.8], 0.01, 10.0, doc="synthetic decay time in seconds (60 dB), drawn from [min, max]")}
    tolerance = "allclose, atol 1e-5"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: IR file -> clips this op left unchanged because that file gives them no reverberated sound
        self.left_dry: dict[str, int] = {}

    def validate(self, where: str) -> None:
        self._resolve(where)

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if self._files:
            return {"file": self._files[int(rng.integers(0, len(self._files)))]}
        return {"rt60": float(rng.uniform(*self.rt60)), "seed": int(rng.integers(0, 2**62))}

    def _apply(self, x: torch.Tensor, sr: int, p: dict[str, Any]) -> torch.Tensor:
        ir = self._load(p["file"], sr, x.shape[0]) if "file" in p else synthetic_ir(sr, p["rt60"], p["seed"])
        y = convolve_ir(x, ir)
        if y is None:
            self._left_dry(p.get("file", "(synthetic)"), "silent" if not ir_usable(ir) else "late", x.shape[-1] / sr)
            return x.clone()
        return y

    def _left_dry(self, name: str, why: str, seconds: float) -> None:
        self.left_dry[name] = self.left_dry.get(name, 0) + 1
        key = (str(self._folder), name, why)
        if key not in _DRY_WARNED:  # once per file, reason and process, as the loader's workers each hold a copy
            _DRY_WARNED.add(key)
            what = f"impulse response {str(self._folder / name)!r}" if self._files else "the synthetic impulse response"
            said = ("is silent (or not finite)" if why == "silent" else
                    f"has its sound start past the end of a {seconds:.3g} s clip (cut its pre-delay)")
            warnings.warn(f"{self.where} (reverb): {what} {said}: clips drawing it are left unchanged, counted in "
                          "the op's left_dry; remove it from the folder. Said once per file", UserWarning,
                          stacklevel=2)

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        return sample.with_fields(audio=self._apply(sample["audio"], int(sample.sample_rate), params))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        sr = int(batch.sample_rate)
        return _per_row(batch, params, lambda r, p: self._apply(r, sr, p))
