"""What a run's readers need to know about a codec variant, worked out once from its spec: :class:`VariantRecord`.

The runner stores one record per variant at plan time (``variant_records`` in the store); labels, legends,
rate–quality curves, listening conditions and the report read it instead of parsing spec strings or building
codecs. This module (with :mod:`evalkit.codecs.labels`) is the only place that knows the spec grammar of the
families: which is an anchor, which wraps a base codec (KLT), what a decoded folder's curve is.

>>> r = describe("klt?bandwidth=6&base=encodec-24khz&dim=72&estimator=codebook&n_cov=2")
>>> r.label, r.curve, r.role.value, r.kept_dim, r.base.label
('EnCodec 24 kHz 6 kbps, KLT d=72', 'klt:encodec-24khz:dim=72', 'codec', '72', 'EnCodec 24 kHz 6 kbps')
>>> describe("lowpass?cutoff_hz=7000").role.value, describe("reference").label
('anchor', 'Reference')
"""

from __future__ import annotations

import enum
import json
import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any

from evalkit.codecs.labels import family_display_name, short_label
from evalkit.codecs.spec import CodecSpec, SpecError, format_value, split_spec

#: Bumped whenever a field is added or its derivation changes; readers recompute records of older versions.
RECORD_VERSION = 1
REFERENCE_SPEC = "reference"  # the pseudo-variant of no-reference scores on the reference itself
ANCHOR_FAMILY = "lowpass"
DECODED_FAMILY = "decoded"
KLT_FAMILY = "klt"
DECODED_WEIGHTS = "decoded folder"  # the weights label of a decoded folder's units
_IMPLIED = {"n_steps", "bitrate_kbps", "seed"}  # parameters that never split a rate–quality curve


class VariantRole(enum.StrEnum):
    """What a variant is to a reader: a codec (random weights included, see ``random_weights``), a low-pass
    anchor, the uncoded reference pseudo-variant, or audio decoded by another tool."""

    CODEC = "codec"
    ANCHOR = "anchor"
    REFERENCE = "reference"
    DECODED = "decoded"


class CurveKind(enum.StrEnum):
    """How a rate–quality curve relates to a family: the family itself, a KLT of a base family, the family
    with other settings (``opus:application=voip``), an anchor, or the reference."""

    PLAIN = "plain"
    KLT = "klt"
    SETTINGS = "settings"
    ANCHOR = "anchor"
    REFERENCE = "reference"


@dataclass(frozen=True)
class CurveParts:
    """A rate–quality curve name taken apart: ``base`` is the family whose colour the curve takes, ``detail``
    the text that tells it from that family's own curve (``dim=72``, ``application=voip``)."""

    kind: CurveKind
    base: str
    detail: str = ""


