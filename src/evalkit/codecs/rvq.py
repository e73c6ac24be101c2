"""Shared plumbing of adapters around pretrained RVQ models (EnCodec, DAC).

The ``weights``/``seed`` spec options, the lazily built model, and encode/decode expressed through the
pipeline split at the quantizer (``encode_with``/``decode_with`` + ``quantize``/``dequantize``), which lets
variants such as KLT swap the quantizer and keep everything else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from evalkit._lazy import torch
from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.spec import CodecSpec, Param


def weights_params(default_seed: int = 0) -> tuple[Param, ...]:
    """The ``weights`` and ``seed`` parameters shared by every pretrained-model family."""
    return (
        Param("weights", str, "pretrained",
              "'pretrained' (resolved through caches, downloaded when online), 'random' (official "
              "architecture, seeded random weights), or a checkpoint path"),
        Param("seed", int, default_seed, "seed for weights=random", minimum=0),
    )


def weights_label(weights: str, seed: int) -> str:
    if weights == "random":
        return f"random (seed {seed}) - NOT a pretrained model"
    return "pretrained" if weights == "pretrained" else f"checkpoint {weights}"


class PretrainedRvqCodec(Codec):
    """Base of the EnCodec and DAC adapters; subclasses define ``ARCHS``, ``load`` and the pipeline split."""

    ARCHS: ClassVar[dict[str, Any]]

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        super().__init__(spec, device)
        self.arch = self.ARCHS[spec.family]
        self.weights = spec.params["weights"]
        self.seed = int(spec.params["seed"])
        self.weights_label = weights_label(self.weights, self.seed)
        self._model = None

    @property
    def sample_rate(self) -> int:
        return self.arch.sample_rate

    @property
    def model(self):
        self.load()
        return self._model

    @property
    def model_key(self) -> tuple[str, str, int | None, str]:
        """What determines the loaded model: family, weights, seed (random weights only) and device.

        Variants that differ only in how many codebooks they use (bandwidth, ``n_codebooks``) have the same
        key: the adapters choose their codebooks per call, so one loaded model serves them all.
        """
        return (self.spec.family, self.weights, self.seed if self.weights == "random" else None, str(self.device))

    def use_model(self, model) -> PretrainedRvqCodec:
        """Share a model already loaded by a variant with the same :attr:`model_key`."""
        self._model = model
        return self

    def encode(self, wav: torch.Tensor) -> Encoded:
        return self.encode_with(wav, self.quantize)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        return self.decode_with(encoded, self.dequantize)
