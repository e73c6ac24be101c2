"""Codecs applied outside a run, for readers that must not import ``codecs/``: a listening test's low-pass
anchor built from the reference when the run has none, and the report's Opus previews of audio examples."""

from __future__ import annotations

import numpy as np

from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.anchors import lowpass
from evalkit.codecs.records import VariantRole, describe


def anchor_from_reference(samples: np.ndarray, spec: str, sample_rate: int) -> np.ndarray:
    """The low-pass anchor ``spec`` (``lowpass?cutoff_hz=3500``) of ``[channels, samples]`` at ``sample_rate``:
    the filter the run's anchor units apply, same length and dtype.

    Raises:
        ValueError: ``spec`` is not a low-pass anchor.
    """
    record = describe(spec)
    if record.role is not VariantRole.ANCHOR or record.anchor_cutoff_hz is None:
        raise ValueError(f"{spec}: not a low-pass anchor")
    return lowpass(samples, record.anchor_cutoff_hz, sample_rate)


def opus_packets(x: np.ndarray, sample_rate: int, bitrate_kbps: float) -> bytes:
    """``[channels, samples]`` (float32 in [-1, 1], at a rate Opus takes) as an Ogg Opus stream."""
    codec = build_codec(parse_spec(f"opus?bitrate_kbps={bitrate_kbps:g}")).load()
    return codec.encode(x, sample_rate).data