@dataclass(frozen=True)
class VariantRecord:
    """The facts of one codec variant that every reader of a run needs.

    Attributes:
        codec_spec: the full canonical spec (the variant's identity in the store and the exports).
        family: the spec's family name (``reference`` and ``decoded`` included).
        role: codec, anchor, reference or decoded folder.
        label: the short label (``"QinCodec 8 kbps"``); ``per_channel_label`` the same where a run coded
            some item channel by channel with this mono codec (``"QinCodec 8 kbps/ch"``).
        group: the family filter's group (``"EnCodec 24 kHz KLT"``, ``"Anchors"``, ``"Reference"``).
        display_family: the family's display name (``"EnCodec 24 kHz"``; a KLT variant's: its base's).
        curve: the rate–quality curve it is a point of (family + non-swept parameters, see :func:`rate_curve`);
            ``curve_name`` its name in comparison tables.
        sweep: the family's bitrate-setting parameter (``None``: none).
        nominal_kbps: the nominal bitrate in kbit/s from the codec's constructor (``None``: no bitrate or the
            codec could not be built); per channel where ``rate_per_channel``.
        channels: the channels the codec codes (``None``: any number, or unknown).
        channel_policy: the run's ``channel_policy`` when the record was stored (``None``: described elsewhere).
        rate_per_channel: a mono codec under ``channel_policy: per_channel``: its rate is per channel on
            multi-channel items.
        weights: the weights label (``"pretrained"``, ``"random (seed 0) - NOT a pretrained model"``...);
            ``random_weights`` whether the model is randomly initialised.
        source: where the family comes from (``evalkit``, ``file /path/my_codec.py``...).
        base: a KLT variant's base codec (its own record); ``kept_dim`` its kept dimension (``"72"``,
            ``"full"``) and ``statistics`` its estimator.
        anchor_cutoff_hz: a low-pass anchor's cut-off in Hz.
    """

    codec_spec: str
    family: str
    role: VariantRole
    label: str
    per_channel_label: str
    group: str
    display_family: str
    curve: str
    curve_name: str
    sweep: str | None = None
    nominal_kbps: float | None = None
    channels: int | None = None
    channel_policy: str | None = None
    rate_per_channel: bool = False
    weights: str = "none"
    random_weights: bool = False
    source: str = "evalkit"
    base: VariantRecord | None = None
    kept_dim: str | None = None
    statistics: str | None = None
    anchor_cutoff_hz: float | None = None
    version: int = RECORD_VERSION

    def label_for(self, per_channel: bool) -> str:
        """The label, with ``kbps/ch`` where the run coded some item channel by channel."""
        return self.per_channel_label if per_channel else self.label

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantRecord:
        """A record from its JSON object (unknown keys ignored; raises ``KeyError``/``ValueError`` when a field
        is missing or malformed)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["role"] = VariantRole(values["role"])
        if values.get("base") is not None:
            values["base"] = cls.from_dict(values["base"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> VariantRecord:
        return cls.from_dict(json.loads(text))


def _split(spec: str) -> tuple[str, dict[str, str]] | None:
    try:
        return split_spec(spec)
    except SpecError:
        return None


def rate_curve(spec: str) -> str:
    """The rate–quality curve of a (canonical) codec spec string.

    >>> rate_curve("opus?application=audio&bitrate_kbps=12")
    'opus'
    >>> rate_curve("klt?bandwidth=6&base=encodec-24khz&dim=72&estimator=codebook&n_cov=2")
    'klt:encodec-24khz:dim=72'
    >>> rate_curve("decoded?family=mycodec&folder=/d/6k&label=mycodec 6 kbps")
    'decoded:mycodec'
    >>> rate_curve("qincodec-rvq?beam=4&bitrate_kbps=8&checkpoint=shipped&n_steps=8")
    'qincodec-rvq:beam=4'

    KLT variants form one curve per base codec and kept dimension (their bitrate is their base's); decoded
    folders with the same ``family`` one curve, each other decoded folder a curve of its own. Parameters other
    than the bitrate-setting one that differ from the family's defaults (a beam, an application, another
    checkpoint, random weights) make a curve of their own: one curve never mixes two models or searches.

    Raises:
        SpecError: text that is not a spec string.
    """
    family, raw = split_spec(spec)
    if family == KLT_FAMILY:
        return f"klt:{raw.get('base', '?')}:dim={raw.get('dim', '?')}"
    if family == DECODED_FAMILY:  # a decoded folder: its declared curve, else a curve of its own
        return f"decoded:{raw.get('family') or raw.get('label', '?')}"
    from evalkit.codecs import FAMILIES

    found = FAMILIES.get(family)
    if found is None:
        return family
    defaults = {p.name: format_value(p.default) for p in found.params}
    implied = {p.name for p in found.params if p.sweep} | _IMPLIED
    extra = [f"{k}={v}" for k, v in sorted(raw.items()) if k in defaults and k not in implied and v != defaults[k]]
    return f"{family}:{','.join(extra)}" if extra else family


def curve_parts(curve: str) -> CurveParts:
    """A curve name (a ``rate_quality.csv`` ``family``) taken apart.

    >>> curve_parts("klt:encodec-24khz:dim=72"), curve_parts("opus:application=voip").kind.value
    (CurveParts(kind=<CurveKind.KLT: 'klt'>, base='encodec-24khz', detail='dim=72'), 'settings')
    """
    if curve.startswith(f"{KLT_FAMILY}:"):
        _, base, dim = ([*curve.split(":", 2), "", ""])[:3]
        return CurveParts(CurveKind.KLT, base, dim)
    if ":" in curve and not curve.startswith(f"{DECODED_FAMILY}:"):
        base, detail = curve.split(":", 1)
        return CurveParts(CurveKind.SETTINGS, base, detail)
    if curve == ANCHOR_FAMILY:
        return CurveParts(CurveKind.ANCHOR, curve)
    if curve == REFERENCE_SPEC:
        return CurveParts(CurveKind.REFERENCE, curve)
    return CurveParts(CurveKind.PLAIN, curve)


def curve_name(curve: str) -> str:
    """The name of a curve in comparison tables: ``"EnCodec 24 kHz KLT d=72"``, ``"Opus"``; a curve with
    other settings or a decoded folder's keeps its text."""
    parts = curve_parts(curve)
    if parts.kind is CurveKind.KLT:
        return f"{family_display_name(parts.base)} KLT {parts.detail.replace('dim=', 'd=')}"
    return family_display_name(curve)


