"""The one way into a run folder for everything that reads it: reports, ``summary``/``compare``/``plot``, the
Python API's ``load_run`` and ``evalkit listen prepare``.

A :class:`RunReader` opens the store read-only (also in a folder this process cannot write), reads the units of
the plan the exports describe (or every unit), the run's provenance and export tables, and the variants'
:class:`~evalkit.codecs.records.VariantRecord` stored at plan time. A store written before records existed
(schema version below 2), or a record of an older version, gets its records computed on open from the spec
strings (plugin files named in ``run.json`` are imported for that, as the report did before); they are written
into the store by the next run. :func:`decoded_audio_path` is the one place that finds a unit's decoded audio.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evalkit.codecs.labels import CONDITION_LABELS, canonical, labels_for
from evalkit.codecs.records import (
    RECORD_VERSION,
    CurveKind,
    CurveParts,
    VariantRecord,
    VariantRole,
    curve_marker_index,
    curve_name,
    curve_parts,
    describe,
)
from evalkit.errors import UserError
from evalkit.runner.layout import DECODED_CACHE, PROVENANCE_NAME, STORE_NAME, SUMMARY_CSV
from evalkit.runner.store import exported_plan, read_store, resolve_stored


class RunReadError(UserError, ValueError):
    """A run folder's file that cannot be read (malformed ``run.json``); the message names it."""


def decoded_audio_path(unit: Mapping[str, Any], run_dir: str | Path) -> Path | None:
    """The decoded audio file of a unit row (``decoded_path`` relative to the run folder, or absolute as older
    versions stored it), else the cache file named by its unit key; ``None`` when neither exists."""
    run_dir = Path(run_dir)
    stored = resolve_stored(unit.get("decoded_path"), run_dir)
    if stored is not None and stored.is_file():
        return stored
    cached = run_dir.joinpath(*DECODED_CACHE, f"{unit.get('unit_key')}.wav")
    return cached if cached.is_file() else None


def item_audio_path(unit: Mapping[str, Any], run_dir: str | Path) -> Path | None:
    """A unit's reference audio: its stored ``item_path`` (absolute, or relative to the working folder, the run
    folder or one above it, where the run was started)."""
    value = unit.get("item_path")
    if not value:
        return None
    path = Path(value)
    if path.is_absolute():
        return path
    run_dir = Path(run_dir)
    for base in (Path.cwd(), run_dir, *run_dir.resolve().parents):
        if (base / path).exists():
            return base / path
    return path


def _rows(db: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute(sql, params).fetchall()]


class RunReader:
    """A run folder, read-only. Methods that read the store raise ``sqlite3.Error`` for an unreadable one."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.store_path = self.run_dir / STORE_NAME
        self._records: dict[str, VariantRecord] | None = None
        self._provenance: dict | None = None

    @property
    def has_store(self) -> bool:
        return self.store_path.is_file()

    @property
    def finished(self) -> bool:
        """Whether the folder holds a store and the exports a finished run writes (``summary.csv``)."""
        return self.has_store and (self.run_dir / SUMMARY_CSV).is_file()

    def provenance(self) -> dict:
        """``run.json`` (``{}`` when the run wrote none).

        Raises:
            RunReadError: a malformed file.
        """
        if self._provenance is None:
            path = self.run_dir / PROVENANCE_NAME
            self._provenance = {}
            if path.is_file():
                try:
                    self._provenance = json.loads(path.read_text())
                except json.JSONDecodeError as exc:
                    raise RunReadError(f"{path}: malformed ({exc})") from None
        return self._provenance

    def plan_units(self) -> list[dict[str, Any]]:
        """Unit rows of the plan the exports describe (``exported_plan.json``; folders written before it: the
        store's ``current_plan``), by codec spec and item."""
        keys = exported_plan(self.run_dir)  # a killed rerun leaves current_plan another plan than the exports'
        plan, params = ("current_plan", ()) if keys is None else (
            "(SELECT value AS unit_key FROM json_each(?))", (json.dumps(keys),))
        with read_store(self.store_path) as db:
            return _rows(db, f"""SELECT u.* FROM units u JOIN {plan} c ON c.unit_key = u.unit_key
                                 ORDER BY u.codec_spec, u.item_id""", params)

    def all_units(self) -> list[dict[str, Any]]:
        """Every unit row of the store (every plan's), by item and codec spec."""
        with read_store(self.store_path) as db:
            return _rows(db, "SELECT * FROM units ORDER BY item_id, codec_spec")

    def stored_records(self) -> dict[str, VariantRecord]:
        """The records the runs stored, of the current record version (an older store has none)."""
        with read_store(self.store_path) as db:
            present = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'variant_records'")
            if present.fetchone() is None:
                return {}
            rows = _rows(db, "SELECT codec_spec, record, record_version FROM variant_records")
        out = {}
        for row in rows:
            if row["record_version"] != RECORD_VERSION:
                continue
            with contextlib.suppress(KeyError, ValueError, TypeError):
                out[row["codec_spec"]] = VariantRecord.from_json(row["record"])
        return out

    def records(self, specs: Iterable[str] = ()) -> dict[str, VariantRecord]:
        """Records of the stored variants and of ``specs``: stored ones as they are, missing ones computed (see
        the module's docstring)."""
        if self._records is None:
            self._records = self.stored_records() if self.has_store else {}
        missing = [s for s in dict.fromkeys(specs) if s not in self._records]
        if missing:
            self._load_plugins()
            policy = (self.provenance().get("config") or {}).get("channel_policy")
            self._records.update({s: describe(s, policy) for s in missing})
        return dict(self._records)

    def record(self, spec: str) -> VariantRecord:
        return self.records([spec])[spec]

    def _load_plugins(self) -> None:
        """Import the run's plugin codec files, to describe their variants in a store without records; a plugin
        moved or broken since the run is skipped (its variants are then labelled by their spec strings)."""
        try:
            paths = (self.provenance().get("config") or {}).get("plugins") or ()
        except RunReadError:
            return
        if not paths:
            return
        from evalkit.codecs import PluginError, load_plugin_files

        with contextlib.suppress(PluginError):
            load_plugin_files(paths)

    def labels(self, specs: Iterable[str], overrides: Mapping[str, str] | None = None,
               per_channel: Iterable[str] = ()) -> dict[str, str]:
        """Unique short labels of ``specs`` from their records (``overrides`` first, ``per_channel``: specs the
        run coded channel by channel, labelled ``kbps/ch``); see :func:`evalkit.codecs.labels.labels_for`."""
        specs = list(dict.fromkeys(specs))
        return labels_for(specs, overrides, set(per_channel), self.records(specs))

    def decoded_path(self, unit: Mapping[str, Any]) -> Path | None:
        return decoded_audio_path(unit, self.run_dir)

    def item_path(self, unit: Mapping[str, Any]) -> Path | None:
        return item_audio_path(unit, self.run_dir)


def describe_spec(spec: str) -> VariantRecord:
    """The record of a spec string that comes from no run's store (a listening test's condition, a figure of
    hand-made tables): computed from the spec."""
    return describe(spec)


__all__ = ["CONDITION_LABELS", "PROVENANCE_NAME", "STORE_NAME", "CurveKind", "CurveParts", "RunReadError",
           "RunReader", "VariantRecord", "VariantRole", "canonical", "curve_marker_index", "curve_name", "curve_parts",
           "decoded_audio_path", "describe_spec", "item_audio_path", "labels_for"]
