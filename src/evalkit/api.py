"""evalkit's Python API, for scripts and notebooks (``import evalkit``; README, "Python API").

* :func:`score` — metrics of one degraded signal against its reference, as ``evalkit score`` computes them;
* :func:`build_codec` — a codec (or anchor) from a spec string; ``.reconstruct(audio, sample_rate)`` codes audio;
  ``plugins=[...]`` (here and in :func:`run`) loads plugin files or modules first, as a config's ``plugins:``;
* :func:`run` — a whole evaluation from a config (YAML path or dict), as ``evalkit run``;
* :func:`load_run` — a run folder's tables as tidy pandas DataFrames (:class:`Run`).

Everything here is reached through ``evalkit.<name>``, imported on first use, so ``import evalkit`` itself
loads neither torch nor scipy nor pandas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit import audio as audio_lib
from evalkit.audio import DEFAULT_MAX_DELAY_S
from evalkit.codecs import CodecSpec
from evalkit.errors import UserError
from evalkit.metrics import MetricResult

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from evalkit.codecs import AudioTransform
    from evalkit.runner import RunReport

Signal = str | os.PathLike | np.ndarray | tuple[Any, int]
#: A plugin: a Python file (``"my_codec.py"``, a path) or the name of an importable module (``"my_lab.codecs"``).
Plugin = str | os.PathLike


def _plugin_entries(plugins: Plugin | Sequence[Plugin]) -> list[str]:
    """Plugin entries as a run config holds them: module names as given, files as absolute paths (relative ones
    from the current folder)."""
    from evalkit.runner.config import resolve_plugin

    if isinstance(plugins, str | os.PathLike):
        plugins = [plugins]
    # a str may name a module; a path object is always a file
    return [resolve_plugin(p, Path.cwd()) if isinstance(p, str) else str(Path(p).expanduser().resolve())
            for p in plugins]


def load_plugins(plugins: Plugin | Sequence[Plugin]) -> None:
    """Import plugin files or modules and register their codec families (``FAMILIES``) and metrics (``METRICS``),
    as a run config's ``plugins:`` list does (a no-op for those loaded already).

    Raises:
        PluginError: one line naming the plugin that is missing, fails to import or defines nothing usable.
    """
    from evalkit.codecs import load_plugin_files
    from evalkit.metrics import load_metric_plugins

    entries = _plugin_entries(plugins)
    load_plugin_files(entries)
    load_metric_plugins(entries)


def build_codec(spec: str | CodecSpec, device: str | torch.device = "auto", *,
                plugins: Plugin | Sequence[Plugin] = ()) -> AudioTransform:
    """A codec (or anchor) for a spec string, not loaded yet (``load()``, or just use it).

    Args:
        spec: ``family?param=value&...`` (``evalkit codecs list``), e.g. ``"encodec-24khz?bandwidth=6"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        plugins: plugin files (paths) or importable module names that define the family (``FAMILIES``),
            loaded first exactly as a run config's ``plugins:`` (files relative to the current folder).

    Raises:
        SpecError: an unknown family or parameter (with the valid ones).
        PluginError: a plugin that cannot be loaded.
    """
    from evalkit.codecs import build_codec as build

    if plugins:
        load_plugins(plugins)
    return build(spec, device)


class RunNotFound(UserError, ValueError):
    """A folder that holds no finished ``evalkit run`` output; the message names it."""


class Scores(dict):
    """Metric name → value (NaN where the metric failed), in the order the metrics were given.

    Attributes:
        details: each metric's :class:`~evalkit.metrics.MetricResult` (unit, reason, preparation, library).
    """

    def __init__(self, results: Sequence[MetricResult]):
        super().__init__((r.metric, r.value) for r in results)
        self.details: dict[str, MetricResult] = {r.metric: r for r in results}

    @property
    def reasons(self) -> dict[str, str]:
        """Why each failed metric is NaN (empty when every metric has a value)."""
        return {name: r.reason for name, r in self.details.items() if r.reason}

    @property
    def units(self) -> dict[str, str]:
        """The unit of each value (``dB``, ``MOS``...)."""
        return {name: r.unit for name, r in self.details.items()}


def _signal(value: Signal, sample_rate: int | None, what: str) -> tuple[np.ndarray, int, str]:
    """``[channels, samples]`` float32, its rate, and a name for messages."""
    if isinstance(value, str | os.PathLike):
        clip = audio_lib.load(value)
        return clip.samples, clip.sample_rate, str(value)
    if isinstance(value, tuple) and len(value) == 2:
        value, sample_rate = value
    if sample_rate is None:
        raise ValueError(f"{what}: an array needs its sample rate (sample_rate=, or an (array, rate) pair)")
    samples = audio_lib.as_2d(np.asarray(value, dtype=np.float32))
    return samples, int(sample_rate), what


def score(reference: Signal, degraded: Signal, sample_rate: int | None = None,
          metrics: str | Sequence[str] = "applicable", *, category: str | None = None, text: str | None = None,
          max_delay_s: float = DEFAULT_MAX_DELAY_S, plugins: Plugin | Sequence[Plugin] = ()) -> Scores:
    """Score ``degraded`` against ``reference`` with evalkit's metrics (the values ``evalkit score`` prints).

    Args:
        reference: an audio file path, an array ``[channels, samples]`` or ``[samples]`` at ``sample_rate``,
            or an ``(array, rate)`` pair.
        degraded: the same forms; its rate may differ from the reference's (each metric resamples).
        sample_rate: rate in Hz of arrays given without one.
        metrics: ``"applicable"`` (every metric the rates and ``category`` allow), one name or a list of names
            (``evalkit metrics list``).
        category: content category as in a manifest (``speech`` adds the speech metrics).
        text: the reference's transcript (for ``wer`` and ``cer``).
        max_delay_s: delay search range when aligning the pair, in seconds.
        plugins: plugin files or module names whose ``METRICS`` are loaded first (as a config's ``plugins:``).

    Returns:
        metric → value in the metric's unit (``Scores.units``); NaN with ``Scores.reasons[metric]`` where a
        metric could not be computed.

    Raises:
        AudioError: an unreadable or invalid audio file.
        UnknownMetric: a metric name evalkit does not have.
        ValueError: an array without a sample rate.

    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> ref = np.sin(2 * np.pi * 500 * t)
    >>> round(score(ref, ref + 0.1 * np.cos(2 * np.pi * 500 * t), 16000, metrics="si_sdr")["si_sdr"], 2)
    20.0
    """
    from evalkit.metrics import Reference, applicable_metrics, get_metrics, score_pair

    if plugins:
        load_plugins(plugins)
    ref, ref_rate, ref_name = _signal(reference, sample_rate, "reference")
    deg, deg_rate, deg_name = _signal(degraded, sample_rate, "degraded")
    if isinstance(metrics, str) and metrics == "applicable":
        chosen = applicable_metrics(ref_rate, deg_rate, category=category)
    else:
        chosen = get_metrics([metrics] if isinstance(metrics, str) else list(metrics))
    results = score_pair(Reference(ref, ref_rate, ref_name, text=text), deg, deg_rate, chosen, source=deg_name,
                         max_delay_s=max_delay_s)
    return Scores(results)


def run(config: str | os.PathLike | Mapping[str, Any], *, plugins: Plugin | Sequence[Plugin] = (),
        base_dir: str | os.PathLike | None = None, executor: str | None = None, scheduler: str | None = None,
        fresh: bool = False, progress: bool = False) -> Run:
    """Run an evaluation (as ``evalkit run``: validated first, resumable) and return its tables.

    Args:
        config: a YAML file, or the same fields as a mapping (relative paths then taken from ``base_dir``,
            default the current folder).
        plugins: plugin files (paths, relative ones from the current folder) or importable module names, added
            to the config's ``plugins:`` (and so validated, keyed and imported by every worker as those are).
        executor: ``"local"`` (a pool of ``workers`` child processes), ``"dask"`` (a LocalCluster, or the
            cluster at ``scheduler``) or ``"slurm"`` (Dask workers as Slurm jobs); default: the config's
            ``executor``.
        fresh: discard the output folder's store and caches first.

    Returns:
        The run's tables (:class:`Run`), with ``Run.report`` holding the counts of this run.

    Raises:
        ConfigError: every problem of the config, one line each.
    """
    from evalkit.runner import load_config, run_evaluation, validate_config

    extra = _plugin_entries(plugins)
    if isinstance(config, str | os.PathLike):
        config, specs = load_config(config, extra)
    else:
        config, specs = validate_config(dict(config), Path(base_dir or ".").resolve(), "config", extra)
    report = run_evaluation(config, specs, executor=executor, scheduler=scheduler, fresh=fresh, progress=progress)
    return Run(Path(config.output), report)


def load_run(run_dir: str | os.PathLike) -> Run:
    """The tables of a run folder written by ``evalkit run`` (read when first used).

    Raises:
        RunNotFound: the folder holds no finished run (no ``results.sqlite`` and ``summary.csv``).
    """
    from evalkit.runner.reader import STORE_NAME, RunReader

    reader = RunReader(run_dir)
    if not reader.finished:
        raise RunNotFound(f"{reader.run_dir}: not a finished run folder (no {STORE_NAME} or summary.csv; run "
                          f"`evalkit run CONFIG` or evalkit.run(config) first)")
    return Run(reader.run_dir)


@dataclass
class Run:
    """A run folder's exports as tidy DataFrames; every table with a ``codec_spec`` gains a ``label`` column
    (from the variant records the run stored: ``Opus 12 kbps``, a decoded folder's own label, ``Reference``).

    Attributes:
        run_dir: the output folder.
        report: counts and paths of the run that produced it (only from :func:`run`).
    """

    run_dir: Path
    report: RunReport | None = None

    @cached_property
    def _data(self):
        from evalkit.reports.rundata import load_run as load_run_data

        return load_run_data(self.run_dir)  # through the run's RunReader: labels from its variant records

    @cached_property
    def labels(self) -> dict[str, str]:
        """codec spec → its short label, for every variant of the run."""
        specs = [*self._data.summary.get("codec_spec", []), *self._data.results.get("codec_spec", [])]
        return self._data.labels(specs)

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if "codec_spec" in frame and not frame.empty:
            labels = self.labels
            frame.insert(frame.columns.get_loc("codec_spec") + 1, "label",
                         [labels.get(s) or self._data.label(s) for s in frame["codec_spec"]])
        return frame

    @cached_property
    def results(self) -> pd.DataFrame:
        """One row per item × variant × metric: ``value`` (NaN + ``reason`` where it failed), ``unit``,
        ``bitrate_kbps``, weights, preparation (rate, delay, channels) and provenance columns."""
        return self._labelled(self._data.results)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """One row per variant × metric: ``mean``, 95 % CI (``ci_low``, ``ci_high``) over its items, ``n``,
        ``failures``, ``bitrate_kbps``, ``unit``, ``higher_is_better``; ``mean_shared``, ``ci_*_shared`` over the
        ``n_shared`` items every variant scored, ``complete`` (see :mod:`evalkit.stats.shared_items`)."""
        return self._labelled(self._data.summary)

    @cached_property
    def rate_quality(self) -> pd.DataFrame:
        """Rate–quality points (``rate_quality.csv``): one row per family × bitrate point × metric."""
        return self._labelled(self._data.rate_quality)

    @cached_property
    def codebooks(self) -> pd.DataFrame:
        """Codebook usage per variant and codebook over the run's items: entropy (bits), perplexity,
        utilisation (``codebook_usage.csv``); empty when no variant has codes."""
        return self._labelled(self._data.codebook_usage)

    @cached_property
    def codebooks_by_depth(self) -> pd.DataFrame:
        """The same as a function of the number of codebooks used (``codebook_usage_by_depth.csv``)."""
        return self._labelled(self._data.codebook_by_depth)

    @cached_property
    def units(self) -> pd.DataFrame:
        """One row per item × variant of the current plan: status, reason, bitrate, timings, cached files."""
        return self._labelled(self._data.units)

    @property
    def provenance(self) -> dict:
        """``run.json``: config, versions, machine and dates of the run."""
        return self._data.provenance

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r})"


__all__ = ["Plugin", "Run", "RunNotFound", "Scores", "build_codec", "load_plugins", "load_run", "run", "score"]