def curve_marker_index(detail: str, n_markers: int) -> int:
    """A stable index (CRC-32) choosing the marker of a curve that shares its base family's colour."""
    return zlib.crc32(detail.encode()) % n_markers


def klt_base_spec(raw: dict[str, str]) -> str:
    """The base codec's spec of a KLT variant's raw parameters (its non-KLT parameters, sorted)."""
    from evalkit.codecs import FAMILIES

    klt = FAMILIES[KLT_FAMILY]
    own = {p.name for p in klt.params}
    base_family = raw.get("base", format_value(klt.defaults["base"]))
    base_raw = {k: v for k, v in sorted(raw.items()) if k not in own}
    return base_family + ("?" + "&".join(f"{k}={v}" for k, v in base_raw.items()) if base_raw else "")


def _group(role: VariantRole, family: str, raw: dict[str, str]) -> str:
    if role is VariantRole.ANCHOR:
        return "Anchors"
    if role is VariantRole.REFERENCE:
        return "Reference"
    if family == KLT_FAMILY:
        return f"{family_display_name(raw.get('base', 'klt'))} KLT"
    return family_display_name(family)


def _built_facts(spec: str, channel_policy: str | None) -> dict[str, Any]:
    """Facts a (not loaded) codec's constructor gives: nominal bitrate, channels, weights label, source."""
    from evalkit.codecs import FAMILIES, build_codec, parse_spec

    try:
        parsed = parse_spec(spec)
        codec = build_codec(parsed, device="cpu")
        bps = codec.bitrate_bps
        channels = codec.channels
        weights = getattr(codec, "weights_label", "none")
        source = FAMILIES.source(parsed.family).describe()
        sweep = next((p.name for p in FAMILIES[parsed.family].params if p.sweep), None)
    except Exception:  # noqa: BLE001 - a record never fails: an unbuildable spec (or plugin) has fewer facts
        return {}
    return {"nominal_kbps": None if bps is None else bps / 1000, "channels": channels, "weights": str(weights),
            "source": source, "sweep": sweep,
            "rate_per_channel": channels == 1 and channel_policy in (None, "per_channel") and bps is not None}


def describe(spec: str | CodecSpec, channel_policy: str | None = None) -> VariantRecord:
    """The record of one variant (a canonical spec string, ``reference``, or a decoded folder's spec).

    Builds the codec (its constructor only, no model) for its bitrate, channels and weights label; text that is
    no spec, or a family that is not registered (a plugin not loaded), gets a record labelled with the text.
    """
    text = str(spec)
    policy = None if channel_policy is None else str(channel_policy)
    label, per_channel_label = short_label(text), short_label(text, per_channel=True)
    split = _split(text)
    if text == REFERENCE_SPEC or split is None:
        role = VariantRole.REFERENCE if text == REFERENCE_SPEC else VariantRole.CODEC
        return VariantRecord(text, text, role, label, per_channel_label,
                             _group(role, text, {}) if role is VariantRole.REFERENCE else text,
                             family_display_name(text), text, family_display_name(text), channel_policy=policy)
    family, raw = split
    curve = rate_curve(text)
    if family == DECODED_FAMILY:
        role = VariantRole.DECODED
    elif curve == ANCHOR_FAMILY:
        role = VariantRole.ANCHOR
    else:
        role = VariantRole.CODEC
    facts: dict[str, Any] = {"channel_policy": policy}
    if family == DECODED_FAMILY:
        kbps = raw.get("bitrate_kbps")
        facts.update(nominal_kbps=float(kbps) if kbps else None, weights=DECODED_WEIGHTS)
    else:
        facts.update(_built_facts(text, policy))
    if family == KLT_FAMILY:
        facts.update(base=describe(klt_base_spec(raw), policy), kept_dim=raw.get("dim", "full"),
                     statistics=raw.get("estimator", "codebook"))
    if role is VariantRole.ANCHOR:
        facts["anchor_cutoff_hz"] = float(raw.get("cutoff_hz", "inf"))
    display = family_display_name(raw.get("base", KLT_FAMILY) if family == KLT_FAMILY else family)
    random = raw.get("weights") == "random"
    return VariantRecord(text, family, role, label, per_channel_label, _group(role, family, raw), display, curve,
                         curve_name(curve), random_weights=random, **facts)
