"""Objective metrics behind one registry (metrics never import codecs).

>>> sorted(PAIR_METRICS)[:3]
['cer', 'dnsmos_bak', 'dnsmos_ovrl']
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from evalkit.metrics import codebook
from evalkit.metrics.asr import DeltaWer, TranscriptError
from evalkit.metrics.dnsmos import Dnsmos
from evalkit.metrics.intrusive import Pesq, Stoi, Visqol
from evalkit.metrics.plugins import MetricPlugin, load_entry_points, load_metric_files
from evalkit.metrics.prepare import Degraded, Preparation, Reference
from evalkit.metrics.registry import (
    InfoView,
    Metric,
    MetricFailure,
    MetricInfo,
    MetricKind,
    MetricRegistry,
    UnknownMetric,
    build_registry,
)
from evalkit.metrics.score import MetricResult, score_pair
from evalkit.metrics.sisdr import SiSdr
from evalkit.metrics.speaker import SpeakerSimilarity
from evalkit.metrics.spectral import MelDistance, StftDistance

# Explicit registration of evalkit's own metrics; others come in as plugins (README: "How to add a metric").
CORPUS_METRICS: dict[str, MetricInfo] = build_registry([codebook.INFO])
PAIR_METRICS: MetricRegistry = MetricRegistry([
    SiSdr(), MelDistance(44_100), MelDistance(22_050, "mel_distance_22k"), StftDistance(),
    Visqol("audio"), Visqol("speech"), Pesq("wb"), Pesq("nb"), Stoi(extended=False), Stoi(extended=True),
    # speech metrics (models inside their wheels; applicable to items of manifest category "speech")
    Dnsmos("ovrl"), Dnsmos("sig"), Dnsmos("bak"), Dnsmos("p808"), SpeakerSimilarity(),
    TranscriptError("word"), TranscriptError("char"), DeltaWer(),
], load_entry_points, reserved=CORPUS_METRICS)
ALL_INFO: InfoView = InfoView(PAIR_METRICS, CORPUS_METRICS)
APPLICABLE_RATE_RATIO = 0.9


def load_metric_plugins(paths: Iterable[str | Path]) -> None:
    """Register the ``METRICS`` of each plugin file (files that define only codec ``FAMILIES`` add none).

    Raises:
        PluginError: one line naming the file and the problem.
    """
    load_metric_files(paths, PAIR_METRICS)


def get_metric(name: str) -> Metric:
    try:
        return PAIR_METRICS[name]
    except KeyError:
        if name in CORPUS_METRICS:
            raise UnknownMetric(f"{name!r} is a corpus metric computed by `evalkit run`, not per pair") from None
        raise UnknownMetric(f"unknown metric {name!r}; valid: {', '.join(PAIR_METRICS)}") from None


def get_metrics(names: Iterable[str]) -> list[Metric]:
    return [get_metric(n) for n in names]


def applicable_metrics(*sample_rates: int, category: str | None = None) -> list[Metric]:
    """Metrics whose native rate (the lowest, for metrics with fallback rates) the inputs can feed without large
    upsampling (rate ≥ 0.9 × native): 44.1 kHz input gets ViSQOL audio (48 kHz); 16 kHz input gets neither
    ViSQOL audio nor 44.1 kHz mel; 8 kHz input still gets narrowband PESQ. Metrics meant for one kind of content
    (``info.applies_to``: speech) need that ``category``; the speech-quality ones (PESQ, STOI, ViSQOL speech)
    also run when the category is unknown (``None`` or empty), never on another category."""
    lowest = min(sample_rates)
    return [m for m in PAIR_METRICS.values()
            if (m.info.sample_rate is None or lowest >= APPLICABLE_RATE_RATIO * min(m.info.rates))
            and m.info.applies(category)]


__all__ = ["ALL_INFO", "CORPUS_METRICS", "PAIR_METRICS", "Degraded", "Metric", "MetricFailure", "MetricInfo",
           "MetricKind", "MetricPlugin",
           "MetricResult", "Preparation", "Reference", "UnknownMetric", "applicable_metrics", "get_metric",
           "get_metrics", "load_metric_plugins", "score_pair"]
