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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from evalkit._lazy import torch
from evalkit.codecs.base import Encoded
from evalkit.codecs.chunking import Chunking
from evalkit.codecs.rvq import PretrainedRvqCodec, weights_params
from evalkit.codecs.safe_load import as_state_dict, load_plain
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param

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


class EncodecCodec(PretrainedRvqCodec):
    """EnCodec at a fixed bandwidth."""

    ARCHS = ARCHS

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        super().__init__(spec, device)
        self.bandwidth_kbps = float(spec.params["bandwidth"])
        # 24 kHz: long inputs in 4 s chunks with 0.5 s of context. The model is causal (its convolutions see
        # 8 frames back), but its encoder and decoder each hold a 2-layer LSTM whose state reaches back without
        # limit; with random weights an impulse fades below 1e-6 of the signal within 0.3 s, so 0.5 s of left
        # context makes chunk edges differ only by what the state remembers from further back. 48 kHz: none; the
        # model already codes 1 s segments independently, each with its own gain, so its memory is bounded.
        self.chunking = Chunking(chunk_s=4.0, context_s=0.5) if self.arch.segment_s is None else None

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

    def build_model(self):
        from encodec import EncodecModel

        build = (EncodecModel.encodec_model_24khz if self.arch.sample_rate == 24_000
                 else EncodecModel.encodec_model_48khz)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = build(pretrained=False)  # never torch.hub: weights come from build_loaded_model
            if self.weights == "random":
                fill_random_codebooks(model)
        return model

    def state_dict_from(self, path: Path, *, mmap: bool = False) -> Mapping[str, torch.Tensor]:
        """The official files are a bare state dict."""
        return as_state_dict(load_plain(path, mmap=mmap), path)

    def load(self) -> EncodecCodec:
        if self._model is not None:
            return self
        model = self.build_inference_model()  # one copy of each weight, not (g, v) and the weight
        model.set_target_bandwidth(self.bandwidth_kbps)
        self._model = model.eval().to(self.device)
        return self

    # The model's own encode/decode, split at the quantizer so that variants (KLT) can replace it.
    def _segments(self, wav: torch.Tensor):
        length = wav.shape[-1]
        seg_len = int(self.arch.segment_s * self.sample_rate) if self.arch.segment_s else length
        stride = self.arch.segment_stride or length
        for offset in range(0, length, stride):
            yield wav[..., offset: offset + seg_len]

    def encode_with(self, wav: torch.Tensor, quantize) -> Encoded:
        model = self.model
        codes, scales = [], []
        for segment in self._segments(wav.to(self.device)):
            if model.normalize:  # per-segment RMS gain of the mono mix, as EncodecModel._encode_frame
                scale = 1e-8 + segment.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
                segment = segment / scale
                scales.append(scale.view(-1, 1))
            codes.append(quantize(model.encoder(segment)).long())
        segment_frames = tuple(int(c.shape[-1]) for c in codes) if self.arch.segment_s else None
        return Encoded(torch.cat(codes, dim=-1), int(wav.shape[-1]),
                       torch.cat(scales, dim=1) if scales else None, segment_frames)

    def decode_with(self, encoded: Encoded, dequantize) -> torch.Tensor:
        model = self.model
        codes = encoded.codes.to(self.device)
        pieces = torch.split(codes, list(encoded.segment_frames), dim=-1) if encoded.segment_frames else [codes]

        def decoded():
            for i, piece in enumerate(pieces):
                out = model.decoder(dequantize(piece))
                if encoded.scales is not None:
                    out = out * encoded.scales[:, i].to(self.device).view(-1, 1, 1)
                yield out

        if len(pieces) == 1:
            return next(decoded())[..., : encoded.num_samples]
        return overlap_add(decoded(), self.arch.segment_stride, encoded.num_samples)

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, D, T]`` → codes ``[B, K, T]`` with the model's residual VQ."""
        q = self.model.quantizer
        return q.encode(latent, self.frame_rate, self.bandwidth_kbps).transpose(0, 1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.decode(codes.transpose(0, 1))

    @property
    def stored_codebooks(self) -> int:
        """Codebooks the model stores (those of its highest bandwidth, as ``EncodecModel`` computes ``n_q``)."""
        return self.arch.codebooks_for(max(self.arch.bandwidths_kbps))

    def codebooks(self, stages: int | None = None) -> torch.Tensor:
        """Codebooks of the first ``stages`` quantizers (default: those in use): ``[stages, K, 128]``."""
        layers = self.model.quantizer.vq.layers[: stages or self.num_codebooks]
        return torch.stack([layer._codebook.embed.detach() for layer in layers])

    def latent_codebooks(self, stages: int | None = None) -> torch.Tensor:
        """The codebooks, which live in the latent itself (Euclidean RVQ): as :meth:`codebooks`."""
        return self.codebooks(stages)

    @property
    def latent_dim(self) -> int:
        return 128


def overlap_add(frames: Iterable[torch.Tensor], stride: int, length: int) -> torch.Tensor:
    """``encodec.utils._linear_overlap_add(list(frames), stride)[..., :length]``, bit for bit, taking the frames
    one at a time: frame ``i`` starts at ``i * stride`` and is weighted by a triangle of the first frame's length;
    each position is divided by the sum of the weights that reached it once no later frame can reach it.

    It holds the output and about one frame of weight sums, where the library's function holds every frame, a
    whole-length weight sum, the output and its quotient (EnCodec 48 kHz, a 10-minute stereo item: 0.2 GB
    against 0.8 GB).
    """
    out = sums = weight = None
    done = 0  # positions before ``done`` are final; ``sums`` holds the weight sums from ``done`` on
    for i, frame in enumerate(frames):
        offset = i * stride
        if out is None:
            t = torch.linspace(0, 1, frame.shape[-1] + 2, device=frame.device, dtype=frame.dtype)[1:-1]
            weight = 0.5 - (t - 0.5).abs()
            out = torch.zeros(*frame.shape[:-1], length, device=frame.device, dtype=frame.dtype)
            sums = torch.zeros(0, device=frame.device, dtype=frame.dtype)
        if offset >= length:
            break
        if offset - done > sums.shape[-1]:
            raise ValueError(f"frame {i} starts at {offset}, after the end of frame {i - 1}: a gap has no weight")
        out[..., done:offset] /= sums[: offset - done]  # no later frame reaches these positions
        sums, done = sums[offset - done:], offset
        end = min(offset + frame.shape[-1], length)
        w = weight[: frame.shape[-1]][: end - offset]
        out[..., offset:end] += w * frame[..., : end - offset]
        if sums.shape[-1] < end - done:
            sums = torch.cat([sums, sums.new_zeros(end - done - sums.shape[-1])])
        sums[offset - done: end - done] += w
    if out is None:
        raise ValueError("overlap_add needs at least one frame")
    if done + sums.shape[-1] < length:
        raise ValueError(f"the frames end at {done + sums.shape[-1]}, before the length asked for ({length})")
    out[..., done:] /= sums[: length - done]
    return out


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
