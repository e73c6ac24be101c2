"""Per metric, every variant's mean over the items all variants with values scored (hand-computed values)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evalkit.stats.bootstrap import mean_ci
from evalkit.stats.shared_items import shared_item_means

NAN = math.nan


def _long(values: dict[tuple[str, str], list[float]], items=("a", "b", "c", "d", "e", "f")) -> pd.DataFrame:
    return pd.DataFrame([{"item_id": item, "codec_spec": spec, "metric": metric, "value": v}
                         for (spec, metric), column in values.items() for item, v in zip(items, column, strict=False)])


def test_means_are_over_the_items_every_variant_scored_per_metric():
    rows = _long({("x", "mel"): [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], ("y", "mel"): [2.0, NAN, 4.0, 5.0, 6.0, 9.0],
                  ("x", "pesq"): [1.0, 1.0, 2.0, 2.0, 3.0, 3.0], ("y", "pesq"): [4.0, 4.0, 4.0, 4.0, 4.0, 1.0]})
    t = shared_item_means(rows, seed=3).set_index(["codec_spec", "metric"])
    assert t.loc[("x", "mel"), "mean_shared"] == pytest.approx(np.mean([1, 3, 4, 5, 6]))  # b left out
    assert t.loc[("y", "mel"), "mean_shared"] == pytest.approx(np.mean([2, 4, 5, 6, 9]))
    assert t.loc[("x", "mel"), ["n_shared", "n_scored", "n_any"]].tolist() == [5, 6, 6]
    assert t.loc[("y", "mel"), ["n_shared", "n_scored", "n_any"]].tolist() == [5, 5, 6]
    assert bool(t.loc[("x", "mel"), "complete"]) and not bool(t.loc[("y", "mel"), "complete"])
    assert t.loc[("x", "pesq"), "n_shared"] == 6 and bool(t.loc[("y", "pesq"), "complete"])  # other metric: all
    assert (t.loc[("x", "mel"), "ci_low_shared"], t.loc[("x", "mel"), "ci_high_shared"]) == \
        mean_ci([1.0, 3.0, 4.0, 5.0, 6.0], seed=3)


def test_an_item_every_variant_failed_on_makes_no_variant_incomplete():
    rows = _long({("x", "m"): [1.0, NAN, 3.0], ("y", "m"): [2.0, NAN, 5.0]})
    t = shared_item_means(rows).set_index("codec_spec")
    assert t["complete"].tolist() == [True, True] and t["n_any"].tolist() == [2, 2]
    assert t["mean_shared"].tolist() == [2.0, 3.5]


def test_a_variant_without_values_takes_no_part_and_is_not_complete():
    rows = _long({("x", "m"): [1.0, 2.0, 3.0], ("broken", "m"): [NAN, NAN, NAN], ("y", "m"): [3.0, 3.0, 6.0]})
    t = shared_item_means(rows).set_index("codec_spec")
    assert t.loc["x", "n_shared"] == 3 and t.loc["y", "mean_shared"] == 4.0  # broken does not empty the set
    assert t.loc["broken", "n_shared"] == 0 and math.isnan(t.loc["broken", "mean_shared"])
    assert not bool(t.loc["broken", "complete"])


def test_disjoint_items_leave_nothing_shared():
    rows = _long({("x", "m"): [1.0, NAN], ("y", "m"): [NAN, 2.0]})
    t = shared_item_means(rows).set_index("codec_spec")
    assert t["n_shared"].tolist() == [0, 0] and t["mean_shared"].isna().all()
    assert t["complete"].tolist() == [False, False]
