"""Rate–quality points of a run: one row per family × bitrate point × metric (``rate_quality.csv``).

A *family* is a curve for Bjøntegaard comparisons: the codec family's name, except that KLT variants form one
family per base codec and kept dimension (their bitrate is their base's), see :func:`rate_family`. QinCodec's
``qincodec`` and ``qincodec-rvq`` are families of their own by that same rule; decoded folders with the same
``family`` form one curve (``decoded:NAME``), each other decoded folder a curve of its own. A *point* is one codec
variant: its bitrate is the mean over items of the per-unit bitrate (measured where the codec measures it), its quality
the mean of the metric over items with the 95 % bootstrap CI of the run's summary.
"""

from __future__ import annotations

import pandas as pd

from evalkit.codecs.spec import format_value, split_spec

COLUMNS = ["family", "codec_spec", "bitrate_kbps", "nominal_bitrate_kbps", "metric", "mean", "ci_low", "ci_high",
           "n", "failures", "unit", "higher_is_better"]


def rate_family(spec: str) -> str:
    """The rate–quality family of a (canonical) codec spec string.

    >>> rate_family("opus?application=audio&bitrate_kbps=12")
    'opus'
    >>> rate_family("klt?bandwidth=6&base=encodec-24khz&dim=72&estimator=codebook&n_cov=2")
    'klt:encodec-24khz:dim=72'
    >>> rate_family("decoded?family=mycodec&folder=/d/6k&label=mycodec 6 kbps")
    'decoded:mycodec'
    >>> rate_family("qincodec-rvq?beam=4&bitrate_kbps=8&checkpoint=shipped&n_steps=8")
    'qincodec-rvq:beam=4'

    Parameters other than the bitrate-setting one that differ from the family's defaults (a beam, an application,
    another checkpoint, random weights) make a curve of their own: one curve never mixes two models or searches.
    """
    family, raw = split_spec(spec)
    if family == "klt":
        return f"klt:{raw.get('base', '?')}:dim={raw.get('dim', '?')}"
    if family == "decoded":  # a decoded folder: its declared curve, else a curve of its own
        return f"decoded:{raw.get('family') or raw.get('label', '?')}"
    from evalkit.codecs import FAMILIES

    found = FAMILIES.get(family)
    if found is None:
        return family
    defaults = {p.name: format_value(p.default) for p in found.params}
    implied = {p.name for p in found.params if p.sweep} | {"n_steps", "bitrate_kbps", "seed"}
    extra = [f"{k}={v}" for k, v in sorted(raw.items()) if k in defaults and k not in implied and v != defaults[k]]
    return f"{family}:{','.join(extra)}" if extra else family


def rate_quality_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Rate–quality rows from a run summary (per variant × metric), for variants that have a bitrate.

    Args:
        summary: the run's summary table with ``codec_spec``, ``metric``, ``bitrate_kbps`` (mean per-unit
            bitrate, measured where available), ``nominal_bitrate_kbps``, ``mean``, ``ci_low``, ``ci_high``,
            ``n``, ``failures``, ``unit`` and ``higher_is_better``.

    Returns:
        ``COLUMNS``, sorted by family, metric and bitrate; transforms without a bitrate (anchors) are left out.
    """
    if summary.empty or "bitrate_kbps" not in summary:
        return pd.DataFrame(columns=COLUMNS)
    rows = summary[summary["bitrate_kbps"].notna()].copy()
    rows["family"] = rows["codec_spec"].map(rate_family)
    if "nominal_bitrate_kbps" not in rows:
        rows["nominal_bitrate_kbps"] = rows["bitrate_kbps"]
    return rows[COLUMNS].sort_values(["family", "metric", "bitrate_kbps"], kind="stable").reset_index(drop=True)
