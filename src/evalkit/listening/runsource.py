"""The one place that reads an evaluation run (``runs/<name>/results.sqlite`` and ``cache/decoded``).

The runner's store evolves (item ids, key fields); everything the listening test needs from it goes through
:func:`read_run`, which returns plain records.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from evalkit.listening.model import ListenError

RUN_STORE = "results.sqlite"


@dataclass(frozen=True)
class RunUnit:
    """One decoded (item, codec variant) of a run."""

    item_id: str
    item_path: Path  # the original (reference) audio
    category: str
    codec_spec: str
    decoded_path: Path
    per_channel: bool = False  # a mono codec coded this item channel by channel: its nominal rate is per channel


@dataclass(frozen=True)
class RunContents:
    run_dir: Path
    units: tuple[RunUnit, ...]  # status ok, decoded audio present
    unavailable: dict[str, str]  # codec spec -> why it has no decoded audio (skipped, failed, cache missing)

    @property
    def specs(self) -> list[str]:
        return sorted({u.codec_spec for u in self.units})


def _resolve(path: str | None, run_dir: Path) -> Path | None:
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        return p
    for base in (Path.cwd(), run_dir, *run_dir.resolve().parents):
        if (base / p).exists():
            return base / p
    return p


def read_run(run_dir: str | Path) -> RunContents:
    """Decoded units of a run, read-only.

    Raises:
        ListenError: no run store in ``run_dir``, or one without a ``units`` table.
    """
    run_dir = Path(run_dir)
    db_path = run_dir / RUN_STORE
    if not db_path.is_file():
        raise ListenError(f"{db_path}: no run store (run `evalkit run CONFIG` first)")
    from evalkit.labels import coded_per_channel
    from evalkit.runner.store import read_store  # read-only, also in a folder that cannot be written

    try:
        with read_store(db_path) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM units ORDER BY item_id, codec_spec").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ListenError(f"{db_path}: not a readable run store ({exc})") from None
    units, unavailable = [], {}
    for row in rows:
        spec = row["codec_spec"]
        keys = row.keys()
        if row["status"] != "ok":
            unavailable.setdefault(spec, f"{row['status']}: {row['reason']}")
            continue
        decoded = _resolve(row["decoded_path"], run_dir) if "decoded_path" in keys else None
        if decoded is None or not decoded.is_file():
            decoded = run_dir / "cache" / "decoded" / f"{row['unit_key']}.wav"
        if not decoded.is_file():
            unavailable.setdefault(spec, f"decoded audio missing for item {row['item_id']}")
            continue
        item_path = _resolve(row["item_path"], run_dir)
        if item_path is None or not item_path.is_file():
            unavailable.setdefault(spec, f"reference audio missing for item {row['item_id']}: {row['item_path']}")
            continue
        per_channel = coded_per_channel(row["reconstruction"] if "reconstruction" in keys else None)
        units.append(RunUnit(str(row["item_id"]), item_path, str(row["category"] or ""), spec, decoded, per_channel))
    for spec in {u.codec_spec for u in units}:
        unavailable.pop(spec, None)
    return RunContents(run_dir, tuple(units), unavailable)
