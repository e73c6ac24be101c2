"""Holm's adjustment against hand values, statsmodels and a direct step-down loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from evalkit.stats.multiple import holm


def _step_down(p: list[float]) -> list[float]:
    """Holm written out: the i-th smallest p times (m − i), running maximum, capped at 1."""
    order = sorted(range(len(p)), key=lambda k: p[k])
    out, running = [0.0] * len(p), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, p[k] * (len(p) - rank)))
        out[k] = running
    return out


def test_holm_hand_values():
    # sorted 0.001, 0.01, 0.02, 0.5 (m = 4): 0.004, 0.03, 0.04, 0.5
    assert holm([0.02, 0.5, 0.001, 0.01]) == [0.04, 0.5, 0.004, 0.03]
    assert holm([0.6, 0.5]) == [1.0, 1.0]  # 0.5·2 = 1, capped
    assert holm([]) == []


def test_nan_is_kept_and_not_counted():
    adjusted = holm([math.nan, 0.01, 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1:] == [0.02, 0.02]  # m = 2


def test_holm_equals_statsmodels_and_the_step_down_loop():
    p = list(np.random.default_rng(4).uniform(0, 0.2, 15))
    p[3] = p[7]  # a tie
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-11)
    assert holm(p) == pytest.approx(_step_down(p), rel=1e-11)
