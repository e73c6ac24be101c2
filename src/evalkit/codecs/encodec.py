"""EnCodec (Défossez et al., 2022) through the ``encodec`` package.

* ``encodec-24khz``: causal mono model, 75 Hz frames, codebooks of 1024; bandwidths 1.5/3/6/12/24 kbps use
  2/4/8/16/32 codebooks.
* ``encodec-48khz``: non-causal stereo model, 150 Hz frames; bandwidths 3/6/12/24 kbps use 2/4/8/16 codebooks.
  It codes 1 s segments (1 % overlap, stride 0.99 s) each with its own RMS gain. The gain is side information:
  the official bitstream stores it as a 32-bit float per segment, i.e. 32 / 0.99 ≈ 32.3 bit/s, which
  :attr:`side_info_bps` reports and :attr:`bitrate_bps` includes (``code_bitrate_bps`` excludes it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit import audio as audio_lib
from evalkit._lazy import torch
from evalkit.codecs.base import Encoded, ProcessContext
from evalkit.codecs.chunking import Chunking
from evalkit.codecs.rvq import PretrainedRvqCodec, weights_params
from evalkit.codecs.safe_load import as_state_dict, load_plain
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param

SCALE_BITS = 32
ENCODE_BLOCK_S = 10  # seconds of a long input resampled at a time (process_at_input_rate)

log = logging.getLogger(__name__)


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
    streams_mono_upmixed = True  # the 48 kHz stereo model (process_at_input_rate)

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
        codes, scales = [], []
        for segment in self._segments(wav.to(self.device)):
            code, scale = self._encode_segment(segment, quantize)
            codes.append(code)
            if scale is not None:
                scales.append(scale)
        segment_frames = tuple(int(c.shape[-1]) for c in codes) if self.arch.segment_s else None
        return Encoded(torch.cat(codes, dim=-1), int(wav.shape[-1]),
                       torch.cat(scales, dim=1) if scales else None, segment_frames)

    def decode_with(self, encoded: Encoded, dequantize) -> torch.Tensor:
        codes = encoded.codes.to(self.device)
        pieces = torch.split(codes, list(encoded.segment_frames), dim=-1) if encoded.segment_frames else [codes]
        scales = [None] * len(pieces) if encoded.scales is None else encoded.scales.unbind(dim=1)
        decoded = (self._decode_segment(piece, scale, dequantize) for piece, scale in zip(pieces, scales,
                                                                                         strict=True))
        if len(pieces) == 1:
            return next(decoded)[..., : encoded.num_samples]
        return overlap_add(decoded, self.arch.segment_stride, encoded.num_samples)

    def _encode_segment(self, segment: torch.Tensor, quantize) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One segment's codes and, for a normalising model, its gain (``[batch, 1]``)."""
        model, scale = self.model, None
        if model.normalize:  # per-segment RMS gain of the mono mix, as EncodecModel._encode_frame
            scale = 1e-8 + segment.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
            segment = segment / scale
            scale = scale.view(-1, 1)
        return quantize(model.encoder(segment)).long(), scale

    def _decode_segment(self, codes: torch.Tensor, scale: torch.Tensor | None, dequantize) -> torch.Tensor:
        out = self.model.decoder(dequantize(codes))
        return out if scale is None else out * scale.to(self.device).view(-1, 1, 1)

    def process_at_input_rate(self, x: np.ndarray, input_rate: int, context: ProcessContext
                              ) -> tuple[np.ndarray, int, int] | None:
        """The 48 kHz model on a long input, segment by segment: the input resampled to 48 kHz as it is fed (a mono
        one seen in both channels), each 1 s segment coded and decoded as soon as it is complete, the overlap-added
        output (averaged back to mono) resampled back as it becomes final. The values of the whole-signal path bit
        for bit, without its whole-length copies at 48 kHz (input, stereo output, and the mix)."""
        channels = x.shape[0]
        if self.arch.segment_s is None or channels not in (1, self.channels):
            return None  # 24 kHz codes long inputs in chunks; more channels than the model's are refused
        rate, stride = self.sample_rate, self.arch.segment_stride
        seg_len = int(self.arch.segment_s * rate)
        to_codec = audio_lib.StreamResampler(input_rate, rate, channels)
        back = audio_lib.StreamResampler(rate, input_rate, channels)
        joined = OverlapAdd(stride)
        codes, scales = [], []
        fed = {"samples": 0}

        def to_output(block: torch.Tensor) -> np.ndarray:
            y = block[0].float().cpu().numpy()
            return back(y.mean(axis=0, keepdims=True) if channels < self.channels else y)

        def code(segment: np.ndarray) -> np.ndarray:
            wav = torch.from_numpy(segment)[None].to(self.device)
            wav = wav.expand(1, self.channels, wav.shape[-1])  # a mono input in both channels
            t0 = time.perf_counter()
            with torch.inference_mode():
                code, scale = self._encode_segment(wav, self.quantize)
                t1 = time.perf_counter()
                out = joined.add(self._decode_segment(code, scale, self.dequantize))
            context.encode_s += t1 - t0
            context.decode_s += time.perf_counter() - t1
            codes.append(code)
            if scale is not None:
                scales.append(scale)
            return to_output(out)

        def output_blocks():
            held, held_from = np.zeros((channels, 0), np.float32), 0  # the input at 48 kHz from sample held_from
            step = ENCODE_BLOCK_S * input_rate
            for start in range(0, x.shape[1], step):
                block = to_codec(x[:, start:start + step], last=start + step >= x.shape[1])
                fed["samples"] += block.shape[1]
                held = np.concatenate([held, block], axis=1)
                while held.shape[1] >= seg_len:  # the next segment is complete
                    yield code(held[:, :seg_len])
                    held, held_from = held[:, stride:], held_from + stride
            while held_from < fed["samples"]:  # the last segments, shorter, as the whole path's
                yield code(held[:, :seg_len])
                held, held_from = held[:, stride:], held_from + stride
            yield to_output(joined.end(fed["samples"]))
            yield back.end()

        t0 = time.perf_counter()
        y = audio_lib.collect_blocks(output_blocks(), channels, x.shape[1] + input_rate)
        context.resample_s += to_codec.seconds + back.seconds
        context.encodings.append(Encoded(torch.cat(codes, dim=-1), fed["samples"],
                                         torch.cat(scales, dim=1) if scales else None,
                                         tuple(int(c.shape[-1]) for c in codes)))
        log.debug("%s: %.1f s streamed in %.1f s", self.spec, x.shape[1] / input_rate, time.perf_counter() - t0)
        return y, fed["samples"], fed["samples"]

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


