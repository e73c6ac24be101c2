"""Metric metadata and the explicit metric registry.

Every metric is described once by a frozen :class:`MetricInfo` (unit, direction, native rate, minimum duration,
implementing library...). Registration is an explicit list in :mod:`evalkit.metrics`; unknown or duplicate
names raise with the valid ones listed.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.errors import UserError
from evalkit.plugin_files import PluginError
from evalkit.versions import installed_version


class MetricKind(enum.StrEnum):
    REFERENCE = "reference"  # compares a degraded signal with its reference
    NO_REFERENCE = "no-reference"
    CODES = "codes"  # computed from discrete codes
    CORPUS = "corpus"  # computed over a whole evaluation set, not per item


class ChannelMode(enum.StrEnum):
    MONO = "mono"  # both signals are averaged to mono first
    PER_CHANNEL = "per_channel"  # computed per channel and averaged (channel counts must match, else mono)


class UnknownMetric(UserError, KeyError):
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
        aligns_internally: the metric gets both whole signals (resampled, channels mixed) without evalkit's
            delay compensation and trimming: it aligns by itself (ViSQOL, PESQ) or needs no alignment.
        applies_to: the manifest ``category`` the metric is meant for (``"speech"``); ``metrics: applicable``
            runs it only on such items. ``None``: any audio.
        uncategorised: with ``applies_to`` set, ``metrics: applicable`` also runs it on items of no known
            category (a folder without a manifest), as the speech-quality measures PESQ, STOI and ViSQOL speech;
            an item of another category (``music``) never gets it.
        needs_text: the metric also needs the item's transcript (manifest column ``text``).
        dependencies: further PyPI distributions whose versions can change the value (recorded and keyed
            with the library's).
        fallback_rates: lower rates the metric is also defined at, used (highest first) when the pair's
            lower rate is below ``sample_rate``; such a metric's ``compute`` is given ``rate=``.
        display_name: what people read in reports, figures and the console (``"SI-SDR"``, ``"ViSQOL audio"``);
            empty: the metric's name (see :attr:`label`).
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
    aligns_internally: bool = False
    applies_to: str | None = None
    uncategorised: bool = False
    needs_text: bool = False
    dependencies: tuple[str, ...] = ()
    fallback_rates: tuple[int, ...] = ()
    display_name: str = ""

    @property
    def label(self) -> str:
        """The display name, or the metric's name when it has none."""
        return self.display_name or self.name

    @property
    def short_unit(self) -> str:
        """The unit when it is one token (``dB``, ``MOS-LQO``), else empty: a header shows it, a longer unit
        (``log10 mel L1 (sum of 7 scale means)``) goes to the detail table and tooltips."""
        return self.unit if self.unit and " " not in self.unit else ""

    @property
    def header(self) -> str:
        """``"SI-SDR (dB) ↑"``, ``"Mel distance ↓"``: display name, short unit, direction.

        >>> MetricInfo("si_sdr", "", MetricKind.REFERENCE, "dB", True, None, 0.0, ChannelMode.MONO, "", "", "",
        ...            display_name="SI-SDR").header
        'SI-SDR (dB) ↑'
        """
        unit = f" ({self.short_unit})" if self.short_unit else ""
        return f"{self.label}{unit} {'↑' if self.higher_is_better else '↓'}"

    @property
    def rates(self) -> tuple[int, ...]:
        """Every rate the metric runs at, highest first (empty: the reference's rate)."""
        return () if self.sample_rate is None else (self.sample_rate, *self.fallback_rates)

    def rate_for(self, reference_rate: int, degraded_rate: int) -> int:
        """The rate a pair is prepared at: ``sample_rate``, or the highest fallback rate that the pair's lower
        rate reaches (the lowest one when it reaches none); the reference's rate when ``sample_rate`` is None.

        >>> info = MetricInfo("m", "", MetricKind.REFERENCE, "", True, 16_000, 0.0, ChannelMode.MONO, "", "", "",
        ...                   fallback_rates=(8_000,))
        >>> info.rate_for(44_100, 16_000), info.rate_for(44_100, 11_025), info.rate_for(8_000, 8_000)
        (16000, 8000, 8000)
        """
        if self.sample_rate is None:
            return reference_rate
        lowest = min(reference_rate, degraded_rate)
        return next((r for r in self.rates if lowest >= r), self.rates[-1])

    def applies(self, category: str | None) -> bool:
        """Whether ``metrics: applicable`` runs the metric on an item of this manifest ``category``.

        >>> info = MetricInfo("m", "", MetricKind.REFERENCE, "", True, 16_000, 0.0, ChannelMode.MONO, "", "", "",
        ...                   applies_to="speech", uncategorised=True)
        >>> info.applies("speech"), info.applies(""), info.applies(None), info.applies("music")
        (True, True, True, False)
        """
        if self.applies_to is None or category == self.applies_to:
            return True
        return self.uncategorised and not category

    @property
    def needs_reference(self) -> bool:
        return self.kind is MetricKind.REFERENCE

    def library_version(self) -> str:
        """The library's installed version, followed by its dependencies' (``"0.0.1.1 (onnxruntime 1.23.2)"``)."""
        version = _installed(self.library)
        if self.dependencies:
            version += " (" + ", ".join(f"{d} {_installed(d)}" for d in self.dependencies) + ")"
        return version


def _installed(dist: str) -> str:
    return installed_version(dist)


