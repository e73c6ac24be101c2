"""Library-backed perceptual metrics: PESQ (ITU-T P.862), STOI/ESTOI, ViSQOL v3.

Each wraps its reference implementation unchanged, on signals evalkit prepared (resampled with soxr to the
metric's rate, mono). PESQ and ViSQOL align the pair themselves (P.862's time alignment, ViSQOL's global and
patch alignment), so they get both whole signals, neither shifted nor trimmed by evalkit: on files at their
rate their values equal the libraries' own calls on those files. STOI gets the pair aligned and trimmed.
Every library failure becomes NaN with the library's reason: no sentinel values (PESQ's 1.0 or STOI's 1e-5
fallbacks are reported as failures).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from evalkit.logs import captured_stderr
from evalkit.metrics.registry import ChannelMode, Metric, MetricFailure, MetricInfo, MetricKind
from evalkit.metrics.speech import SPEECH
from evalkit.native_memory import heap_allocations

log = logging.getLogger(__name__)

PESQ_MIN_S = 0.85


class Pesq(Metric):
    """PESQ MOS-LQO: wideband (P.862.2) at 16 kHz, or narrowband (P.862 with the P.862.1 mapping) at 16 kHz
    when the pair reaches 16 kHz and at 8 kHz otherwise (P.862 defines narrowband at both rates; published
    narrowband numbers on 16 kHz data call ``pesq(16000, ref, deg, "nb")``)."""

    def __init__(self, mode: str):
        wide = mode == "wb"
        self.mode = mode
        self.info = MetricInfo(
            name=f"pesq_{mode}", variant="wideband P.862.2, 16 kHz" if wide else "narrowband P.862.1, 16 or 8 kHz",
            kind=MetricKind.REFERENCE, unit="MOS-LQO", higher_is_better=True, sample_rate=16_000,
            min_duration_s=PESQ_MIN_S, channels=ChannelMode.MONO, library="pesq",
            paper="ITU-T P.862 (2001), P.862.2 (2007)", description="perceptual evaluation of speech quality",
            value_range=(1.0, 4.64 if wide else 4.55), version="2", aligns_internally=True,
            fallback_rates=() if wide else (8_000,), applies_to=SPEECH, uncategorised=True,
            display_name="PESQ-WB" if wide else "PESQ-NB")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any],
                rate: int | None = None) -> float:
        import pesq

        ref, deg = reference[0].astype(np.float64), degraded[0].astype(np.float64)
        if not np.any(ref):
            raise MetricFailure("reference is silent")
        try:
            with heap_allocations():  # pesq's C code crashes when its buffers are mapped on their own
                return float(pesq.pesq(rate or self.info.sample_rate, ref, deg, self.mode))
        except (pesq.PesqError, ValueError) as exc:  # ValueError: pesq's own NaN on silent degraded input
            raise MetricFailure(f"pesq: {type(exc).__name__}: {exc}") from exc


class Stoi(Metric):
    """STOI (Taal et al., 2011) or ESTOI (Jensen & Taal, 2016) at pystoi's internal 10 kHz rate."""

    imports = ("pystoi",)  # with scipy.signal: half a second

    def __init__(self, extended: bool):
        self.extended = extended
        name = "estoi" if extended else "stoi"
        self.info = MetricInfo(
            name=name, variant="extended STOI" if extended else "classic STOI", kind=MetricKind.REFERENCE,
            unit="correlation (0-1)", higher_is_better=True, sample_rate=10_000, min_duration_s=0.384,
            channels=ChannelMode.MONO, library="pystoi",
            paper="Jensen & Taal, IEEE/ACM TASLP 2016" if extended else "Taal et al., IEEE TASLP 2011",
            description="short-time objective intelligibility", value_range=(None, 1.0), applies_to=SPEECH,
            uncategorised=True, version="2",  # 2: delay window grows with the item; misaligned pairs NaN
            display_name="ESTOI" if extended else "STOI")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        from pystoi import stoi

        if not np.any(reference):
            raise MetricFailure("reference is silent")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi(reference[0].astype(np.float64), degraded[0].astype(np.float64), 10_000,
                         extended=self.extended)
        for warning in caught:
            if "Not enough STFT frames" in str(warning.message):  # pystoi then returns a 1e-5 sentinel
                raise MetricFailure(f"pystoi: {warning.message}")
        return float(value)


@lru_cache(maxsize=2)
def _visqol_api(mode: str):
    from visqol import VisqolApi

    api = VisqolApi()
    with captured_stderr(log):  # TFLite announces its XNNPACK delegate on stderr
        api.create(mode=mode)  # speech mode uses the lattice model (ai-edge-litert), as C++ ViSQOL's default
    return api


