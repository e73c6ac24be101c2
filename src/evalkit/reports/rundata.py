"""Everything a report or a plot reads from a run folder, loaded once: the exports of the current plan
(``summary.csv``, ``rate_quality.csv``, ``results.parquet``, codebook and KLT tables), the units of the
current plan from ``results.sqlite`` (read-only) and the run's provenance (``run.json``, when the run wrote one).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from evalkit.errors import UserError
from evalkit.runner.reader import STORE_NAME, RunReader, RunReadError, VariantRecord, VariantRole

REFERENCE_SPEC = "reference"  # the pseudo-variant of no-reference scores on the reference itself


class ReportError(UserError, ValueError):
    """A run or listening folder that cannot be reported on; the message names the file."""


def is_random_weights(label: str | None) -> bool:
    """Whether a weights label says the model is not a pretrained one (``random (seed 0) - NOT ...``).

    >>> is_random_weights("random (seed 0) - NOT a pretrained model"), is_random_weights("pretrained")
    (True, False)
    """
    return bool(label) and str(label).startswith("random")


def _csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a run with no such rows writes an empty file
        return pd.DataFrame()


@dataclass(frozen=True)
class RunData:
    """One run folder's tables (each possibly empty) and provenance."""

    run_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    rate_quality: pd.DataFrame
    codebook_usage: pd.DataFrame
    codebook_by_depth: pd.DataFrame
    klt_accounting: pd.DataFrame
    klt_spectra: pd.DataFrame
    units: pd.DataFrame
    provenance: dict = field(default_factory=dict)

    @cached_property
    def reader(self) -> RunReader:
        """The run folder's reader (variant records: stored at plan time, computed for older stores)."""
        return RunReader(self.run_dir)

    def record(self, spec: str) -> VariantRecord:
        """The variant record of ``spec`` (a variant of the run, or the base codec of a KLT variant)."""
        return self.reader.record(spec)

    def role(self, spec: str) -> VariantRole:
        return self.record(spec).role

    @property
    def weights(self) -> dict[str, str]:
        """Weights label per codec spec (from the exports, which take it from the variants)."""
        table = self.summary if not self.summary.empty else self.codebook_usage
        if table.empty:
            return {}
        return dict(zip(table["codec_spec"], table["weights"].fillna("none"), strict=True))

    @property
    def random_specs(self) -> set[str]:
        """Codec specs whose weights are random: every table and figure showing them carries a flag."""
        labels = dict(self.weights)
        if not self.units.empty and "weights" in self.units:
            labels.update(zip(self.units["codec_spec"], self.units["weights"].fillna("none"), strict=True))
        return {spec for spec, label in labels.items() if is_random_weights(label)}

    @property
    def bitrates(self) -> dict[str, float]:
        """Mean bitrate (kbps) per codec spec over its ok units: measured where the codec measures it, else
        nominal; NaN for transforms without a bitrate. One value per variant, whatever items a metric scored."""
        if self.units.empty or "status" not in self.units:
            return {}
        ok = self.units[self.units["status"] == "ok"]
        kbps = ok["measured_bitrate_bps"].fillna(ok["bitrate_bps"]) / 1000
        return kbps.groupby(ok["codec_spec"]).mean().to_dict()

    @property
    def per_channel_specs(self) -> set[str]:
        """Codec specs that coded some item of the plan channel by channel (a mono codec given a multi-channel
        item): their nominal rate is per channel, and their labels say so (``QinCodec 8 kbps/ch``)."""
        from evalkit.labels import coded_per_channel

        if self.units.empty or "reconstruction" not in self.units:
            return set()
        ok = self.units[self.units["status"] == "ok"]
        return set(ok.loc[ok["reconstruction"].map(coded_per_channel), "codec_spec"])

    def labels(self, specs=None) -> dict[str, str]:
        """Unique short labels of ``specs`` (default: the summary's variants), per-channel rates marked
        (the variant records' labels, see :meth:`~evalkit.runner.reader.RunReader.labels`)."""
        if specs is None:
            specs = self.summary["codec_spec"] if not self.summary.empty else []
        return self.reader.labels(specs, per_channel=self.per_channel_specs)

    def label(self, spec: str) -> str:
        """The short label of one spec (a variant, or the base codec of a KLT variant), ``kbps/ch`` when the
        run coded it channel by channel."""
        return self.record(spec).label_for(spec in self.per_channel_specs)

    @property
    def metrics(self) -> list[str]:
        return sorted(self.summary["metric"].unique()) if not self.summary.empty else []


def load_run(run_dir: str | Path) -> RunData:
    """Read a run folder written by ``evalkit run`` (through :class:`~evalkit.runner.reader.RunReader`).

    Raises:
        ReportError: the folder, its store or its summary is missing or unreadable.
    """
    reader = RunReader(run_dir)
    run_dir, store = reader.run_dir, reader.store_path
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run folder")
    if not reader.finished:
        raise ReportError(f"{run_dir}: not a finished run folder (no {STORE_NAME} or summary.csv; "
                          f"run `evalkit run CONFIG` first)")
    try:
        units = pd.DataFrame(reader.plan_units())
        provenance = reader.provenance()
        specs = set(units["codec_spec"]) if not units.empty else set()
        summary = _csv(run_dir / "summary.csv")
        reader.records([*specs, *(summary["codec_spec"] if not summary.empty else [])])
    except sqlite3.Error as exc:
        raise ReportError(f"{store}: unreadable store ({exc})") from None
    except RunReadError as exc:
        raise ReportError(str(exc)) from None
    results = pd.read_parquet(run_dir / "results.parquet") if (run_dir / "results.parquet").is_file() \
        else _csv(run_dir / "results.csv")
    data = RunData(run_dir, results, summary, _csv(run_dir / "rate_quality.csv"),
                   _csv(run_dir / "codebook_usage.csv"), _csv(run_dir / "codebook_usage_by_depth.csv"),
                   _csv(run_dir / "klt_accounting.csv"), _csv(run_dir / "klt_spectra.csv"), units, provenance)
    _load_metric_plugins(provenance)
    data.__dict__["reader"] = reader  # the reader that read it (its records loaded)
    return data


def _load_metric_plugins(provenance: dict) -> None:
    """Import the run's metric plugins (the files its config named), so that their metrics have their names,
    units and directions; a plugin moved or broken since the run is skipped (its metric is then shown by name).
    Variants are never labelled this way: their records say what they are."""
    paths = (provenance.get("config") or {}).get("plugins") or ()
    if not paths:
        return
    from evalkit.metrics import load_metric_plugins
    from evalkit.metrics.plugins import PluginError

    with contextlib.suppress(PluginError):
        load_metric_plugins(paths)
