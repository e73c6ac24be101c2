"""What a listening test takes from an evaluation run: its decoded units, read through the run's
:class:`~evalkit.runner.reader.RunReader` (the one reader of run folders, which also finds decoded audio).

Everything the listening test needs from a run goes through :func:`read_run`, which returns plain records.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from evalkit.listening.model import ListenError


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
    channel_policy: str = "per_channel"  # the run's: under "mono" every codec coded the items' mono mix

    @property
    def specs(self) -> list[str]:
        return sorted({u.codec_spec for u in self.units})


def read_run(run_dir: str | Path) -> RunContents:
    """Decoded units of a run, read-only.

    Raises:
        ListenError: no run store in ``run_dir``, or one without a ``units`` table.
    """
    from evalkit.labels import coded_per_channel
    from evalkit.runner.reader import RunReader

    reader = RunReader(run_dir)
    run_dir, db_path = reader.run_dir, reader.store_path
    if not reader.has_store:
        raise ListenError(f"{db_path}: no run store (run `evalkit run CONFIG` first)")
    try:
        rows = reader.all_units()  # read-only, also in a folder that cannot be written
    except sqlite3.DatabaseError as exc:
        raise ListenError(f"{db_path}: not a readable run store ({exc})") from None
    units, unavailable = [], {}
    for row in rows:
        spec = row["codec_spec"]
        if row["status"] != "ok":
            unavailable.setdefault(spec, f"{row['status']}: {row['reason']}")
            continue
        decoded = reader.decoded_path(row)
        if decoded is None:
            unavailable.setdefault(spec, f"decoded audio missing for item {row['item_id']}")
            continue
        item_path = reader.item_path(row)
        if item_path is None or not item_path.is_file():
            unavailable.setdefault(spec, f"reference audio missing for item {row['item_id']}: {row['item_path']}")
            continue
        per_channel = coded_per_channel(row.get("reconstruction"))
        units.append(RunUnit(str(row["item_id"]), item_path, str(row["category"] or ""), spec, decoded, per_channel))
    for spec in {u.codec_spec for u in units}:
        unavailable.pop(spec, None)
    policy = (reader.provenance().get("config") or {}).get("channel_policy") or "per_channel"
    return RunContents(run_dir, tuple(units), unavailable, policy)
