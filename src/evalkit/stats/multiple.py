"""Multiple comparisons: Holm's step-down adjustment, NaN-aware (checked against statsmodels' ``multipletests``)."""

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
    # written out rather than calling statsmodels: its multipletests runs gc.collect() on every call, which costs
    # 0.2 s in a process holding a large heap (a report, a power simulation) for a few multiplications
    p = np.asarray(pvalues, dtype=float).reshape(-1)
    out = np.full(len(p), math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(f"{v:.12g}") for v in out]  # 0.03, not 0.030000000000000002
