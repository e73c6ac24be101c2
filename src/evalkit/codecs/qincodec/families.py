"""Spec families ``qincodec``, ``qincodec-rvq`` and ``qincodec-irvq``: parameters, and bitrate ↔ steps resolution.

Declaring the families imports no torch; resolving a spec reads the checkpoint's configuration so that
``bitrate_kbps`` and ``n_steps`` are both filled in the canonical spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evalkit.codecs.spec import CodecFamily, CodecSpec, Param, SpecError, format_value

COMMON = (
    Param("checkpoint", str, "shipped", "'shipped' (the checkpoint inside the package) or a path to a "
                                        "checkpoint written by `evalkit qincodec train`"),
    Param("bitrate_kbps", float, 8.0, "frame_rate x n_steps x log2 K of the checkpoint (a prefix of its steps)",
          minimum=0, sweep=True),
    Param("n_steps", int, 0, "quantizer steps used (0: from bitrate_kbps)", minimum=0),
)
SEARCH = (
    Param("candidates", int, 0, "QINCo2 pre-selected candidates per beam, A (0: the checkpoint's)", minimum=0),
    Param("beam", int, 0, "QINCo2 beam size, B (0: the checkpoint's)", minimum=0),
)
RVQ_SEARCH = (
    Param("beam", int, 1, "beam size B of the RVQ search (1: greedy; QINCo2's B for a search-matched "
                          "baseline, the shipped checkpoint's is 4)", minimum=1),
)
IRVQ_SEARCH = (
    Param("beam", int, 0, "beam size B of the iRVQ search (0: its training beam, the checkpoint's QINCo2 B; "
                          "1: greedy)", minimum=0),
)


class QincodecFamily(CodecFamily):
    """Fills ``n_steps`` from ``bitrate_kbps`` (or the reverse) using the checkpoint's rate and codebooks."""

    def resolve(self, raw: Mapping[str, Any]) -> CodecSpec:
        spec = super().resolve(raw)
        from evalkit.codecs.qincodec.checkpoint import CheckpointError, no_irvq_message, read_header

        try:
            header = read_header(spec.params["checkpoint"])
        except CheckpointError as exc:
            raise SpecError(f"{self.name}: {exc}") from None
        if self.name == "qincodec-irvq" and "irvq" not in header["parts"]:
            raise SpecError(f"{self.name}: {no_irvq_message(spec.params['checkpoint'])}")
        config = header["config"]
        frame_rate = config["model"]["sample_rate"] / math.prod(config["model"]["strides"])
        bits = math.log2(config["quantizer"]["codebook_size"])
        steps = config["quantizer"]["steps"]

        def kbps(n: int) -> float:
            return round(frame_rate * n * bits / 1000, 6)

        valid = ", ".join(format_value(kbps(n)) for n in range(1, steps + 1))
        n = spec.params["n_steps"]
        if n:
            if n > steps:
                raise SpecError(f"{self.name}: n_steps={n} is above the checkpoint's {steps} steps")
            if "bitrate_kbps" in raw and abs(float(raw["bitrate_kbps"]) - kbps(n)) > 1e-6:
                raise SpecError(f"{self.name}: bitrate_kbps={raw['bitrate_kbps']} contradicts n_steps={n} "
                                f"({format_value(kbps(n))} kbps)")
        else:
            exact = spec.params["bitrate_kbps"] * 1000 / (frame_rate * bits)
            n = round(exact)
            if not 1 <= n <= steps or abs(n - exact) > 1e-6:
                raise SpecError(f"{self.name}: bitrate_kbps={format_value(spec.params['bitrate_kbps'])} is not "
                                f"available from this checkpoint; valid: {valid}")
        return CodecSpec(self.name, {**spec.params, "n_steps": n, "bitrate_kbps": kbps(n)})


def _qinco2(spec: CodecSpec, device="auto"):
    from evalkit.codecs.qincodec.adapter import QincodecCodec

    return QincodecCodec(spec, device, quantizer="qinco2")


def _rvq(spec: CodecSpec, device="auto"):
    from evalkit.codecs.qincodec.adapter import QincodecCodec

    return QincodecCodec(spec, device, quantizer="rvq")


def _irvq(spec: CodecSpec, device="auto"):
    from evalkit.codecs.qincodec.adapter import QincodecCodec

    return QincodecCodec(spec, device, quantizer="irvq")


FAMILIES = (
    QincodecFamily("qincodec", "QinCodec: ConvNeXt/Vocos autoencoder, latents quantized offline with QINCo2 "
                               "(implicit neural codebooks, beam search); 24 kHz mono, 100 Hz frames",
                   (*COMMON, *SEARCH), _qinco2),
    QincodecFamily("qincodec-rvq", "QinCodec's plain-RVQ baseline: the same autoencoder, residual k-means "
                                   "codebooks with the same M and K, greedy or beam search",
                   (*COMMON, *RVQ_SEARCH), _rvq),
    QincodecFamily("qincodec-irvq", "QinCodec with improved RVQ (Liu et al. 2015): the same autoencoder, residual "
                                    "codebooks trained with beam search (faiss, QINCo2's B), same M and K, "
                                    "beam-search encoding",
                   (*COMMON, *IRVQ_SEARCH), _irvq),
)