class Metric(ABC):
    """A reference metric over prepared signals (same rate and channels; same length unless the metric
    aligns internally)."""

    info: MetricInfo
    wants_rate: bool = False  # ``compute`` is always given ``rate=`` (plugin metrics), not only with fallback rates
    #: Heavy modules its first call imports (``("torch",)``): a pool worker imports them while the run is planned.
    imports: tuple[str, ...] = ()

    @property
    def has_segment_terms(self) -> bool:
        """Whether the metric's whole-signal value can be computed from per-segment sums (see
        :mod:`evalkit.metrics.segments`): it overrides :meth:`segment_terms` and :meth:`from_segment_terms`."""
        return type(self).segment_terms is not Metric.segment_terms

    def segment_terms(self, reference: np.ndarray, degraded: np.ndarray) -> np.ndarray:
        """Additive sums of one prepared segment pair, from which :meth:`from_segment_terms` gives the value."""
        raise NotImplementedError

    def from_segment_terms(self, terms: np.ndarray) -> float:
        """The value of the whole pair from the sum of its segments' :meth:`segment_terms`.

        Raises:
            MetricFailure: as :meth:`compute` would on the whole pair.
        """
        raise NotImplementedError

    @abstractmethod
    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        """Score ``[channels, samples]`` float32 arrays at ``info.sample_rate`` (or ``rate``, see below).

        ``cache`` is private to this metric and one prepared reference: put reference-only analysis there so
        that scoring many degraded variants against one reference analyses it once. A metric whose
        ``info.needs_text`` is set is called with the item's transcript as a further keyword, ``text``; a metric
        with ``info.fallback_rates`` is given the rate the pair was prepared at, as the keyword ``rate``.

        Raises:
            MetricFailure: the input is outside the metric's domain; the reason is reported with NaN.
        """


class MetricRegistry(Mapping[str, Metric]):
    """Pair metrics by name: evalkit's own (an explicit list), then plugins (entry points read on first need,
    files as loaded; see :mod:`evalkit.metrics.plugins`).

    A built-in name is answered without reading entry points; an unknown name, listing or counting reads them
    once (a broken entry point raises its ``PluginError`` each time until it is fixed).
    """

    def __init__(self, builtins: Iterable[Metric], read_entry_points: Callable[[MetricRegistry], None],
                 reserved: Iterable[str] = ()):
        self._metrics: dict[str, Metric] = dict(build_registry(builtins))
        self._sources: dict[str, str] = dict.fromkeys(self._metrics, "evalkit")
        self._reserved = tuple(reserved)  # names of corpus metrics: not usable by a plugin
        self._loader = read_entry_points
        self._entry_points_read = False

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True  # set first: a plugin importing evalkit.metrics must not recurse
        try:
            self._loader(self)
        except Exception:
            self._entry_points_read = False
            raise

    def __getitem__(self, name: str) -> Metric:
        if name not in self._metrics:
            self._read_entry_points()
        return self._metrics[name]

    def __contains__(self, name: object) -> bool:
        if name not in self._metrics:
            self._read_entry_points()
        return name in self._metrics

    def __iter__(self) -> Iterator[str]:
        self._read_entry_points()
        return iter(list(self._metrics))

    def __len__(self) -> int:
        self._read_entry_points()
        return len(self._metrics)

    def source(self, name: str) -> str:
        """Where metric ``name`` comes from: ``evalkit``, ``file PATH`` or ``entry point NAME (DIST VERSION)``."""
        self[name]
        return self._sources[name]

    def register(self, metric: Metric, where: str) -> None:
        """Add a plugin metric; the same source loaded again (an edited file) replaces its own metrics.

        Raises:
            PluginError: the name is taken by another source (or is a corpus metric's).
        """
        name, source = metric.info.name, getattr(metric.info, "source", "") or where
        taken = "evalkit (a corpus metric)" if name in self._reserved else self._sources.get(name)
        if taken is not None and taken != source:
            raise PluginError(f"{where}: metric {name!r} is already provided by {taken}")
        self._metrics[name] = metric
        self._sources[name] = source

    def plugins(self) -> list[Metric]:
        """The plugin metrics registered so far (this reads no entry points)."""
        return [m for n, m in self._metrics.items() if self._sources[n] != "evalkit"]

    def unregister(self, name: str) -> None:
        """Remove a plugin metric (tests); evalkit's own metrics stay."""
        if self._sources.get(name, "evalkit") != "evalkit":
            del self._metrics[name], self._sources[name]

    def refresh(self) -> None:
        """Forget the entry points' metrics and read them again on next need (after installing a package)."""
        for name in [n for n, s in self._sources.items() if s.startswith("entry point ")]:
            del self._metrics[name], self._sources[name]
        self._entry_points_read = False


class InfoView(Mapping[str, MetricInfo]):
    """Every metric's :class:`MetricInfo` by name: the pair metrics (plugins included), then corpus metrics."""

    def __init__(self, pair: MetricRegistry, corpus: Mapping[str, MetricInfo]):
        self._pair, self._corpus = pair, corpus

    def __getitem__(self, name: str) -> MetricInfo:
        if name in self._corpus:
            return self._corpus[name]
        return self._pair[name].info

    def __iter__(self) -> Iterator[str]:
        return iter([*self._pair, *self._corpus])

    def __len__(self) -> int:
        return len(self._pair) + len(self._corpus)


def build_registry(items: Iterable[Metric | MetricInfo]) -> dict[str, Metric | MetricInfo]:
    registry: dict[str, Metric | MetricInfo] = {}
    for item in items:
        name = item.info.name if isinstance(item, Metric) else item.name
        if name in registry:
            raise ValueError(f"metric {name!r} registered twice")
        registry[name] = item
    return registry
