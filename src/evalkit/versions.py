"""Installed package versions, as recorded with stored values and in run provenance."""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache  # read once per process: planning a run asks for every metric's library per result key
def installed_version(dist: str, missing: str = "not installed") -> str:
    """The installed version of PyPI distribution ``dist``, or ``missing`` when it is not installed.

    >>> installed_version("surely-not-a-distribution-name", missing="none")
    'none'
    """
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return missing
