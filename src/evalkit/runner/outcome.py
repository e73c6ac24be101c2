"""What a run covers and what it did: :class:`Plan` (built before any unit runs) and :class:`RunReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalkit.codecs.records import VariantRecord
from evalkit.runner.plan import Variant
from evalkit.runner.work import ItemTask


@dataclass
class RunReport:
    output: Path
    store: Path
    units_total: int = 0
    units_run: int = 0
    units_rescored: int = 0
    units_failed: int = 0
    variants_skipped: list[tuple[str, str]] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)
    summary_table: str = ""
    speed_table: str = ""
    wall_s: float = 0.0
    warmup_s: dict[str, float] = field(default_factory=dict)  # metric -> seconds, summed over workers
    over_full_scale: list[tuple[str, float]] = field(default_factory=list)  # (item id, peak dBFS) beyond ±1.0


@dataclass
class Plan:
    """What this run covers: its tasks, and the keys and labels the exports are restricted to."""

    tasks: list[ItemTask] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # unit key -> category (from the current dataset)
    results: list[str] = field(default_factory=list)
    variants: dict[str, Variant] = field(default_factory=dict)  # by canonical spec
    records: dict[str, VariantRecord] = field(default_factory=dict)  # by canonical spec, stored at plan time
