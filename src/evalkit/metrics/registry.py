"""Metric metadata and the explicit metric registry.

Every metric is described once by a frozen :class:`MetricInfo` (unit, direction, native rate, minimum duration,
implementing library...). Registration is an explicit list in :mod:`evalkit.metrics`; unknown or duplicate
names raise with the valid ones listed.
"""

from __future__ import annotations

import enum
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


class MetricKind(enum.StrEnum):
    REFERENCE = "reference"  # compares a degraded signal with its reference
    NO_REFERENCE = "no-reference"
    CODES = "codes"  # computed from discrete codes
    CORPUS = "corpus"  # computed over a whole evaluation set, not per item


class ChannelMode(enum.StrEnum):
    MONO = "mono"  # both signals are averaged to mono first
    PER_CHANNEL = "per_channel"  # computed per channel and averaged (channel counts must match, else mono)


class UnknownMetric(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class MetricFailure(Exception):
    """A metric cannot produce a value for this input; the result becomes NaN with this reason."""


@dataclass(frozen=True)
class MetricInfo:
    """What a metric's number means and how it was made.

    Attributes:
        sample_rate: rate both signals are resampled to before computing, ``None`` = the reference's rate.
        value_range: theoretical range, ``None`` bounds are open.
        library: PyPI distribution that implements it (its installed version is recorded with each value).
        version: evalkit's version of this metric's definition; part of every cache key.
    """

    name: str
    variant: str
    kind: MetricKind
    unit: str
    higher_is_better: bool
    sample_rate: int | None
    min_duration_s: float
    channels: ChannelMode
    library: str
    paper: str
    description: str
    value_range: tuple[float | None, float | None] = (None, None)
    version: str = "1"

    @property
    def needs_reference(self) -> bool:
        return self.kind is MetricKind.REFERENCE

    def library_version(self) -> str:
        try:
            return importlib.metadata.version(self.library)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"


class Metric(ABC):
    """A reference metric over prepared signals (same rate, channels and length)."""

    info: MetricInfo

    @abstractmethod
    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        """Score ``[channels, samples]`` float32 arrays at ``info.sample_rate``.

        ``cache`` is private to this metric and one prepared reference: put reference-only analysis there so
        that scoring many degraded variants against one reference analyses it once.

        Raises:
            MetricFailure: the input is outside the metric's domain; the reason is reported with NaN.
        """


def build_registry(items: Iterable[Metric | MetricInfo]) -> dict[str, Metric | MetricInfo]:
    registry: dict[str, Metric | MetricInfo] = {}
    for item in items:
        name = item.info.name if isinstance(item, Metric) else item.name
        if name in registry:
            raise ValueError(f"metric {name!r} registered twice")
        registry[name] = item
    return registry
