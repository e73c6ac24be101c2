"""Writes ``rate_quality.csv`` next to a run's other exports (called by :mod:`evalkit.runner.exports`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit.analysis.compare import RATE_QUALITY_CSV
from evalkit.analysis.rate_quality import rate_quality_table


def write_rate_quality(summary: pd.DataFrame, output: Path) -> Path:
    """``output/rate_quality.csv`` from the run summary; returns its path."""
    path = Path(output) / RATE_QUALITY_CSV
    rate_quality_table(summary).to_csv(path, index=False)
    return path
