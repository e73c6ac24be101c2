"""The results store: SQLite in WAL mode, one transaction per work unit.

``units`` has one row per (item, codec variant) with the codec run's outcome and provenance; ``results`` one
row per (item, codec variant, metric) with value (NULL = NaN) or reason. Rows are keyed by content hashes
(see :mod:`evalkit.runner.plan`), written with ``INSERT OR REPLACE`` inside a single transaction per unit, so
a run killed at any moment leaves only whole units behind and a rerun neither loses nor duplicates anything.
Rows of earlier plans stay (history); ``current_plan`` lists the unit keys of the latest run's plan.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    unit_key TEXT PRIMARY KEY, item_id TEXT NOT NULL, item_path TEXT, category TEXT, content_hash TEXT,
    codec_spec TEXT NOT NULL, family TEXT, status TEXT NOT NULL, reason TEXT, weights TEXT, device TEXT,
    bitrate_bps REAL, frame_rate REAL, cardinality INTEGER, num_codebooks INTEGER,
    input_rate INTEGER, input_channels INTEGER, input_seconds REAL, encode_s REAL, decode_s REAL, process_s REAL,
    reconstruction TEXT, decoded_path TEXT, codes_path TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP,
    settings TEXT,
    measured_bitrate_bps REAL
);
CREATE TABLE IF NOT EXISTS results (
    result_key TEXT PRIMARY KEY, unit_key TEXT NOT NULL REFERENCES units(unit_key), item_id TEXT NOT NULL,
    codec_spec TEXT NOT NULL, metric TEXT NOT NULL, value REAL, unit TEXT, reason TEXT,
    metric_version TEXT, library TEXT, library_version TEXT, preparation TEXT, seconds REAL,
    created TEXT DEFAULT CURRENT_TIMESTAMP, settings TEXT
);
CREATE INDEX IF NOT EXISTS results_unit ON results(unit_key);
CREATE TABLE IF NOT EXISTS variants (codec_spec TEXT PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS current_plan (unit_key TEXT PRIMARY KEY);
"""
ADDED_COLUMNS = {  # columns that stores written by older versions lack
    "units": {"settings": "TEXT", "measured_bitrate_bps": "REAL"}, "results": {"settings": "TEXT"}}


class UnitStatus(enum.StrEnum):
    """Outcome of a unit. ``failed`` (bad input audio) is deterministic and not retried; ``error`` (any other
    exception) and ``skipped`` (missing weights) are retried by the next run."""

    OK = "ok"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class UnitRow:
    unit_key: str
    item_id: str
    item_path: str
    category: str
    content_hash: str
    codec_spec: str
    family: str
    status: UnitStatus
    reason: str | None = None
    weights: str | None = None
    device: str | None = None
    bitrate_bps: float | None = None
    frame_rate: float | None = None
    cardinality: int | None = None
    num_codebooks: int | None = None
    input_rate: int | None = None
    input_channels: int | None = None
    input_seconds: float | None = None
    encode_s: float | None = None
    decode_s: float | None = None
    process_s: float | None = None
    reconstruction: str | None = None
    decoded_path: str | None = None
    codes_path: str | None = None
    settings: str | None = None  # JSON of the decode settings hashed into the key
    measured_bitrate_bps: float | None = None  # bits of this unit's coded representation / input seconds


@dataclass(frozen=True)
class ResultRow:
    result_key: str
    unit_key: str
    item_id: str
    codec_spec: str
    metric: str
    value: float
    unit: str
    reason: str | None
    metric_version: str
    library: str
    library_version: str
    preparation: str | None
    seconds: float
    settings: str | None = None  # JSON of the score settings hashed into the key


class Store:
    """One SQLite file; only the coordinating process writes to it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_unit(self, unit: UnitRow, results: Iterable[ResultRow], variant_info: str | None = None) -> None:
        """The unit row and all its result rows (and the variant's info, once), atomically."""
        with self.db:
            if variant_info is not None:
                self._insert("variants", {"codec_spec": unit.codec_spec, "info": variant_info})
            self._insert("units", {**asdict(unit), "status": str(unit.status)})
            for r in results:
                row = asdict(r)
                row["value"] = None if math.isnan(r.value) else r.value
                self._insert("results", row)

    def set_current_plan(self, unit_keys: Iterable[str]) -> None:
        """Record the unit keys of the latest run's plan (readers such as listening tests join on it)."""
        with self.db:
            self.db.execute("DELETE FROM current_plan")
            self.db.executemany("INSERT OR IGNORE INTO current_plan VALUES (?)", [(k,) for k in unit_keys])

    def _insert(self, table: str, row: dict) -> None:
        cols = ", ".join(row)
        self.db.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))

    def unit(self, unit_key: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM units WHERE unit_key = ?", (unit_key,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None

    def done_results(self, unit_key: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT result_key FROM results WHERE unit_key = ?", (unit_key,))}

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        cur = self.db.execute(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def to_json(obj) -> str:
    return json.dumps(asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj, default=str)