class OverlapAdd:
    """``encodec.utils._linear_overlap_add`` taken one frame at a time, bit for bit: frame ``i`` starts at
    ``i * stride`` and is weighted by a triangle of the first frame's length, and each position is divided by the
    sum of the weights that reached it. :meth:`add` returns the positions that no later frame reaches, final;
    :meth:`end` the rest. It holds about one frame, where the library's function holds every frame, a
    whole-length weight sum, the output and its quotient."""

    def __init__(self, stride: int):
        self.stride = stride
        self.frames = 0
        self.done = 0  # positions before ``done`` were returned; ``acc`` and ``sums`` hold those from ``done`` on
        self.acc = self.sums = self.weight = None

    def add(self, frame: torch.Tensor) -> torch.Tensor:
        """Add the next frame (``[..., samples]``); returns the output's final positions it makes (``[..., n]``,
        ``n`` possibly 0)."""
        offset = self.frames * self.stride
        if self.weight is None:
            t = torch.linspace(0, 1, frame.shape[-1] + 2, device=frame.device, dtype=frame.dtype)[1:-1]
            self.weight = 0.5 - (t - 0.5).abs()
            self.acc = frame.new_zeros((*frame.shape[:-1], 0))
            self.sums = frame.new_zeros(0)
        if offset - self.done > self.sums.shape[-1]:
            raise ValueError(f"frame {self.frames} starts at {offset}, after the end of the one before: a gap")
        final = self._take(offset - self.done)
        end = offset + frame.shape[-1] - self.done
        if self.sums.shape[-1] < end:
            grow = end - self.sums.shape[-1]
            self.acc = torch.cat([self.acc, self.acc.new_zeros((*self.acc.shape[:-1], grow))], dim=-1)
            self.sums = torch.cat([self.sums, self.sums.new_zeros(grow)])
        w = self.weight[: frame.shape[-1]]
        self.acc[..., offset - self.done: end] += w * frame
        self.sums[offset - self.done: end] += w
        self.frames += 1
        return final

    def end(self, length: int) -> torch.Tensor:
        """The output's positions from the last returned one up to ``length`` (those beyond are dropped)."""
        if self.weight is None:
            raise ValueError("overlap-add needs at least one frame")
        if self.done + self.sums.shape[-1] < length:
            raise ValueError(f"the frames end at {self.done + self.sums.shape[-1]}, before the length asked for "
                             f"({length})")
        return self._take(length - self.done)

    def _take(self, n: int) -> torch.Tensor:
        final = self.acc[..., :n] / self.sums[:n]
        self.acc, self.sums, self.done = self.acc[..., n:], self.sums[n:], self.done + n
        return final


def overlap_add(frames: Iterable[torch.Tensor], stride: int, length: int) -> torch.Tensor:
    """``encodec.utils._linear_overlap_add(list(frames), stride)[..., :length]``, bit for bit, the frames taken
    one at a time (:class:`OverlapAdd`): EnCodec 48 kHz on a 10-minute stereo item holds 0.2 GB, not 0.8."""
    joined, out = OverlapAdd(stride), None
    for frame in frames:
        if out is None:
            out = frame.new_empty((*frame.shape[:-1], length))
        final = joined.add(frame)
        out[..., joined.done - final.shape[-1]: joined.done] = final
    final = joined.end(length)
    if out is not None:
        out[..., joined.done - final.shape[-1]:] = final
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