MAX_CACHED_PATCHES = 2048  # per item and metric: a patch's spectrogram is a few kB


class _ReferenceSpectrogramBuilder:
    """Stands in for visqol-python's gammatone spectrogram builder during one call, with ``cache`` (the item's
    reference analysis cache, shared by its variants): the whole reference's spectrogram (the same array for every
    variant) is built once, and so is each patch whose samples an earlier variant's call had built (the reference's
    patches, when the variants align alike; keyed by the samples' digest). A spectrogram is a pure function of the
    samples, the rate and the window, so the values are the same as without it."""

    def __init__(self, builder, reference: np.ndarray, cache: dict[Any, Any]):
        self.builder, self.reference, self.cache = builder, reference, cache

    def _is_reference(self, data: np.ndarray) -> bool:
        return (data.shape == self.reference.shape and data.dtype == self.reference.dtype
                and data.__array_interface__["data"][0] == self.reference.__array_interface__["data"][0])

    def build(self, signal, window):
        data = signal.data
        settings = (signal.sample_rate, window.size, window.overlap)
        if self._is_reference(data):
            kept, key = self.cache, ("spectrogram", *settings)
        else:
            kept = self.cache.setdefault("patches", {})
            key = (*settings, data.dtype.str, len(data),
                   hashlib.blake2b(np.ascontiguousarray(data).view(np.uint8), digest_size=16).digest())
        built = kept.get(key)
        if built is None:
            built = self.builder.build(signal, window)
            if kept is self.cache or len(kept) < MAX_CACHED_PATCHES:
                kept[key] = built
        return type(built)(built.data.copy(), center_freq_bands=built.center_freq_bands.copy())  # callers own theirs

    def __getattr__(self, name: str):
        return getattr(self.builder, name)


@contextmanager
def _reference_spectrogram_reused(api, reference: np.ndarray, cache: dict[Any, Any]) -> Iterator[None]:
    """Let ``api`` (a ``VisqolApi``) reuse the reference's spectrograms kept in ``cache`` for the block (see
    :class:`_ReferenceSpectrogramBuilder`); a visqol-python without the builder where it is expected runs
    unchanged."""
    manager = getattr(api, "_manager", None)
    builder = getattr(manager, "spect_builder", None)
    if builder is None or isinstance(builder, _ReferenceSpectrogramBuilder):
        yield
        return
    manager.spect_builder = _ReferenceSpectrogramBuilder(builder, reference, cache)
    try:
        yield
    finally:
        manager.spect_builder = builder


class Visqol(Metric):
    """ViSQOL v3 MOS-LQO through visqol-python: audio mode at 48 kHz, speech mode at 16 kHz."""

    imports = ("visqol",)  # with scipy.signal and numba: over half a second

    def __init__(self, mode: str):
        self.mode = mode
        audio = mode == "audio"
        self.info = MetricInfo(
            name=f"visqol_{mode}", variant="audio mode, 48 kHz, SVR" if audio else "speech mode, 16 kHz, lattice",
            kind=MetricKind.REFERENCE, unit="MOS-LQO", higher_is_better=True,
            sample_rate=48_000 if audio else 16_000, min_duration_s=0.5, channels=ChannelMode.MONO,
            library="visqol-python", paper="Chinen et al., ViSQOL v3, QoMEX 2020",
            description="virtual speech/audio quality objective listener (order: reference, degraded)",
            value_range=(1.0, 5.0), version="2", aligns_internally=True,
            applies_to=None if audio else SPEECH, uncategorised=not audio,
            display_name="ViSQOL audio" if audio else "ViSQOL speech")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        if not np.any(reference):
            raise MetricFailure("reference is silent")
        if "reference" not in cache:  # the item's other variants are scored against the same array
            cache["reference"] = reference[0].astype(np.float64)
        api = _visqol_api(self.mode)
        try:  # ViSQOL is not symmetric: the reference comes first
            with _reference_spectrogram_reused(api, cache["reference"], cache):
                result = api.measure_from_arrays(cache["reference"], degraded[0].astype(np.float64),
                                                 self.info.sample_rate)
        except (ValueError, RuntimeError, IndexError, ZeroDivisionError, FloatingPointError) as exc:
            raise MetricFailure(f"visqol: {type(exc).__name__}: {exc}") from exc
        if not np.isfinite(result.moslqo):
            raise MetricFailure("visqol returned a non-finite score")
        return float(result.moslqo)
