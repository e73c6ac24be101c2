"""Human-readable catalogue of codec families, their sources and bitrates (``evalkit codecs list``).

Imports no torch: every family's variants are described from constructor arguments (no model is built), and a
plugin family whose constructor fails is a :class:`~evalkit.codecs.PluginError` naming it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from evalkit.codecs import FAMILIES, build_codec
from evalkit.codecs.base import Codec
from evalkit.codecs.plugins import PluginError, SourceKind
from evalkit.codecs.spec import CodecFamily, CodecSpec, SpecError, format_value


@dataclass(frozen=True)
class VariantRow:
    spec: str
    bitrate_kbps: float | None
    side_info_kbps: float
    sample_rate: int | None
    frame_rate: float | None
    num_codebooks: int | None


def sweep_values(family: CodecFamily) -> list:
    """Values of the family's bitrate-setting parameter (choices, or the integer range)."""
    sweep = next((p for p in family.params if p.sweep), None)
    if sweep is None:
        return []
    if sweep.choices is not None:
        return list(sweep.choices)
    if sweep.kind is int and sweep.minimum is not None and sweep.maximum is not None:
        return list(range(int(sweep.minimum), int(sweep.maximum) + 1))
    return [sweep.default]


def variants(family: CodecFamily) -> list[VariantRow]:
    """One row per value of the sweep parameter, computed from the architecture (no weights loaded)."""
    sweep = next((p for p in family.params if p.sweep), None)
    rows = []
    for value in sweep_values(family):
        spec = family.resolve({sweep.name: value})
        codec = _describable(spec, family)
        is_codec = isinstance(codec, Codec)
        rows.append(VariantRow(
            spec=CodecSpec(family.name, {sweep.name: value}).__str__(),
            bitrate_kbps=codec.bitrate_bps / 1000 if codec.bitrate_bps is not None else None,
            side_info_kbps=codec.side_info_bps / 1000 if is_codec else 0.0,
            sample_rate=codec.sample_rate,
            frame_rate=codec.frame_rate if is_codec else None,
            num_codebooks=codec.num_codebooks if is_codec else None))
    return rows


def _describable(spec: CodecSpec, family: CodecFamily):
    """The (unloaded) codec of ``spec``; a plugin whose constructor or bitrate fails is a PluginError."""
    source = FAMILIES.source(family.name)
    if source.kind is SourceKind.EVALKIT:
        return build_codec(spec, device="cpu")
    try:
        codec = build_codec(spec, device="cpu")
        _ = codec.sample_rate, codec.bitrate_bps
        if isinstance(codec, Codec):
            _ = codec.frame_rate, codec.num_codebooks, codec.side_info_bps
    except Exception as exc:  # noqa: BLE001 - plugin code: one line naming it
        raise PluginError(f"{family.name} ({source.describe()}): describing {spec} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    return codec


def _rows_or_reason(family: CodecFamily) -> tuple[list[VariantRow], str | None]:
    """The family's rows, or none and why its default spec cannot be resolved (e.g. its default checkpoint lacks
    a part the family needs): the family is still listed."""
    try:
        return variants(family), None
    except SpecError as exc:
        return [], str(exc)


def catalog_records() -> list[dict]:
    """Every family as a JSON-ready record: name, description, parameters and one row per sweep value."""
    records = []
    for family in FAMILIES.values():
        params = [{"name": p.name, "type": p.kind.__name__, "default": p.default, "help": p.help,
                   "choices": list(p.choices) if p.choices is not None else None, "minimum": p.minimum,
                   "maximum": p.maximum, "sweep": p.sweep} for p in family.params]
        rows, unavailable = _rows_or_reason(family)
        records.append({"name": family.name, "description": family.description,
                        "source": FAMILIES.source(family.name).describe(), "params": params,
                        "variants": [asdict(row) for row in rows], "unavailable": unavailable})
    return records


def render_catalog() -> str:
    lines = []
    for family in FAMILIES.values():
        lines.append(f"{family.name}: {family.description}")
        lines.append(f"    source: {FAMILIES.source(family.name).describe()}")
        for p in family.params:
            lines.append(f"    {p.describe()}")
        rows, unavailable = _rows_or_reason(family)
        if unavailable:
            lines.append(f"    unavailable with its defaults: {unavailable}")
        elif not rows and family.name == "klt":
            lines.append("    bitrate: that of its base codec")
        elif not rows:
            lines.append("    bitrate: set by its parameters (no parameter is marked sweep=True)")
        elif rows[0].bitrate_kbps is None:
            lines.append("    bitrate: none (reference condition)")
        elif rows[0].frame_rate is None:  # a reference codec: bitrate as requested, rate from the input's
            lines.append("    bitrate: the requested (nominal) one; the measured one (encoded packets) is stored per "
                         "unit; rate: chosen from the input's")
        elif rows:
            first = rows[0]
            lines.append(f"    {first.sample_rate} Hz, {format_value(round(first.frame_rate, 2))} Hz frames")
            rates = ", ".join(format_value(round(r.bitrate_kbps - r.side_info_kbps, 3)) for r in rows)
            lines.append(f"    bitrates (kbps): {rates}")
            if first.side_info_kbps:
                lines.append(f"    + side information {first.side_info_kbps * 1000:.1f} bit/s "
                             "(per-segment gain, included in bitrate_bps)")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
