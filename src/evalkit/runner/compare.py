"""``evalkit compare``: Bjøntegaard deltas of every family against an anchor family, over rate–quality rows.

>>> table = pd.DataFrame({"family": ["opus"] * 2 + ["x"] * 2, "codec_spec": list("abcd"), "metric": "m",
...                       "bitrate_kbps": [8.0, 16.0, 4.0, 8.0], "mean": [1.0, 2.0, 1.0, 2.0],
...                       "higher_is_better": True})
>>> result = compare(table, "m")
>>> result.anchor, result.families["x"].bd_rate_percent, result.families["x"].points
('opus', -50.0, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from evalkit.runner.compare_errors import CompareError
from evalkit.stats.bdrate import bd_quality, bd_rate

DEFAULT_ANCHOR = "opus"


@dataclass(frozen=True)
class FamilyDelta:
    """One family against the anchor: BD-rate (%), BD-quality (metric unit), its point count, why NaN, and why
    a defined value is doubtful (``*_flags``: non-monotonic curves, overlap under 75 %; see ``bdrate``)."""

    bd_rate_percent: float
    bd_quality: float
    points: int
    reason: str | None
    bd_rate_flags: tuple[str, ...] = ()
    bd_quality_flags: tuple[str, ...] = ()
    bd_rate_overlap: float = math.nan
    bd_quality_overlap: float = math.nan

    @property
    def flags(self) -> list[str]:
        """Every flag once, prefixed with the delta it concerns when only one of them has it."""
        out = []
        for flag in dict.fromkeys(self.bd_rate_flags + self.bd_quality_flags):
            both = flag in self.bd_rate_flags and flag in self.bd_quality_flags
            out.append(flag if both else f"{'BD-rate' if flag in self.bd_rate_flags else 'BD-quality'}: {flag}")
        return out


@dataclass(frozen=True)
class Comparison:
    metric: str
    anchor: str
    anchor_points: int
    higher_is_better: bool | None
    families: dict[str, FamilyDelta]

    def to_json(self) -> dict:
        """The ``--json`` object; NaN becomes ``null``."""
        def num(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {"metric": self.metric, "anchor": self.anchor,
                "families": {name: {"bd_rate_percent": num(d.bd_rate_percent), "bd_quality": num(d.bd_quality),
                                    "points": d.points, "reason": d.reason, "bd_rate_flags": list(d.bd_rate_flags),
                                    "bd_quality_flags": list(d.bd_quality_flags),
                                    "bd_rate_overlap": num(d.bd_rate_overlap),
                                    "bd_quality_overlap": num(d.bd_quality_overlap)}
                             for name, d in self.families.items()}}


def _curve(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["bitrate_kbps"].notna() & rows["mean"].notna()].sort_values("bitrate_kbps")


def compare(table: pd.DataFrame, metric: str, anchor: str | None = None) -> Comparison:
    """BD-rate and BD-quality of every family against ``anchor`` for one metric.

    Args:
        table: rate–quality rows (``family``, ``bitrate_kbps``, ``metric``, ``mean``, ``higher_is_better``).
        metric: metric name.
        anchor: anchor family; default ``opus``.

    Returns:
        :class:`Comparison`; a family with fewer than 2 points, or without overlap with the anchor, gets NaN and
        the reason (BD-rate's and BD-quality's reasons, when they differ, are both given); a doubtful value
        keeps its flags.

    Raises:
        CompareError: the metric or the anchor family is not in the table.
    """
    metrics = sorted(table["metric"].dropna().unique()) if not table.empty else []
    if metric not in metrics:
        raise CompareError(f"metric {metric!r} has no rate-quality points in this run; "
                           f"available: {', '.join(metrics) or 'none'}")
    rows = table[table["metric"] == metric]
    families = list(dict.fromkeys(rows["family"]))
    anchor = anchor or DEFAULT_ANCHOR
    if anchor not in families:
        raise CompareError(f"anchor family {anchor!r} has no points for {metric}; "
                           f"choose --anchor from: {', '.join(families)}")
    base = _curve(rows[rows["family"] == anchor])
    direction = rows["higher_is_better"].dropna()
    deltas = {}
    for family in families:
        if family == anchor:
            continue
        curve = _curve(rows[rows["family"] == family])
        args = (base["bitrate_kbps"], base["mean"], curve["bitrate_kbps"], curve["mean"])
        rate, quality = bd_rate(*args, labels=(anchor, family)), bd_quality(*args, labels=(anchor, family))
        reasons = list(dict.fromkeys(r for r in (rate.reason, quality.reason) if r))
        if len(reasons) == 2:
            reasons = [f"BD-rate: {rate.reason}", f"BD-quality: {quality.reason}"]
        deltas[family] = FamilyDelta(rate.value, quality.value, len(curve), "; ".join(reasons) or None,
                                     rate.flags, quality.flags, rate.overlap, quality.overlap)
    higher = bool(direction.iloc[0]) if len(direction) else None
    return Comparison(metric, anchor, len(base), higher, deltas)


def shown(value: float, flags: tuple[str, ...], digits: int, unit: str = "") -> str:
    """A delta as printed: ``NaN``, ``+12.3`` or, when flagged, ``+12.3 (!)``: never a plain flagged value.

    >>> shown(-12.345, (), 1), shown(-12.345, ("low overlap",), 1), shown(float("nan"), (), 1)
    ('-12.3', '-12.3 (!)', 'NaN')
    """
    if math.isnan(value):
        return "NaN"
    return f"{value:+.{digits}f}{unit}" + (" (!)" if flags else "")


def format_comparison(result: Comparison) -> str:
    """Plain-text table of a :class:`Comparison`; flagged values carry ``(!)`` and their flags."""
    direction = {True: "higher is better", False: "lower is better", None: "direction unknown"}
    lines = [f"Bjontegaard deltas against {result.anchor} ({result.anchor_points} points), metric {result.metric} "
             f"({direction[result.higher_is_better]})",
             "BD-rate: average bitrate change at equal quality (negative = needs less bitrate); "
             "BD-quality: metric difference at equal bitrate (family minus anchor)",
             f"{'family':<36} {'points':>6} {'BD-rate %':>12} {'BD-quality':>13}  note"]
    for name, d in result.families.items():
        rate = shown(d.bd_rate_percent, d.bd_rate_flags, 1)
        quality = shown(d.bd_quality, d.bd_quality_flags, 4)
        note = "; ".join([d.reason] if d.reason else d.flags)
        lines.append(f"{name:<36} {d.points:>6} {rate:>12} {quality:>13}  {note}".rstrip())
    if not result.families:
        lines.append("(no other family has rate-quality points)")
    if any(d.flags for d in result.families.values()):
        lines.append("(!) flagged: the value is computed but doubtful for the reason in its note "
                     "(non-monotonic curve, or ranges overlapping under 75 %)")
    return "\n".join(lines)
