"""A dataset's sources as read from disk: a folder's audio files, and manifest CSVs (as spreadsheets save them).

Without ``dataset.glob`` a folder's items are its files with an audio extension (:data:`AUDIO_EXTENSIONS`, any case;
subfolders not entered); the other files are named in one line (:func:`skipped_note`). A manifest is UTF-8 text
(a byte-order mark is ignored) with a ``file`` column; its rows are numbered as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evalkit.audio import AUDIO_EXTENSIONS

DESCRIPTIONS = "MANIFEST.csv"  # in a dataset folder: category and text of its files (not an item)


def default_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's files when no glob is given: (audio files by :data:`~evalkit.audio.AUDIO_EXTENSIONS`, any
    case; the other files), each sorted, subfolders not entered. ``MANIFEST.csv`` (the items' descriptions) is
    neither."""
    audio, other = [], []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != DESCRIPTIONS:
            (audio if path.suffix.lower() in AUDIO_EXTENSIONS else other).append(path)
    return audio, other


def skipped_note(folder: Path, skipped: list[Path], shown: int = 8) -> str:
    """The one line naming the non-audio files a folder's default listing left out (the first ``shown``)."""
    names = ", ".join(p.name for p in skipped[:shown]) + (f" and {len(skipped) - shown} more"
                                                          if len(skipped) > shown else "")
    return f"skipped {len(skipped)} non-audio file{'s' if len(skipped) > 1 else ''} in {folder}: {names}"


def manifest_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """A manifest CSV's header and rows; each row with its number as a spreadsheet shows it (the header is row
    1) and its cells by column (``None`` past a short row's end). Blank rows are left out; a UTF-8 byte-order
    mark (as Excel writes) is not part of the first column's name.

    Raises:
        UnicodeDecodeError: the file is not UTF-8 text.
        OSError: it cannot be read.
    """
    with open(path, newline="", encoding="utf-8-sig") as fh:
        records = list(csv.reader(fh))
    header = records[0] if records else []
    rows = [(number, {name: record[k] if k < len(record) else None for k, name in enumerate(header)})
            for number, record in enumerate(records[1:], start=2) if record]
    return header, rows


def empty_file_rows(rows: list[tuple[int, dict[str, str | None]]], shown_rows: int = 5) -> str | None:
    """The problem of manifest rows with an empty ``file`` cell, naming their row numbers; ``None`` if none."""
    empty = [number for number, row in rows if not (row.get("file") or "").strip()]
    if not empty:
        return None
    numbers = ", ".join(map(str, empty[:shown_rows])) + (f" and {len(empty) - shown_rows} more"
                                                         if len(empty) > shown_rows else "")
    return f"row{'s' if len(empty) > 1 else ''} {numbers}: empty 'file' (the header is row 1)"


def manifest_problems(manifest: Path, category_column: str | None = None) -> list[str]:
    """Problems of a manifest known before any item is read (missing, not UTF-8, no `file` column, no
    ``category_column`` column, empty `file` cells), one line each naming ``dataset.manifest``."""
    if not manifest.is_file():
        return [f"dataset.manifest: {manifest} not found"]
    try:
        header, rows = manifest_rows(manifest)
    except UnicodeDecodeError as exc:
        return [f"dataset.manifest: {manifest}: {not_utf8(exc)}"]
    if "file" not in header:
        return [f"dataset.manifest: {manifest.name} has no 'file' column (columns: {', '.join(header) or 'none'})"]
    if category_column is not None and category_column not in header:
        return [f"dataset.category_column: {manifest.name} has no {category_column!r} column (columns: "
                f"{', '.join(header)})"]
    if (empty := empty_file_rows(rows)) is not None:
        return [f"dataset.manifest: {manifest}: {empty}"]
    return []


def folder_problems(folder: Path, glob: str | None) -> list[str]:
    """Problems of a dataset folder (missing; no file matching ``glob``; without a glob, no audio file)."""
    if not folder.is_dir():
        return [f"dataset.folder: {folder} is not a folder"]
    if glob is not None:
        return [] if any(folder.glob(glob)) else [f"dataset.glob: {glob!r} matches no file in {folder}"]
    if not default_files(folder)[0]:
        return [f"dataset.folder: {folder} holds no audio file ({' '.join(AUDIO_EXTENSIONS)}; give dataset.glob "
                f"for others or for subfolders)"]
    return []


def not_utf8(exc: UnicodeDecodeError) -> str:
    """The problem line for a file that is not UTF-8 text."""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
