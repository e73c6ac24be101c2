"""``rate_quality.csv``: written next to a run's other exports, read back by ``evalkit compare``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from evalkit.runner.compare_errors import CompareError
from evalkit.runner.rate_curves import rate_quality_table

RATE_QUALITY_CSV = "rate_quality.csv"


def write_rate_quality(summary: pd.DataFrame, output: Path, curves: Mapping[str, str]) -> Path:
    """``output/rate_quality.csv`` from the run summary (see :func:`rate_quality_table`; ``curves``: each codec
    spec's rate–quality curve, from its variant record); returns its path."""
    path = Path(output) / RATE_QUALITY_CSV
    rate_quality_table(summary, curves).to_csv(path, index=False)
    return path


def load_rate_quality(run_dir: str | Path) -> pd.DataFrame:
    """``RUN_DIR/rate_quality.csv`` as written by ``evalkit run``.

    Raises:
        CompareError: the folder or file does not exist.
    """
    path = Path(run_dir) / RATE_QUALITY_CSV
    if not path.is_file():
        raise CompareError(f"{path}: not found; `evalkit run CONFIG` writes it into the run's output folder")
    return pd.read_csv(path)
