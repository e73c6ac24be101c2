"""Content hashes shared by the run keys and checkpoint identities."""

from __future__ import annotations

import hashlib
from pathlib import Path

READ_CHUNK = 1 << 20


def read_sha256(fh) -> tuple[str, bytes]:
    """Hex SHA-256 of an open binary file from its position to its end, read in 1 MiB chunks, and the first
    chunk (``b""`` for no bytes): what a caller that also parses the file's header needs, from one read."""
    digest, head = hashlib.sha256(), b""
    while chunk := fh.read(READ_CHUNK):
        head = head or chunk
        digest.update(chunk)
    return digest.hexdigest(), head


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as fh:
        return read_sha256(fh)[0]
