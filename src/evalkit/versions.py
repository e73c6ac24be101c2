"""Installed package versions, as recorded with stored values and in run provenance."""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache  # read once per process: planning a run asks for every metric's library per result key
def installed_version(dist: str, missing: str = "not installed") -> str:
    """The installed version of PyPI distribution ``dist``, or ``missing`` when it is not installed.

    ``"evalkit"`` (the library of evalkit's own metrics) is this running package, whatever its distribution is
    named (``codec-evalkit``) and however it is installed.

    >>> installed_version("surely-not-a-distribution-name", missing="none")
    'none'
    >>> import evalkit
    >>> installed_version("evalkit") == evalkit.__version__
    True
    """
    if dist == "evalkit":
        from evalkit import __version__

        return __version__
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return missing
