"""What listing learnt about each dataset file (its header and SHA-256), kept in the run folder between runs, so
that a resumed run reads only the files that changed.

An entry is used only when the file's size, modification and status-change times (ns), inode and device all
equal the recorded ones, and its status change lies more than :data:`MARGIN_NS` before the entry was recorded:
a file rewritten within the file system's timestamp granularity after it was read could otherwise keep its
times (such a file is read again, and its next entry is used). Any write changes the status-change time, which
no program can set, so a file rewritten with its size and modification time restored is read again too. A
moved, copied or touched file is read again. Entries are kept per versions of what reads headers (evalkit,
libsndfile, PyAV): another version reads every file again. ``--fresh`` deletes the cache; an unreadable cache
is ignored and rewritten.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import soundfile as sf

from evalkit.runner.layout import temporary_path
from evalkit.versions import installed_version

log = logging.getLogger(__name__)
MARGIN_NS = 2_000_000_000  # coarser than any file system's timestamps evalkit meets (FAT: 2 s)
Header = tuple[int | None, int | None, float]  # (sample rate, channels, seconds)
_SCHEMA = """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    ino INTEGER, dev INTEGER, read_ns INTEGER, rate INTEGER, channels INTEGER, seconds REAL, sha256 TEXT)"""


def decoders() -> str:
    """What a file's header comes from, with versions: evalkit's WAV parser, libsndfile and PyAV."""
    return (f"evalkit={installed_version('evalkit')}|libsndfile={sf.__libsndfile_version__}|"
            f"av={installed_version('av', missing='none')}")


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


class ListingCache:
    """Entries of one run folder's cache file: :meth:`lookup` during listing (from several threads),
    :meth:`record` what was read, :meth:`save` once listing is done."""

    def __init__(self, path: Path, read: bool = True):
        """The cache file ``path``, its entries read unless ``read`` is false (``--fresh``: every file is read)."""
        self.path = path
        self._known: dict[str, tuple] = {}
        self._new: dict[str, tuple] = {}
        self._used: set[str] = set()
        if read:
            self._load()

    @property
    def reused(self) -> int:
        """Files whose recorded entry was used."""
        return len(self._used)

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if stored.get("decoders") != decoders():
                    return
                for path, *rest in db.execute("SELECT path, size, mtime_ns, ctime_ns, ino, dev, read_ns, rate, "
                                              "channels, seconds, sha256 FROM files"):
                    self._known[path] = tuple(rest)
            finally:
                db.close()
        except (sqlite3.Error, ValueError) as exc:
            log.warning("%s: cannot read the listing cache (%s); every dataset file is read again", self.path, exc)
            self._known.clear()

    def lookup(self, path: Path, st: os.stat_result) -> tuple[Header, str] | None:
        """The recorded (header, SHA-256) of ``path`` when its status ``st`` shows it unchanged, else ``None``."""
        key = os.path.abspath(path)
        entry = self._known.get(key)
        if entry is None or entry[:5] != _identity(st) or entry[2] > entry[5] - MARGIN_NS:  # see the module
            return None
        self._used.add(key)
        return (entry[6], entry[7], entry[8]), entry[9]

    def record(self, path: Path, st: os.stat_result, read_ns: int, header: Header, sha256: str) -> None:
        """Remember what was read from ``path`` (status ``st`` taken before reading it, from ``read_ns``)."""
        self._new[os.path.abspath(path)] = (*_identity(st), read_ns, *header, sha256)

    def save(self) -> None:
        """Write the entries of this listing (used or recorded) into the cache file, replacing it; a cache that
        cannot be written is a note in the log, not an error (the next run reads the files again)."""
        if not self._new and self._used == self._known.keys():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(self.path)
            tmp.unlink(missing_ok=True)
            db = sqlite3.connect(tmp)
            try:
                with db:
                    db.executescript(_SCHEMA)
                    db.execute("INSERT INTO meta VALUES ('decoders', ?)", (decoders(),))
                    rows = {**{path: self._known[path] for path in self._used}, **self._new}
                    db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   ((path, *entry) for path, entry in rows.items()))
            finally:
                db.close()
            os.replace(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            log.warning("%s: cannot write the listing cache (%s)", self.path, exc)
        self._known = {**{path: self._known[path] for path in self._used}, **self._new}
        self._used, self._new = set(self._known), {}
