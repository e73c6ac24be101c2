"""Batch evaluation: config → plan → work units → store (SQLite) → exports."""

from evalkit.runner.config import ConfigError, RunConfig, load_config, validate_config
from evalkit.runner.run import RunInterrupted, RunReport, run_evaluation

__all__ = ["ConfigError", "RunConfig", "RunInterrupted", "RunReport", "load_config", "run_evaluation",
           "validate_config"]
