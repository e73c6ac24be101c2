"""Speaker similarity: cosine of GE2E speaker embeddings of the reference and the decoded speech (Resemblyzer).

Resemblyzer's pretrained encoder (``pretrained.pt``, 17 MB, inside its wheel, Apache-2.0) maps 16 kHz speech to a
256-d embedding: its own preprocessing (quiet input raised to -30 dBFS, long pauses removed with
webrtcvad), 1.6 s windows at 1.3 per second, then the L2-normalised mean of the window embeddings. The
embeddings are non-negative (ReLU), so the cosine lies in [0, 1]; 1 = the same voice characteristics.
The reference's embedding is computed once per item (metric cache), a degraded signal's once per unit.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from evalkit.metrics.registry import ChannelMode, Metric, MetricFailure, MetricInfo, MetricKind
from evalkit.metrics.speech import SPEECH, SPEECH_RATE, SignalMemo, model_threads, mono, torch_threads

MIN_VOICED_S = 0.3  # less voice than this after Resemblyzer's pause removal: no embedding
_MEMO = SignalMemo()


def _resemblyzer() -> Any:
    with warnings.catch_warnings():  # webrtcvad imports pkg_resources, which warns that it is deprecated
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer
    return resemblyzer


@lru_cache(maxsize=1)
def _encoder() -> Any:
    """Resemblyzer's pretrained voice encoder on the CPU (loaded once per process)."""
    return _resemblyzer().VoiceEncoder("cpu", verbose=False)


def embedding(signal: np.ndarray) -> np.ndarray:
    """Resemblyzer's utterance embedding ``[256]`` (unit norm) of a 16 kHz mono float32 signal.

    Raises:
        MetricFailure: webrtcvad finds less than ``MIN_VOICED_S`` of voice.
    """
    def analyse(x: np.ndarray) -> np.ndarray:
        wav = _resemblyzer().preprocess_wav(x)
        if len(wav) < MIN_VOICED_S * SPEECH_RATE:
            raise MetricFailure(f"webrtcvad found {len(wav) / SPEECH_RATE:.2f} s of voice, "
                                f"need {MIN_VOICED_S} s for a speaker embedding")
        with torch_threads(model_threads()):
            return _encoder().embed_utterance(wav)

    return _MEMO.get(signal, analyse)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors.

    >>> cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    0.7071067811865475
    """
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class SpeakerSimilarity(Metric):
    """Cosine similarity of the reference's and the decoded signal's speaker embeddings."""

    imports = ("torch",)

    def __init__(self) -> None:
        self.info = MetricInfo(
            name="speaker_similarity", variant="Resemblyzer GE2E embeddings (256-d), 16 kHz, CPU",
            kind=MetricKind.REFERENCE, unit="cosine", higher_is_better=True, sample_rate=SPEECH_RATE,
            min_duration_s=0.5, channels=ChannelMode.MONO, library="resemblyzer",
            paper="Wan, Wang, Papir & Lopez Moreno, Generalized end-to-end loss for speaker verification, "
                  "ICASSP 2018",
            description="cosine of speaker embeddings (reference vs decoded); needs >= 0.3 s of voice",
            value_range=(0.0, 1.0), aligns_internally=True, applies_to=SPEECH,
            dependencies=("torch", "librosa", "webrtcvad"),
            display_name="Speaker similarity")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        if "embedding" not in cache:  # once per item: the whole reference is the same for every variant
            try:
                cache["embedding"] = embedding(mono(reference, "reference"))
            except MetricFailure as exc:
                cache["embedding"] = MetricFailure(f"reference: {exc}")
        if isinstance(cache["embedding"], MetricFailure):
            raise cache["embedding"]
        return cosine(cache["embedding"], embedding(mono(degraded, "degraded")))
