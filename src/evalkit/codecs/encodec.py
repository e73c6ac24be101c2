"""EnCodec (Défossez et al., 2022) through the ``encodec`` package.

* ``encodec-24khz``: causal mono model, 75 Hz frames, codebooks of 1024; bandwidths 1.5/3/6/12/24 kbps use
  2/4/8/16/32 codebooks.
* ``encodec-48khz``: non-causal stereo model, 150 Hz frames; bandwidths 3/6/12/24 kbps use 2/4/8/16 codebooks.
  It codes 1 s segments (1 % overlap, stride 0.99 s) each with its own RMS gain. The gain is side information:
  the official bitstream stores it as a 32-bit float per segment, i.e. 32 / 0.99 ≈ 32.3 bit/s, which
  :attr:`side_info_bps` reports and :attr:`bitrate_bps` includes (``code_bitrate_bps`` excludes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param
from evalkit.codecs.weights import get_entry

SCALE_BITS = 32


@dataclass(frozen=True)
class EncodecArch:
    family: str
    weights_name: str
    sample_rate: int
    channels: int
    hop_length: int
    bandwidths_kbps: tuple[float, ...]
    segment_s: float | None
    overlap: float = 0.01

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sample_rate / self.hop_length)

    def codebooks_for(self, bandwidth_kbps: float) -> int:
        return int(bandwidth_kbps * 1000 // (self.frame_rate * 10))

    @property
    def segment_stride(self) -> int | None:
        if self.segment_s is None:
            return None
        return max(1, int((1 - self.overlap) * int(self.segment_s * self.sample_rate)))


ARCHS = {
    "encodec-24khz": EncodecArch("encodec-24khz", "encodec_24khz", 24_000, 1, 320, (1.5, 3.0, 6.0, 12.0, 24.0), None),
    "encodec-48khz": EncodecArch("encodec-48khz", "encodec_48khz", 48_000, 2, 320, (3.0, 6.0, 12.0, 24.0), 1.0),
}
CARDINALITY = 1024


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


class EncodecCodec(Codec):
    """EnCodec at a fixed bandwidth."""

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        super().__init__(spec, device)
        self.arch = ARCHS[spec.family]
        self.bandwidth_kbps = float(spec.params["bandwidth"])
        self.weights = spec.params["weights"]
        self.seed = int(spec.params["seed"])
        self.weights_label = weights_label(self.weights, self.seed)
        self._model = None

    # static description (no model needed)
    @property
    def sample_rate(self) -> int:
        return self.arch.sample_rate

    @property
    def channels(self) -> int:
        return self.arch.channels

    @property
    def frame_rate(self) -> float:
        return float(self.arch.frame_rate)

    @property
    def num_codebooks(self) -> int:
        return self.arch.codebooks_for(self.bandwidth_kbps)

    @property
    def cardinality(self) -> int:
        return CARDINALITY

    @property
    def side_info_bps(self) -> float:
        stride = self.arch.segment_stride
        return 0.0 if stride is None else SCALE_BITS * self.sample_rate / stride

    # model
    @property
    def model(self):
        self.load()
        return self._model

    def load(self) -> EncodecCodec:
        if self._model is not None:
            return self
        from encodec import EncodecModel

        build = (EncodecModel.encodec_model_24khz if self.arch.sample_rate == 24_000
                 else EncodecModel.encodec_model_48khz)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = build(pretrained=False)
            if self.weights == "random":
                fill_random_codebooks(model)
        if self.weights != "random":
            explicit = None if self.weights == "pretrained" else self.weights
            path = get_entry(self.arch.weights_name).resolve(explicit)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.set_target_bandwidth(self.bandwidth_kbps)
        self._model = model.eval().to(self.device)
        return self

    def encode(self, wav: torch.Tensor) -> Encoded:
        frames = self.model.encode(wav.to(self.device))
        codes = torch.cat([c for c, _ in frames], dim=-1).long()
        scales = None
        if frames[0][1] is not None:
            scales = torch.cat([s.view(-1, 1) for _, s in frames], dim=1)
        segment_frames = tuple(int(c.shape[-1]) for c, _ in frames) if self.arch.segment_s else None
        return Encoded(codes, int(wav.shape[-1]), scales, segment_frames)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        codes = encoded.codes.to(self.device)
        if encoded.segment_frames is None:
            frames = [(codes, None)]
        else:
            pieces = torch.split(codes, list(encoded.segment_frames), dim=-1)
            scales = encoded.scales.to(self.device) if encoded.scales is not None else None
            frames = [(c, scales[:, i: i + 1] if scales is not None else None) for i, c in enumerate(pieces)]
        return self.model.decode(frames)[..., : encoded.num_samples]

    def codebooks(self) -> torch.Tensor:
        layers = self.model.quantizer.vq.layers[: self.num_codebooks]
        return torch.stack([layer._codebook.embed.detach() for layer in layers])


def fill_random_codebooks(model) -> None:
    """EnCodec built with ``pretrained=False`` has all-zero codebooks: fill them with N(0, 1) codewords."""
    for layer in model.quantizer.vq.layers:
        book = layer._codebook
        book.embed.copy_(torch.randn_like(book.embed))
        book.embed_avg.copy_(book.embed)
        book.inited.fill_(1)


def _family(name: str, help_: str) -> CodecFamily:
    arch = ARCHS[name]
    bandwidth = Param("bandwidth", float, 6.0, "target bandwidth in kbps", choices=arch.bandwidths_kbps,
                      sweep=True)
    return CodecFamily(name, help_, (bandwidth, *weights_params()), EncodecCodec)


FAMILIES = (
    _family("encodec-24khz", "EnCodec 24 kHz mono, causal, 75 Hz frames, RVQ 1024-entry codebooks"),
    _family("encodec-48khz", "EnCodec 48 kHz stereo, 1 s segments with a per-segment gain (side info), "
                             "150 Hz frames"),
)
