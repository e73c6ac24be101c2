"""The results store: SQLite in WAL mode, one transaction per work unit.

``units`` has one row per (item, codec variant) with the codec run's outcome and provenance; ``results`` one
row per (item, codec variant, metric) with value (NULL = NaN) or reason. Rows are keyed by content hashes
(see :mod:`evalkit.runner.plan`), written with ``INSERT OR REPLACE`` inside a single transaction per unit, so
a run killed at any moment leaves only whole units behind and a rerun neither loses nor duplicates anything.
Rows of earlier plans stay (history); ``current_plan`` lists the unit keys of the latest run's plan.

Paths of cached files are stored relative to the run folder (``cache/decoded/KEY.wav``), so a moved run folder
still finds them; :func:`resolve_stored` also reads the absolute paths older versions wrote. Readers that must
not write (reports, listening tests, a read-only folder) open the store with :func:`read_store`.
"""

from __future__ import annotations

import enum
import errno
import functools
import json
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

from evalkit.errors import UserError
from evalkit.runner.layout import temporary_path

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    unit_key TEXT PRIMARY KEY, item_id TEXT NOT NULL, item_path TEXT, category TEXT, content_hash TEXT,
    codec_spec TEXT NOT NULL, family TEXT, status TEXT NOT NULL, reason TEXT, weights TEXT, device TEXT,
    bitrate_bps REAL, frame_rate REAL, cardinality INTEGER, num_codebooks INTEGER,
    input_rate INTEGER, input_channels INTEGER, input_seconds REAL, encode_s REAL, decode_s REAL, process_s REAL,
    reconstruction TEXT, decoded_path TEXT, codes_path TEXT, created TEXT DEFAULT CURRENT_TIMESTAMP,
    settings TEXT,
    measured_bitrate_bps REAL, input_peak_dbfs REAL, input_over_full_scale INTEGER
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
CREATE TABLE IF NOT EXISTS variant_records (
    codec_spec TEXT PRIMARY KEY, record TEXT NOT NULL, record_version INTEGER NOT NULL
);
"""
#: ``PRAGMA user_version`` of a store this version writes. 1: before ``variant_records`` (stores of older
#: versions say 0); 2: one :class:`~evalkit.codecs.records.VariantRecord` per planned variant, written at plan
#: time. Opening an older store for writing migrates it (tables and columns added); its records are written by
#: the next run's plan, and readers compute the missing ones on open (:mod:`evalkit.runner.reader`).
SCHEMA_VERSION = 2
ADDED_COLUMNS = {  # columns that stores written by older versions lack
    "units": {"settings": "TEXT", "measured_bitrate_bps": "REAL", "input_peak_dbfs": "REAL",
              "input_over_full_scale": "INTEGER"},
    "results": {"settings": "TEXT"}}


class StoreError(UserError):
    """The store or a run file cannot be read or written (corrupt, disk full, not writable): one line that
    names the file; units already stored are kept."""


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: ``OSError`` ENOSPC/EDQUOT, SQLite's
    SQLITE_FULL ("database or disk is full"), or libsndfile's write error while the disk has no space left."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return "No space left" in str(exc)


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing folder); ``None`` if unknown."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _no_space_left(path: Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no space left (libsndfile and SQLite's ``disk I/O
    error`` hide the errno)."""
    free = _free_bytes(path)
    return free is not None and free < 1 << 20


def write_failure(path: str | Path, exc: BaseException, kept_units: int | None = None) -> StoreError:
    """The one-line error for a failed write of ``path`` (the store or a cache or export file)."""
    if is_disk_full(exc) or not isinstance(exc, OSError | sqlite3.Error) and _no_space_left(Path(path)):
        cause = "the disk is full (no space left on device)"
    elif isinstance(exc, OSError):
        cause = exc.strerror or str(exc)
    else:
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    kept = "" if kept_units is None else (f"; every unit stored so far is kept ({kept_units} from this run): free "
                                          f"space and rerun to resume")
    return StoreError(f"{path}: cannot write ({cause}){kept}")


def store_intact(path: str | Path) -> bool | None:
    """Whether the store ``path`` passes SQLite's ``PRAGMA quick_check`` (opened read-only); ``None`` when it
    cannot be opened to check (missing or unreadable).

    Where SQLite cannot open it read-only as usual (on a full disk it cannot create or grow the ``-shm`` file),
    the main file alone is checked (``immutable``), without rows still in its ``-wal`` file.
    """
    path = Path(path)
    try:
        with read_store(path) as db:
            return _quick_check(db)
    except sqlite3.OperationalError:
        pass
    except sqlite3.DatabaseError:  # "file is not a database", "database disk image is malformed"
        return False
    if not path.is_file():
        return None
    try:
        db = _probe(f"file:{path.resolve()}?immutable=1")
    except sqlite3.OperationalError:  # cannot open or read it: says nothing about its contents
        return None
    except sqlite3.DatabaseError:
        return False
    try:
        return _quick_check(db)
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError:
        return False
    finally:
        db.close()


