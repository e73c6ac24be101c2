"""evalkit: compare neural audio codecs fairly — objective metrics, listening tests, reports.

The Python API (README, "Python API"; :mod:`evalkit.api`): :func:`score`, :func:`build_codec`, :func:`run`,
:func:`load_run`, :func:`load_plugins` (``build_codec``, ``run`` and ``score`` also take ``plugins=[...]``), and
the classes to subclass or build a plugin codec with (``Codec``, ``CodecFamily``, ``Param``, ``Encoded``) or
declare a plugin metric with (``MetricPlugin``, ``MetricFailure``). They are imported on first use, so
``import evalkit`` loads no torch, scipy or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names → the module that defines them (imported by the first access, see __getattr__).
_LAZY = {
    "score": "evalkit.api", "build_codec": "evalkit.api", "run": "evalkit.api", "load_run": "evalkit.api",
    "load_plugins": "evalkit.api", "Run": "evalkit.api", "Scores": "evalkit.api", "RunNotFound": "evalkit.api",
    "Codec": "evalkit.codecs", "AudioTransform": "evalkit.codecs", "CodecFamily": "evalkit.codecs",
    "CodecSpec": "evalkit.codecs", "Encoded": "evalkit.codecs", "Param": "evalkit.codecs",
    "MetricPlugin": "evalkit.metrics", "MetricFailure": "evalkit.metrics",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["__version__", *_LAZY]
