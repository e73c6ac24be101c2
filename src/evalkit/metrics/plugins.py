"""Metrics from outside evalkit: installed packages (entry points) and plain Python files.

Two ways to add a metric without editing evalkit (README, "How to add a metric"), as for codecs:

* **An installed package** declares an entry point in the group ``evalkit.metrics`` naming a
  :class:`MetricPlugin`, a list of them, or a callable returning either. Entry points are read the first time a
  metric name is not one of evalkit's, or when every metric is listed (``evalkit metrics list``, and
  ``metrics: applicable``).
* **A file** or an importable **module** (by name) listed under ``plugins:`` in a run config (the same list as
  codec plugins; one file may define both), given to ``evalkit metrics list --plugin`` / ``evalkit score
  --plugin`` or to ``plugins=[...]`` of :func:`evalkit.run` defines ``METRICS`` the same way
  (:func:`evalkit.metrics.load_metric_plugins` loads them).

A plugin metric is a plain function over the prepared pair; evalkit resamples, applies the channel mode, aligns
and trims exactly as for its own metrics, and records the result like theirs. Its code identity (the
distribution's version, or ``sha256:`` of the file or module code) is its ``library_version``, part of every
result key, so an edited plugin never reuses stale values. A plugin that cannot be imported, declares an invalid
field, or reuses a taken name raises :class:`PluginError` with one line naming it (exit code 2 on the command line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.metrics.registry import ChannelMode, Metric, MetricFailure, MetricInfo, MetricKind
from evalkit.plugin_files import PluginError, import_plugin, plugin_objects
from evalkit.versions import installed_version

if TYPE_CHECKING:
    from evalkit.metrics.registry import MetricRegistry

ENTRY_POINT_GROUP = "evalkit.metrics"
#: Metric names become export columns and YAML list entries: lower-case letters, digits and underscores.
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
PLUGIN_KINDS = (MetricKind.REFERENCE, MetricKind.NO_REFERENCE)


@dataclass(frozen=True)
class MetricPlugin:
    """A metric declared by a plugin: what its number means, and the function that computes it.

    Attributes:
        name: unique among all metrics (evalkit's own included); lower-case letters, digits, ``_``.
        kind: ``"reference"`` (``function(reference, degraded, rate)``) or ``"no-reference"``
            (``function(degraded, rate)``; also scored once per item on the reference itself).
        unit: what the value is measured in (``"dB"``); a one-word unit is shown in table headers.
        higher_is_better: the direction of quality.
        version: the definition's version; part of every result key: change it when the definition changes.
        function: returns one float from ``[channels, samples]`` float32 arrays at ``rate`` Hz. Raise
            :class:`evalkit.metrics.registry.MetricFailure` (``evalkit.MetricFailure``) outside the metric's
            domain: the value becomes NaN with that reason (any other exception too, with its type).
        sample_rates: the rates the metric is defined at, highest first: the pair is prepared at the highest one
            the lower input rate reaches (else the lowest). ``None``: at the reference's rate.
        channels: ``"mono"`` (both signals averaged to one channel) or ``"per_channel"`` (every channel; both
            are downmixed when their channel counts differ).
        min_duration_s: a shorter prepared pair gives NaN with the reason.
        aligns_internally: the function gets both whole signals, without evalkit's delay compensation and trims.
        applies_to: the manifest category it is meant for (``"speech"``): ``metrics: applicable`` runs it only on
            such items. ``None``: any audio.
        dependencies: PyPI distributions whose installed versions can change the value (recorded and keyed).
        display_name, description, paper: what reports and ``evalkit metrics list`` show.
    """

    name: str
    kind: str
    unit: str
    higher_is_better: bool
    version: str
    function: Callable[..., float]
    sample_rates: tuple[int, ...] | None = None
    channels: str = "mono"
    min_duration_s: float = 0.0
    aligns_internally: bool = False
    applies_to: str | None = None
    dependencies: tuple[str, ...] = ()
    display_name: str = ""
    description: str = ""
    paper: str = ""


@dataclass(frozen=True)
class PluginMetricInfo(MetricInfo):
    """:class:`MetricInfo` of a plugin metric: ``library`` is the plugin's distribution or file name,
    ``source`` where it was loaded from, and ``code_identity`` the distribution's version or ``sha256:`` of
    the file, reported (and keyed) as the library version."""

    source: str = ""
    code_identity: str = ""

    def library_version(self) -> str:
        version = self.code_identity
        if self.dependencies:
            version += " (" + ", ".join(f"{d} {installed_version(d)}" for d in self.dependencies) + ")"
        return version


class PluginMetric(Metric):
    """A :class:`MetricPlugin`'s function behind evalkit's metric interface."""

    wants_rate = True

    def __init__(self, plugin: MetricPlugin, info: PluginMetricInfo):
        self.plugin = plugin
        self.info = info

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any], *, rate: int) -> float:
        try:
            if self.info.kind is MetricKind.NO_REFERENCE:
                value = self.plugin.function(degraded, rate)
            else:
                value = self.plugin.function(reference, degraded, rate)
        except ImportError as exc:  # not "pip install <plugin file>": the plugin's own import failed
            raise MetricFailure(f"{self.info.name}: {type(exc).__name__}: {exc}") from None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise MetricFailure(f"{self.info.name} returned {type(value).__name__}, not a number") from None


def _problems(plugin: MetricPlugin) -> list[str]:
    """Every field of ``plugin`` that is unusable, one phrase each."""
    problems = []
    if not isinstance(plugin.name, str) or not METRIC_NAME.fullmatch(plugin.name):
        problems.append(f"name {plugin.name!r} is not usable (lower-case letters, digits and '_', starting with "
                        f"a letter)")
    if plugin.kind == MetricKind.CODES:
        problems.append("kind 'codes' is not supported for plugin metrics (evalkit gives them audio, not codes)")
    elif plugin.kind not in PLUGIN_KINDS:
        problems.append(f"kind: expected one of {', '.join(map(repr, map(str, PLUGIN_KINDS)))}, got {plugin.kind!r}")
    if not isinstance(plugin.unit, str):
        problems.append(f"unit: expected a string, got {type(plugin.unit).__name__}")
    if not isinstance(plugin.higher_is_better, bool):
        problems.append(f"higher_is_better: expected True or False, got {plugin.higher_is_better!r}")
    if not isinstance(plugin.version, str) or not plugin.version:
        problems.append(f"version: expected a non-empty string, got {plugin.version!r}")
    if not callable(plugin.function):
        problems.append(f"function: expected a callable, got {type(plugin.function).__name__}")
    rates = plugin.sample_rates
    if rates is not None and (isinstance(rates, str | bytes) or not isinstance(rates, Iterable) or not rates
                              or not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in rates)):
        problems.append(f"sample_rates: expected None or a tuple of positive integer rates in Hz, got {rates!r}")
    if plugin.channels not in tuple(ChannelMode):
        problems.append(f"channels: expected 'mono' or 'per_channel', got {plugin.channels!r}")
    duration = plugin.min_duration_s
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not duration >= 0 \
            or not math.isfinite(duration):
        problems.append(f"min_duration_s: expected a number >= 0, got {duration!r}")
    if isinstance(plugin.dependencies, str) or not all(isinstance(d, str) for d in plugin.dependencies):
        problems.append(f"dependencies: expected a tuple of distribution names, got {plugin.dependencies!r}")
    return problems


def metric_of(plugin: MetricPlugin, where: str, library: str, source: str, code_identity: str) -> PluginMetric:
    """The evalkit metric for ``plugin``.

    Raises:
        PluginError: one line naming ``where``, the metric and every unusable field.
    """
    problems = _problems(plugin)
    if problems:
        raise PluginError(f"{where}: metric {plugin.name!r}: {'; '.join(problems)}")
    rates = tuple(sorted(plugin.sample_rates, reverse=True)) if plugin.sample_rates is not None else ()
    info = PluginMetricInfo(
        name=plugin.name, variant=plugin.description or f"plugin metric from {source}", kind=MetricKind(plugin.kind),
        unit=plugin.unit, higher_is_better=plugin.higher_is_better, sample_rate=rates[0] if rates else None,
        min_duration_s=float(plugin.min_duration_s), channels=ChannelMode(plugin.channels), library=library,
        paper=plugin.paper, description=plugin.description, version=plugin.version,
        aligns_internally=bool(plugin.aligns_internally), applies_to=plugin.applies_to,
        dependencies=tuple(plugin.dependencies), fallback_rates=rates[1:], display_name=plugin.display_name,
        source=source, code_identity=code_identity)
    return PluginMetric(plugin, info)


def plugins_of(value: Any, where: str) -> list[MetricPlugin]:
    """The :class:`MetricPlugin` objects an entry point or a file's ``METRICS`` stands for
    (:func:`evalkit.plugin_files.plugin_objects`)."""
    return plugin_objects(value, MetricPlugin, where, "metric")


def load_entry_points(registry: MetricRegistry) -> None:
    """Register the metrics of every ``evalkit.metrics`` entry point.

    Raises:
        PluginError: an entry point that cannot be loaded, gives no usable metric, or reuses a taken name.
    """
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name, version = (dist.name, dist.version) if dist else ("", "")
        source = f"entry point {ep.name} ({f'{dist_name} {version}'.strip() or 'unknown distribution'})"
        where = f"metric plugin {source} = {ep.value}"
        try:
            value = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is one line naming the plugin
            raise PluginError(f"{where}: import failed: {type(exc).__name__}: {exc}") from None
        for plugin in plugins_of(value, where):
            registry.register(metric_of(plugin, where, dist_name or ep.name, source, version or "unknown"), where)


_FILES: dict[str, tuple[str, list[PluginMetric]]] = {}  # resolved path -> (sha256, metrics), for this process


def load_metric_file(path: str | Path, registry: MetricRegistry) -> list[PluginMetric]:
    """Import a plugin (a file, or a module by name) and register the metrics of its ``METRICS`` in ``registry``
    (evalkit's is :data:`evalkit.metrics.PAIR_METRICS`: :func:`evalkit.metrics.load_metric_plugins`); idempotent
    per path and content.

    A plugin that defines only ``FAMILIES`` (codec plugins) gives no metric.

    Raises:
        PluginError: a missing file or module, an import failure, neither ``FAMILIES`` nor ``METRICS``, an unusable
            metric, or a metric name already taken.
    """
    plugin = import_plugin(path)
    known = _FILES.get(plugin.key)
    if known is not None and known[0] == plugin.sha256 and all(registry.get(m.info.name) is m for m in known[1]):
        return known[1]
    if not hasattr(plugin.module, "METRICS"):
        return []
    if plugin.module_name:
        where = f"plugin module {plugin.module_name}"
        source, library = f"module {plugin.module_name} ({plugin.path})", plugin.module_name
    else:
        where, source, library = str(plugin.path), f"file {plugin.path}", plugin.path.name
    identity = f"sha256:{plugin.sha256}"
    metrics = [metric_of(p, where, library, source, identity)
               for p in plugins_of(plugin.module.METRICS, f"{where}: METRICS")]
    for metric in metrics:
        registry.register(metric, where)
    _FILES[plugin.key] = (plugin.sha256, metrics)
    return metrics


def load_metric_files(paths: Iterable[str | Path], registry: MetricRegistry) -> None:
    """:func:`load_metric_file` for each path (cheap when loaded already)."""
    for path in paths:
        load_metric_file(path, registry)


@dataclass(frozen=True)
class PluginRecord:
    """A plugin metric's provenance, as written to the run's ``run.json``."""

    name: str
    version: str
    source: str
    library: str
    code_identity: str
    dependencies: tuple[str, ...] = field(default_factory=tuple)


def plugin_records(registry: Iterable[Metric]) -> list[PluginRecord]:
    """The provenance of every plugin metric among ``registry``'s metrics."""
    return [PluginRecord(m.info.name, m.info.version, m.info.source, m.info.library, m.info.library_version(),
                         m.info.dependencies)
            for m in registry if isinstance(m.info, PluginMetricInfo)]