def _quick_check(db: sqlite3.Connection) -> bool:
    return [row[0] for row in db.execute("PRAGMA quick_check")] == ["ok"]


def store_failure(path: str | Path, exc: sqlite3.Error, kept_units: int | None = None) -> StoreError:
    """The one-line error for an SQLite error on the run store ``path``: full disk, not writable, damaged, or
    another cause. Only a store that fails SQLite's integrity check is called unreadable (and ``--fresh``
    suggested); a full disk is named as such even where SQLite reports it as a ``disk I/O error``."""
    if is_disk_full(exc) or isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
        return write_failure(path, exc, kept_units)
    path = Path(path)
    intact = store_intact(path)
    if intact is False:
        return StoreError(f"{path}: not a readable evalkit store ({exc}); move it away, or rerun with --fresh to "
                          f"start the run folder over")
    state = {True: "; the store passes SQLite's integrity check", None: ""}[intact]
    kept = "" if kept_units is None else f"; every unit stored so far is kept ({kept_units} from this run)"
    if _no_space_left(path):  # SQLite cannot grow its -wal/-shm files: "disk I/O error", not SQLITE_FULL
        free = _free_bytes(path.parent)
        return StoreError(f"{path.parent}: the disk is full (no space left on device, {free // 1024} KiB free): "
                          f"cannot use the store {path.name} ({exc}){state}{kept}: free space and rerun to resume")
    return StoreError(f"{path}: cannot use the store ({exc}){state}{kept}: fix the cause and rerun to resume")


EXPORTED_PLAN_NAME = "exported_plan.json"  # the unit keys of the plan the exports of a run folder describe


def write_exported_plan(run_dir: str | Path, unit_keys: Iterable[str]) -> Path:
    """Record, beside the exports, which plan they describe (atomically; written after them)."""
    path = Path(run_dir) / EXPORTED_PLAN_NAME
    tmp = temporary_path(path)
    tmp.write_text(json.dumps({"unit_keys": sorted(unit_keys)}))
    os.replace(tmp, path)
    return path


