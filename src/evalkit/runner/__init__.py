"""Batch evaluation: config → plan → work units → store (SQLite) → exports.

The names below load on first use, so a worker process that imports only :mod:`evalkit.runner.work` does not
import the config's validation (pydantic) and the coordinator's modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalkit.runner.config import ConfigError, RunConfig, load_config, validate_config
    from evalkit.runner.run import RunInterrupted, RunReport, run_evaluation

_HOMES = {"ConfigError": "config", "RunConfig": "config", "load_config": "config", "validate_config": "config",
          "RunInterrupted": "run", "RunReport": "run", "run_evaluation": "run"}
__all__ = ["ConfigError", "RunConfig", "RunInterrupted", "RunReport", "load_config", "run_evaluation",
           "validate_config"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
