"""Codec families behind one interface, resolved from parametric spec strings.

>>> str(parse_spec("encodec-24khz?bandwidth=6"))
'encodec-24khz?bandwidth=6&seed=0&weights=pretrained'
>>> build_codec("dac-44khz?n_codebooks=9").bitrate_bps
7751.953125
"""

from __future__ import annotations

from evalkit._lazy import torch
from evalkit.codecs import anchors, dac, encodec, klt, pyav, qincodec
from evalkit.codecs.base import AudioTransform, Codec, Encoded, Reconstruction, ReconstructionReport
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param, SpecError, split_spec

# Explicit registration: adding a family means adding it here (see README, "How to add a codec").
FAMILIES: dict[str, CodecFamily] = {
    f.name: f for f in (*encodec.FAMILIES, *dac.FAMILIES, *klt.FAMILIES, *qincodec.FAMILIES, *anchors.FAMILIES,
                        *pyav.FAMILIES)}


def get_family(name: str) -> CodecFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(f"unknown codec family {name!r}; known: {', '.join(FAMILIES)}") from None


def parse_spec(text: str | CodecSpec) -> CodecSpec:
    """Validate a spec string and return its complete canonical form.

    Raises:
        SpecError: unknown family or parameter, or a bad value; the message names it.
    """
    if isinstance(text, CodecSpec):
        return text
    family, raw = split_spec(text)
    return get_family(family).resolve(raw)


def build_codec(spec: str | CodecSpec, device: str | torch.device = "auto") -> AudioTransform:
    """A codec (not yet loaded: call ``load()`` or just use it) for ``spec``."""
    spec = parse_spec(spec)
    return FAMILIES[spec.family].factory(spec, device)


__all__ = ["FAMILIES", "AudioTransform", "Codec", "CodecFamily", "CodecSpec", "Encoded", "Param",
           "Reconstruction", "ReconstructionReport", "SpecError", "build_codec", "get_family", "parse_spec"]
