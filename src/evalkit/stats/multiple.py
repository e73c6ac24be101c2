"""Multiple comparisons: Holm's step-down adjustment (statsmodels ``multipletests``), NaN-aware."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: sorted ascending, ``p_(i) · (m − i)`` (i from 0), running maximum, ≤ 1
    (statsmodels ``multipletests(method="holm")``), rounded to 12 significant digits to drop float noise.

    NaN p-values are left NaN and do not count in m.

    >>> holm([0.01, 0.04, 0.03])  # 0.01·3 = 0.03; 0.03·2 = 0.06; max(0.04·1, 0.06) = 0.06
    [0.03, 0.06, 0.06]
    >>> holm([0.02, float("nan")])
    [0.02, nan]
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float).reshape(-1)
    out = np.full(len(p), math.nan)
    valid = ~np.isnan(p)
    if valid.any():
        out[valid] = multipletests(p[valid], method="holm")[1]
    return [float(f"{v:.12g}") for v in out]  # 0.03, not 0.030000000000000002
