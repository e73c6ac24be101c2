"""Descript Audio Codec (Kumar et al., 2023) through the ``dac`` package.

Each quantizer projects the latent to an 8-d code space (``in_proj``), searches its 1024 × 8 codebook by
cosine similarity (L2-normalised codes), and projects back (``out_proj``). :meth:`DacCodec.codebooks`
returns the 8-d codebooks; :meth:`DacCodec.projections` the in/out projections with the weight norm
materialised (``W = g · v / ‖v‖``), which KLT and other latent-space analyses need.

The model is built from :data:`ARCHS`, never by ``DAC.load`` (which runs the code of a ``torch.package``
archive); a checkpoint only supplies its state dict (see :func:`dac_state_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit._lazy import torch
from evalkit.codecs.base import Encoded
from evalkit.codecs.chunking import Chunking
from evalkit.codecs.rvq import PretrainedRvqCodec, weights_params
from evalkit.codecs.safe_load import WeightsFileError, as_state_dict, load_plain
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param


@dataclass(frozen=True)
class DacArch:
    """Constructor arguments of an official DAC model (as stored in its checkpoint metadata)."""

    family: str
    weights_name: str
    sample_rate: int
    encoder_rates: tuple[int, ...]
    decoder_rates: tuple[int, ...]
    n_codebooks: int
    latent_dim: int | None = None
    encoder_dim: int = 64
    decoder_dim: int = 1536
    codebook_size: int = 1024
    codebook_dim: int = 8

    @property
    def hop_length(self) -> int:
        return math.prod(self.encoder_rates)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def kwargs(self) -> dict:
        return dict(encoder_dim=self.encoder_dim, encoder_rates=list(self.encoder_rates),
                    latent_dim=self.latent_dim, decoder_dim=self.decoder_dim,
                    decoder_rates=list(self.decoder_rates), n_codebooks=self.n_codebooks,
                    codebook_size=self.codebook_size, codebook_dim=self.codebook_dim,
                    sample_rate=self.sample_rate)

    def mismatches(self, kwargs: Mapping[str, Any]) -> list[str]:
        """Constructor arguments in a checkpoint's ``metadata["kwargs"]`` that differ from this architecture.

        Arguments absent from the file, training-only ones (``quantizer_dropout``) and a ``latent_dim`` of
        ``None`` (derived from the encoder) are not compared; lists and tuples compare equal.

        >>> ARCHS["dac-16khz"].mismatches({"sample_rate": 24000, "encoder_rates": [2, 4, 5, 8], "latent_dim": 1024,
        ...                                "quantizer_dropout": 0.5})
        ['sample_rate 24000 (official 16000)']
        """
        own = self.kwargs()
        if own["latent_dim"] is None:
            own["latent_dim"] = self.encoder_dim * 2 ** len(self.encoder_rates)  # as DAC derives it
        out = []
        for name, expected in own.items():
            given = kwargs.get(name)
            if given is None:
                continue
            if isinstance(given, (list, tuple)) and isinstance(expected, (list, tuple)):
                given, expected = list(given), list(expected)
            if not _is_plain(given) or given != expected:  # a tensor is never an architecture argument
                out.append(f"{name} {given!r} (official {expected!r})")
        return out


def _is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))


ARCHS = {a.family: a for a in (
    DacArch("dac-44khz", "dac_44khz", 44_100, (2, 4, 8, 8), (8, 8, 4, 2), 9),
    DacArch("dac-24khz", "dac_24khz", 24_000, (2, 4, 5, 8), (8, 5, 4, 2), 32),
    DacArch("dac-16khz", "dac_16khz", 16_000, (2, 4, 5, 8), (8, 5, 4, 2), 12),
    DacArch("dac-44khz-16kbps", "dac_44khz_16kbps", 44_100, (2, 4, 8, 8), (8, 8, 4, 2), 18, latent_dim=128),
)}


def dac_state_dict(checkpoint: Any, path: Path, arch: DacArch) -> Mapping[str, torch.Tensor]:
    """The state dict of a DAC checkpoint, checked against ``arch``.

    ``checkpoint`` is what :func:`~evalkit.codecs.safe_load.load_plain` read: ``{"state_dict", "metadata"}`` as
    the official files and ``DAC.save(path, package=False)`` hold it, or a bare state dict. Architecture
    arguments in ``metadata["kwargs"]``, when present, must be the official ones of ``arch``.

    Raises:
        WeightsFileError: another layout, or metadata describing another architecture (one line naming ``path``).
    """
    if not (isinstance(checkpoint, Mapping) and "state_dict" in checkpoint):
        return as_state_dict(checkpoint, path)
    metadata = checkpoint.get("metadata")
    kwargs = metadata.get("kwargs") if isinstance(metadata, Mapping) else metadata
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise WeightsFileError(f"{path}: DAC checkpoint metadata is not a mapping with a 'kwargs' mapping")
    if bad := arch.mismatches(kwargs or {}):
        raise WeightsFileError(f"{path}: its metadata describes another model than {arch.family}: {'; '.join(bad)}")
    return as_state_dict(checkpoint["state_dict"], path)


@dataclass(frozen=True)
class Projection:
    """A 1×1 convolution as a matrix: ``y = weight @ x + bias``; weight ``[out, in]``."""

    weight: torch.Tensor
    bias: torch.Tensor


def materialise_weight_norm(conv: torch.nn.Module) -> Projection:
    """The effective weight of a weight-normed 1×1 conv (``g · v / ‖v‖``, norm over all but dim 0)."""
    if hasattr(conv, "weight_g"):
        v, g = conv.weight_v.detach(), conv.weight_g.detach()
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
        weight = g * v / norm
    else:  # parametrize-based weight norm, or plain conv: .weight is already the effective weight
        weight = conv.weight.detach()
    return Projection(weight[..., 0].clone(), conv.bias.detach().clone())


class DacCodec(PretrainedRvqCodec):
    """DAC with the first ``n_codebooks`` quantizers."""

    ARCHS = ARCHS
    # Long inputs in 1 s chunks with 0.25 s of context on each side. DAC is fully convolutional and stateless
    # (Snake activations, no normalisation over time); its receptive field, measured with an impulse on the
    # 44.1 kHz model, reaches 8 frames (93 ms) either way in the encoder and 0.12 s in the decoder, so 0.25 s
    # of context covers it and chunked output equals unchunked output up to float rounding. A window of 1.5 s
    # holds a few hundred MB of activations (384 channels at 5.5 kHz, 96 at 44.1 kHz); longer chunks cost
    # more memory for less context overhead.
    chunking = Chunking(chunk_s=1.0, context_s=0.25)

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        super().__init__(spec, device)
        self.n_codebooks = int(spec.params["n_codebooks"])

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return self.arch.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.n_codebooks

    @property
    def cardinality(self) -> int:
        return self.arch.codebook_size

    def build_model(self):
        from dac import DAC

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return DAC(**self.arch.kwargs())

    def state_dict_from(self, path: Path, *, mmap: bool = False) -> Mapping[str, torch.Tensor]:
        return dac_state_dict(load_plain(path, mmap=mmap), path, self.arch)

    def load(self) -> DacCodec:
        if self._model is not None:
            return self
        self._model = self.build_inference_model().eval().to(self.device)
        return self

    # The model's own encode/decode, split at the quantizer so that variants (KLT) can replace it.
    def encode_with(self, wav: torch.Tensor, quantize) -> Encoded:
        length = wav.shape[-1]
        x = self.model.preprocess(wav.to(self.device), self.sample_rate)  # right-pads to a hop multiple
        return Encoded(quantize(self.model.encoder(x)).long(), int(length))

    def decode_with(self, encoded: Encoded, dequantize) -> torch.Tensor:
        return self.model.decode(dequantize(encoded.codes.to(self.device)))[..., : encoded.num_samples]

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, D, T]`` → codes ``[B, n, T]`` (projected cosine search, as the model does)."""
        _, codes, *_ = self.model.quantizer(latent, n_quantizers=self.n_codebooks)
        return codes[:, : self.n_codebooks]

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.from_codes(codes)[0]

    @property
    def latent_dim(self) -> int:
        return self.arch.latent_dim or self.arch.encoder_dim * 2 ** len(self.arch.encoder_rates)

    @property
    def stored_codebooks(self) -> int:
        """Quantizers the model stores (the first :attr:`num_codebooks` are in use)."""
        return self.arch.n_codebooks

    def latent_codebooks(self, stages: int | None = None) -> torch.Tensor:
        """Out-projected codewords ``E_k[j] = W_out,k c_k,j + b_out,k`` of the first ``stages`` quantizers
        (default: those in use): ``[stages, K, latent_dim]``."""
        books = self.codebooks(stages)
        return torch.stack([c @ out.weight.T + out.bias
                            for c, (_, out) in zip(books, self.projections(stages), strict=True)])

    def codebooks(self, stages: int | None = None) -> torch.Tensor:
        """8-d codebooks of the first ``stages`` quantizers (default: those in use): ``[stages, K, 8]``."""
        quantizers = self.model.quantizer.quantizers[: stages or self.n_codebooks]
        return torch.stack([q.codebook.weight.detach() for q in quantizers])

    def projections(self, stages: int | None = None) -> list[tuple[Projection, Projection]]:
        """``(in_proj, out_proj)`` of the first ``stages`` quantizers (default: those in use): in ``[8, latent]``,
        out ``[latent, 8]``."""
        return [(materialise_weight_norm(q.in_proj), materialise_weight_norm(q.out_proj))
                for q in self.model.quantizer.quantizers[: stages or self.n_codebooks]]


def _family(name: str, help_: str) -> CodecFamily:
    arch = ARCHS[name]
    n = Param("n_codebooks", int, arch.n_codebooks, "quantizers used (bitrate = frame rate × n × 10 bit)",
              minimum=1, maximum=arch.n_codebooks, sweep=True)
    return CodecFamily(name, help_, (n, *weights_params()), DacCodec)


FAMILIES = (
    _family("dac-44khz", "DAC 44.1 kHz mono (8 kbps model), hop 512 (86.13 Hz), 9 codebooks of 1024 x 8"),
    _family("dac-24khz", "DAC 24 kHz mono, hop 320 (75 Hz), 32 codebooks of 1024 x 8"),
    _family("dac-16khz", "DAC 16 kHz mono, hop 320 (50 Hz), 12 codebooks of 1024 x 8"),
    _family("dac-44khz-16kbps", "DAC 44.1 kHz mono (16 kbps model, latent 128), hop 512, 18 codebooks"),
)
