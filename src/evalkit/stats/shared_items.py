"""Means that can stand side by side: per metric, every variant's mean over the same items.

A variant that failed on an item has no value there, so its mean over its own items is over fewer (often the
easier) items than its neighbours'. The rule, per metric:

* the metric's **compared variants** are those with at least one finite value (a variant that failed
  everywhere has no mean to compare);
* its **items** (``n_any``) are those some compared variant scored; its **shared items** (``n_shared``) those
  every compared variant scored;
* each compared variant's ``mean_shared`` and 95 % CI (:func:`evalkit.stats.bootstrap.mean_ci`, seeded) are
  over the shared items: every such mean of the metric is over the same items;
* a variant is ``complete`` when it scored every item of the metric; one that is not is marked where its mean
  is shown and is never the best of its column (it failed where others did not).

Anchors, the reference pseudo-variant and random-weight codecs are compared variants too: they are shown in the
same columns. An item every variant failed on is no variant's disadvantage: it is in no variant's items.

>>> rows = pd.DataFrame({"item_id": ["x", "y", "z"] * 2, "codec_spec": ["a"] * 3 + ["b"] * 3, "metric": "m",
...                      "value": [1.0, 2.0, 3.0, 5.0, float("nan"), 7.0]})
>>> t = shared_item_means(rows, seed=0)
>>> print(t[["codec_spec", "mean_shared", "n_shared", "n_scored", "n_any", "complete"]].to_string(index=False))
codec_spec  mean_shared  n_shared  n_scored  n_any  complete
         a          2.0         2         3      3      True
         b          6.0         2         2      3     False
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evalkit.stats.bootstrap import mean_ci

COLUMNS = ["codec_spec", "metric", "mean_shared", "ci_low_shared", "ci_high_shared", "n_shared", "n_scored", "n_any",
           "complete"]


def shared_item_means(values: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per variant × metric: the mean over the metric's shared items and whether the variant scored them all.

    Args:
        values: long rows with ``item_id``, ``codec_spec``, ``metric`` and ``value`` (NaN for a failure).
        seed: seed of the CI's resampling (the run's ``seed``).

    Returns:
        :data:`COLUMNS`, one row per (variant, metric) of ``values``: ``mean_shared`` and its 95 % CI
        (``ci_low_shared``, ``ci_high_shared``) in the metric's unit over the ``n_shared`` items every compared
        variant scored; ``n_scored`` the items this variant scored, ``n_any`` those any compared variant
        scored; ``complete`` whether ``n_scored == n_any``. A variant without values has NaN means,
        ``n_shared`` 0 and ``complete`` False.
    """
    rows = []
    if values.empty:
        return pd.DataFrame(columns=COLUMNS)
    finite = values[np.isfinite(values["value"].astype(float))]
    for metric, group in values.groupby("metric", sort=True):
        scored = {spec: frozenset(g["item_id"]) for spec, g in finite[finite["metric"] == metric].groupby(
            "codec_spec")}
        any_items = frozenset().union(*scored.values()) if scored else frozenset()
        shared = frozenset.intersection(*scored.values()) if scored else frozenset()
        for spec, own in group.groupby("codec_spec", sort=True):
            mine = scored.get(spec, frozenset())
            if not mine:
                rows.append([spec, metric, math.nan, math.nan, math.nan, 0, 0, len(any_items), False])
                continue
            on_shared = own[own["item_id"].isin(shared)].drop_duplicates("item_id").sort_values("item_id")
            x = on_shared["value"].to_numpy(float)
            low, high = mean_ci(x, seed)
            rows.append([spec, metric, float(x.mean()) if len(x) else math.nan, low, high, len(x), len(mine),
                         len(any_items), mine >= any_items])
    return pd.DataFrame(rows, columns=COLUMNS)
