"""Short, human labels of codec variants and listening conditions, used in every output a person reads.

``short_label("qincodec?bitrate_kbps=8&...")`` is ``"QinCodec 8 kbps"``, ``"opus?bitrate_kbps=12&..."`` is
``"Opus 12 kbps"``, ``"lowpass?cutoff_hz=3500"`` is ``"3.5 kHz anchor"``. The label is the family's display name,
the variant's nominal bitrate, then in parentheses the parameters that differ from the family's defaults
(random weights as ``random weights``). :func:`labels_for` labels a set of variants at once, applies the user's
``SPEC=NAME`` overrides and keeps labels unique. The full spec string stays in every detail table and export.

A mono codec given a stereo item codes each channel separately (``channel_policy: per_channel``), so its nominal
rate is per channel: a run that did so says ``per_channel`` (:func:`evalkit.labels.coded_per_channel` reads
it from a unit's reconstruction report) and the label reads ``"QinCodec 8 kbps/ch"``. Codecs that code stereo
jointly (Opus, MP3, AAC, EnCodec 48 kHz), and runs with mono items only, keep ``"8 kbps"``.

This module imports no torch, scipy or pandas unless a label needs a bitrate computed by a codec's constructor
(DAC's ``n_codebooks``), which builds no model. It is the only place that makes labels from spec strings: a run
stores each variant's labels in its :class:`~evalkit.codecs.records.VariantRecord` at plan time, and readers
take them from there (:func:`labels_for` with ``records``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalkit.codecs.spec import SpecError, format_value, split_spec

# Display names of the built-in families; a plugin family sets ``CodecFamily.display_name``.
DISPLAY_NAMES = {
    "encodec-24khz": "EnCodec 24 kHz", "encodec-48khz": "EnCodec 48 kHz",
    "dac-44khz": "DAC 44.1 kHz", "dac-24khz": "DAC 24 kHz", "dac-16khz": "DAC 16 kHz",
    "dac-44khz-16kbps": "DAC 44.1 kHz (16 kbps model)",
    "qincodec": "QinCodec", "qincodec-rvq": "QinCodec RVQ", "qincodec-irvq": "QinCodec iRVQ",
    "opus": "Opus", "mp3": "MP3", "aac": "AAC",
}
# Names of a listening test's fixed conditions and of the run's reference pseudo-variant.
CONDITION_LABELS = {"reference": "Reference", "anchor35": "3.5 kHz anchor", "anchor70": "7 kHz anchor"}
_HIDDEN = {"weights", "seed", "n_steps", "base"}  # shown another way (random weights) or implied by the bitrate


def family_display_name(family: str) -> str:
    """``"qincodec"`` → ``"QinCodec"``; a family without a display name keeps its own name."""
    from evalkit.codecs import FAMILIES

    found = FAMILIES.get(family)
    name = getattr(found, "display_name", "") if found is not None else ""
    return name or DISPLAY_NAMES.get(family, family)


def _kbps(value: float) -> str:
    return f"{float(format(value, '.3g')):g} kbps"


def _hz(value: float) -> str:
    return f"{value / 1000:g} kHz" if value >= 1000 else f"{value:g} Hz"


@lru_cache(maxsize=512)
def _computed_kbps(spec: str) -> float | None:
    """Nominal bitrate of a spec whose sweep parameter is not a bitrate (DAC's ``n_codebooks``)."""
    try:
        from evalkit.codecs import build_codec

        bps = build_codec(spec, device="cpu").bitrate_bps
    except Exception:  # a label must never fail: an unbuildable spec is labelled without its bitrate
        return None
    return None if bps is None else bps / 1000


def _token(key: str, value: str) -> str:
    if key in ("checkpoint", "calibration") and ("/" in value or value.endswith(".pt")):
        return f"{key} {Path(value).name}"
    return f"{key}={value}"


def _describe(family: str, raw: Mapping[str, str], extra: Iterable[str] = (), per_channel: bool = False) -> str:
    from evalkit.codecs import FAMILIES

    fam = FAMILIES.get(family)
    params = {p.name: p for p in fam.params} if fam is not None else {}
    defaults = {p.name: format_value(p.default) for p in params.values()}
    sweep = next((p.name for p in params.values() if p.sweep), None)
    if family == "lowpass":
        cutoff = float(raw.get("cutoff_hz", defaults.get("cutoff_hz", "3500")))
        return f"{_hz(cutoff)} {'anchor' if cutoff in (3500.0, 7000.0) else 'low-pass'}"  # BS.1534-3 anchors
    head = family_display_name(family)
    rate = None
    for key in ("bitrate_kbps", "bandwidth"):
        if key in raw:
            with contextlib.suppress(ValueError):
                rate = float(raw[key])
            break
    if rate is None and sweep is not None and fam is not None:
        text = family + "?" + "&".join(f"{k}={v}" for k, v in sorted(raw.items())) if raw else family
        rate = _computed_kbps(text)
    if rate is not None:
        head += f" {_kbps(rate)}" + ("/ch" if per_channel else "")
    notes = [_token(k, v) for k, v in raw.items()
             if k not in _HIDDEN and k not in ("bitrate_kbps", "bandwidth") and k != sweep
             and v != defaults.get(k) and not (k in ("candidates", "beam") and v == "0")]
    if rate is None and sweep is not None and sweep in raw:
        notes.insert(0, _token(sweep, raw[sweep]))
    notes.extend(extra)
    if raw.get("weights") == "random":
        seed = raw.get("seed", "0")
        notes.append("random weights" + ("" if seed == "0" else f", seed {seed}"))
    elif raw.get("weights") not in (None, "pretrained"):
        notes.append(f"weights {Path(raw['weights']).name}")
    return head + (f" ({', '.join(notes)})" if notes else "")


def short_label(spec: str, per_channel: bool = False) -> str:
    """A short readable label of a codec spec or a listening condition name.

    Text that is neither comes back unchanged, so a label never fails. ``per_channel``: the run coded some
    item channel by channel with this (mono) codec, so its nominal rate is per channel (``8 kbps/ch``).

    >>> short_label("qincodec?bitrate_kbps=8&candidates=0&beam=0&checkpoint=shipped&n_steps=8")
    'QinCodec 8 kbps'
    >>> short_label("opus?application=audio&bitrate_kbps=12"), short_label("lowpass?cutoff_hz=3500")
    ('Opus 12 kbps', '3.5 kHz anchor')
    >>> short_label("encodec-24khz?bandwidth=1.5&seed=0&weights=random")
    'EnCodec 24 kHz 1.5 kbps (random weights)'
    >>> short_label("klt?base=encodec-24khz&bandwidth=6&dim=72&n_cov=2&estimator=codebook")
    'EnCodec 24 kHz 6 kbps, KLT d=72'
    >>> short_label("qincodec?bitrate_kbps=8", per_channel=True), short_label("lowpass?cutoff_hz=7000", True)
    ('QinCodec 8 kbps/ch', '7 kHz anchor')
    >>> short_label("decoded?folder=/out/mine&label=mine 6 kbps&length_tolerance_s=0.1")
    'mine 6 kbps'
    >>> short_label("anchor35"), short_label("reference"), short_label("not a spec?x")
    ('3.5 kHz anchor', 'Reference', 'not a spec?x')
    """
    if spec in CONDITION_LABELS:
        return CONDITION_LABELS[spec]
    try:
        family, raw = split_spec(spec)
    except SpecError:
        return spec
    if family == "decoded" and raw.get("label"):  # a decoded folder: the label its config gives it
        return raw["label"]
    from evalkit.codecs import FAMILIES

    if family not in FAMILIES:
        return spec
    if family != "klt":
        return _describe(family, raw, per_channel=per_channel)
    klt = FAMILIES["klt"]
    own = {p.name: format_value(p.default) for p in klt.params}
    base_family = raw.get("base", own.get("base", ""))
    base_raw = {k: v for k, v in raw.items() if k not in own}
    extra = [f"{k}={v}" for k, v in raw.items() if k in own and k not in ("base", "dim") and v != own[k]
             and k != "calibration"]
    if raw.get("calibration"):
        extra.append(_token("calibration", raw["calibration"]))
    label = _describe(base_family, base_raw, per_channel=per_channel)
    suffix = f", KLT d={raw.get('dim', own.get('dim', 'full'))}"
    if extra:
        suffix += f" ({', '.join(extra)})"
    return label + suffix


def labels_for(specs: Iterable[str], overrides: Mapping[str, str] | None = None,
               per_channel: Collection[str] = (), records: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Labels of several variants: ``overrides`` (spec → name, matched on the canonical spec too) first, then
    the variant's stored label (``records``: spec → :class:`~evalkit.codecs.records.VariantRecord`), else
    :func:`short_label` (``per_channel``: the specs a run coded channel by channel, labelled ``kbps/ch``);
    labels that would collide get the full spec's query appended so every one is unique.

    >>> labels_for(["opus?application=audio&bitrate_kbps=12", "lowpass?cutoff_hz=7000"],
    ...            {"opus?bitrate_kbps=12": "Opus (12k)"})
    {'opus?application=audio&bitrate_kbps=12': 'Opus (12k)', 'lowpass?cutoff_hz=7000': '7 kHz anchor'}
    """
    specs = list(dict.fromkeys(specs))
    canonical_overrides = {canonical(k): v for k, v in (overrides or {}).items()}
    out = {}
    for spec in specs:
        record = (records or {}).get(spec)
        given = (overrides or {}).get(spec) or canonical_overrides.get(
            record.codec_spec if record is not None else canonical(spec))
        own = record.label_for(spec in per_channel) if record is not None else None
        out[spec] = given or own or short_label(spec, per_channel=spec in per_channel)
    seen: dict[str, list[str]] = {}
    for spec, label in out.items():
        seen.setdefault(label, []).append(spec)
    for label, group in seen.items():
        if len(group) > 1:
            for spec in group:
                out[spec] = f"{label} [{spec.partition('?')[2] or spec}]"
    return out


def canonical(spec: str) -> str:
    """The canonical form of a spec string (a condition name or an invalid spec comes back unchanged)."""
    if spec in CONDITION_LABELS:
        return spec
    try:
        from evalkit.codecs import parse_spec

        return str(parse_spec(spec))
    except (SpecError, KeyError, OSError):
        return spec
