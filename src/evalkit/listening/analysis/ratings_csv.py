"""Ratings as a long-format CSV: ``listen analyze --ratings`` reads ``assessor,item,condition,score``; the admin page
exports the stored ratings or AB/ABX answers in the same shape."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path

from evalkit.listening.model import ListenError, Rating

CSV_COLUMNS = ("assessor", "item", "condition", "score")
EXPORT_COLUMNS = ("trial", "time_on_trial_s", "listened_s", "listened_fraction")  # the export's, ignored on reading


def load_ratings_csv(path: str | Path) -> list[Rating]:
    """Read ``assessor,item,condition,score`` (header required, in any order; no other columns but the listening
    columns of the test's own export, which are ignored).

    Raises:
        ListenError: missing, binary or non-UTF-8 file, unknown or missing columns, empty fields, scores outside
            0..100, no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ListenError(f"{path}: ratings file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            ratings = _read_rows(path, csv.DictReader(f))
    except UnicodeDecodeError:
        raise ListenError(f"{path}: not a UTF-8 text CSV file (binary or another encoding)") from None
    except csv.Error as exc:
        raise ListenError(f"{path}: not a readable CSV file ({exc})") from None
    if not ratings:
        raise ListenError(f"{path}: no ratings")
    seen = set()
    for r in ratings:
        key = (r.assessor, r.item, r.condition)
        if key in seen:
            raise ListenError(f"{path}: assessor {r.assessor} rated item {r.item} / {r.condition} twice")
        seen.add(key)
    return ratings


def _read_rows(path: Path, reader: csv.DictReader) -> list[Rating]:
    header = [h.strip() for h in reader.fieldnames or []]
    if any("\x00" in h for h in header):
        raise ListenError(f"{path}: not a UTF-8 text CSV file (binary or another encoding)")
    unknown = [h for h in header if h not in CSV_COLUMNS + EXPORT_COLUMNS]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if unknown or missing:
        raise ListenError(f"{path}: expected columns {','.join(CSV_COLUMNS)}"
                          + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                          + (f"; missing: {', '.join(missing)}" if missing else ""))
    ratings = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        empty = [c for c in CSV_COLUMNS if not row.get(c)]
        if empty:
            raise ListenError(f"{path}: line {line}: empty {empty[0]}")
        try:
            score = float(row["score"])
        except ValueError:
            raise ListenError(f"{path}: line {line}: score {row['score']!r} is not a number") from None
        if not (math.isfinite(score) and 0 <= score <= 100):
            raise ListenError(f"{path}: line {line}: score {row['score']} is outside 0..100")
        ratings.append(Rating(row["assessor"], row["item"], row["condition"], score))
    return ratings


def export_csv(records: list) -> str:
    """Ratings (``assessor,item,condition,score``, the format ``--ratings`` reads) or AB/ABX choices as CSV;
    records are dataclasses or dicts (:meth:`~evalkit.listening.storage.ListeningStore.export_rows`: with the
    trial's listening columns, NaN written as an empty field)."""
    import io

    rows = [r if isinstance(r, dict) else asdict(r) for r in records]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
                         for r in rows)
    return out.getvalue()