def exported_plan(run_dir: str | Path) -> list[str] | None:
    """The unit keys of the plan the run folder's exports describe; ``None`` for folders written before this
    was recorded (readers then fall back to the store's ``current_plan``, the latest run's plan, which a killed
    rerun with another config leaves different from the exports)."""
    path = Path(run_dir) / EXPORTED_PLAN_NAME
    try:
        return list(json.loads(path.read_text())["unit_keys"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: malformed ({exc})") from None


def stored_path(path: str | Path, run_dir: str | Path) -> str:
    """``path`` as the store keeps it: relative to ``run_dir`` when inside it (POSIX), else absolute.

    >>> stored_path("/runs/a/cache/decoded/k.wav", "/runs/a"), stored_path("/data/x.wav", "/runs/a")
    ('cache/decoded/k.wav', '/data/x.wav')
    """
    path, run_dir = Path(os.path.abspath(path)), Path(os.path.abspath(run_dir))
    return path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)


def resolve_stored(value: str | None, run_dir: str | Path) -> Path | None:
    """A stored cache path as a usable path: relative ones are taken from ``run_dir``; an absolute one (as
    older versions stored them) that no longer exists, because the folder moved, is looked up under the same
    ``cache/<kind>/<file>`` of ``run_dir``."""
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        return Path(run_dir) / path
    if not path.exists() and len(path.parts) >= 3 and path.parts[-3] == "cache":
        moved = Path(run_dir).joinpath(*path.parts[-3:])
        if moved.exists():
            return moved
    return path


@contextmanager
def read_store(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a run store, also in a folder this process cannot write.

    SQLite's read-only mode still creates the ``-shm`` file of a WAL database beside it; where the folder is
    not writable the store is opened ``immutable`` (exact when no ``-wal`` file is left) or, when a killed run
    left a ``-wal`` file with committed rows in it, from a private copy of both files.

    Raises:
        sqlite3.Error: not a database (``DatabaseError``), missing or unreadable (``OperationalError``).
    """
    path = Path(path).resolve()
    wal = path.with_name(path.name + "-wal")
    scratch = None
    try:
        try:
            db = _probe(f"file:{path}?mode=ro")
        except sqlite3.OperationalError:
            if os.access(path.parent, os.W_OK) and _can_create(path.parent) or not path.is_file():
                raise
            if wal.is_file() and wal.stat().st_size > 0:
                scratch = Path(tempfile.mkdtemp(prefix="evalkit-store-"))
                shutil.copy2(path, scratch / path.name)
                shutil.copy2(wal, scratch / wal.name)
                db = _probe(f"file:{scratch / path.name}?mode=ro")
            else:
                db = _probe(f"file:{path}?immutable=1")
        try:
            yield db
        finally:
            db.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _probe(uri: str) -> sqlite3.Connection:
    db = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file now, not at the first query
    except sqlite3.Error:
        db.close()
        raise
    return db


def _can_create(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (``os.access`` says yes to root on a read-only mount)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".evalkit-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


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
    input_peak_dbfs: float | None = None  # the input's sample peak (0 dBFS = full scale ±1.0)
    input_over_full_scale: bool | None = None  # some input sample has |x| > 1.0 (None: stored before this existed)


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
    """One SQLite file; only the coordinating process writes to it (while units run, from its writer thread
    alone: the connection may be used by one thread at a time, not only the one that opened it)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        if self.db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_unit(self, unit: UnitRow, results: Iterable[ResultRow], variant_info: str | None = None) -> None:
        """The unit row and all its result rows (and the variant's info, once), atomically."""
        self.write_units([(unit, results, variant_info)])

    def write_units(self, units: Iterable[tuple[UnitRow, Iterable[ResultRow], str | None]]) -> None:
        """Several units as :meth:`write_unit` writes one, all in one transaction."""
        variants, unit_rows, result_rows = [], [], []
        for unit, results, variant_info in units:
            if variant_info is not None:
                variants.append((unit.codec_spec, variant_info))
            row = [getattr(unit, name) for name in _UNIT_FIELDS]  # flat rows: no deep copy as asdict makes
            row[_UNIT_STATUS] = str(unit.status)
            unit_rows.append(row)
            for r in results:
                row = [getattr(r, name) for name in _RESULT_FIELDS]
                if math.isnan(r.value):
                    row[_RESULT_VALUE] = None
                result_rows.append(row)
        with self.db:
            if variants:
                self.db.executemany("INSERT OR REPLACE INTO variants (codec_spec, info) VALUES (?, ?)", variants)
            self.db.executemany(_insert_sql("units", _UNIT_FIELDS), unit_rows)
            if result_rows:
                self.db.executemany(_insert_sql("results", _RESULT_FIELDS), result_rows)

    def write_records(self, records: Iterable[tuple[str, str, int]]) -> None:
        """Store variant records, as (codec spec, record JSON, record version), replacing older ones."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO variant_records VALUES (?, ?, ?)", list(records))

    def set_current_plan(self, unit_keys: Iterable[str]) -> None:
        """Record the unit keys of the latest run's plan (readers such as listening tests join on it)."""
        with self.db:
            self.db.execute("DELETE FROM current_plan")
            self.db.executemany("INSERT OR IGNORE INTO current_plan VALUES (?)", [(k,) for k in unit_keys])

    def unit(self, unit_key: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM units WHERE unit_key = ?", (unit_key,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None

    def units(self) -> dict[str, dict]:
        """Every unit row by its key."""
        return {row["unit_key"]: row for row in self.query("SELECT * FROM units")}

    def all_done_results(self) -> dict[str, set[str]]:
        """The result keys stored for each unit key."""
        done: dict[str, set[str]] = {}
        for unit_key, result_key in self.db.execute("SELECT unit_key, result_key FROM results"):
            done.setdefault(unit_key, set()).add(result_key)
        return done

    def done_results(self, unit_key: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT result_key FROM results WHERE unit_key = ?", (unit_key,))}

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        cur = self.db.execute(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


_UNIT_FIELDS = tuple(f.name for f in fields(UnitRow))
_UNIT_STATUS = _UNIT_FIELDS.index("status")
_RESULT_FIELDS = tuple(f.name for f in fields(ResultRow))
_RESULT_VALUE = _RESULT_FIELDS.index("value")


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


@functools.cache
def field_names(kind: type) -> tuple[str, ...]:
    """The field names of dataclass type ``kind``, in order (looked up once per type)."""
    return tuple(f.name for f in fields(kind))


def _json_default(obj):
    """What :func:`to_json` makes of a value json cannot write: a dataclass record its fields, anything else its
    text."""
    kind = type(obj)
    if hasattr(kind, "__dataclass_fields__"):
        return {name: getattr(obj, name) for name in field_names(kind)}
    return str(obj)


def to_json(obj) -> str:
    """``obj`` (a dataclass record, or plain data) as JSON; values JSON has no type for are written as text.

    The text of ``json.dumps(dataclasses.asdict(obj), default=str)``, without its deep copies: the fields of
    records go to json's own encoder as they are (a unit's records are written once per unit)."""
    return json.dumps(obj, default=_json_default)
