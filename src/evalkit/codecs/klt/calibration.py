"""Calibration audio for the ``usage`` and ``data`` estimators.

A calibration folder is read recursively (``.wav``, ``.flac``, ``.ogg``). A file that cannot be decoded, is
empty, non-finite, silent or shorter than one codec frame is skipped with a warning (logger
``evalkit.codecs.klt.calibration``); a folder with no usable file at all raises :class:`CalibrationError`.
:func:`evalkit.codecs.klt.codec.check_calibration` runs that check on a codec before any audio is coded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from evalkit import audio as audio_lib
from evalkit._lazy import torch
from evalkit.codecs.spec import SpecError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class CalibrationError(SpecError):
    """A calibration folder holds no usable audio; the one-line message names the folder."""


def calibration_files(folder: str | Path) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted)."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def calibration_clips(folder: str | Path, sample_rate: int, channels: int, seconds: float,
                      min_samples: int = 1) -> Iterator[torch.Tensor]:
    """Calibration clips ``[1, channels, samples]`` (float32, at ``sample_rate``), ``seconds`` of them in all.

    Files are resampled with the project's resampler, mixed to mono for a mono codec and duplicated for a
    stereo codec given a mono file. Unusable files are skipped with a warning.

    Raises:
        CalibrationError: no file in ``folder`` gave usable audio (raised when the iteration ends).
    """
    files = calibration_files(folder)
    budget, used = seconds, 0
    for path in files:
        if budget <= 0:
            break
        try:
            clip = audio_lib.load(path, channel_policy="mono" if channels == 1 else "per_channel")
        except audio_lib.AudioError as exc:
            log.warning("klt calibration: skipped %s", exc)
            continue
        x = audio_lib.resample(clip.samples, clip.sample_rate, sample_rate)
        if x.shape[1] < min_samples:
            log.warning("klt calibration: skipped %s: shorter than one codec frame (%d samples at %d Hz)",
                        path, min_samples, sample_rate)
            continue
        x = x[:, : int(np.ceil(budget * sample_rate))]
        if x.shape[1] < min_samples:  # the budget's last sliver: too short to code
            break
        if channels == 2 and x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        budget -= x.shape[1] / sample_rate
        used += 1
        yield torch.from_numpy(np.ascontiguousarray(x[:channels]))[None]
    if not used:
        raise CalibrationError(f"klt: calibration folder {folder} has no usable audio ({len(files)} "
                               f"{'/'.join(AUDIO_SUFFIXES)} files; none readable, non-silent and one frame long)")


def gather(clips: Iterator[torch.Tensor], encode_with: Callable, quantize: Callable, n_codebooks: int,
           with_latents: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the base codec over ``clips`` and collect its codes (and encoder latents).

    Args:
        clips: from :func:`calibration_clips`.
        encode_with: the base codec's ``encode_with``.
        quantize: the base codec's ``quantize``.
        n_codebooks: leading codebooks to keep.
        with_latents: also return the latents.

    Returns:
        codes ``[n_codebooks, frames]`` and latents ``[frames, D]`` (or ``None``), on the CPU.
    """
    codes, latents = [], []

    def capture(latent: torch.Tensor) -> torch.Tensor:
        out = quantize(latent)
        codes.append(out[:, :n_codebooks].transpose(0, 1).reshape(n_codebooks, -1).cpu())
        if with_latents:
            latents.append(latent.detach().transpose(1, 2).reshape(-1, latent.shape[1]).cpu())
        return out

    with torch.inference_mode():
        for wav in clips:
            encode_with(wav, capture)
    return torch.cat(codes, dim=1), torch.cat(latents) if with_latents else None
