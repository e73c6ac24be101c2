"""The codec interface.

Two levels, in the spirit of audiocraft's ``CompressionModel``:

* :class:`AudioTransform` — anything that turns audio into processed audio at a fixed configuration
  (a codec, or a reference condition such as a low-pass anchor). It owns the boundary work shared by every
  implementation: input validation, channel policy, resampling in and out, and restoring the input length,
  all recorded in a :class:`ReconstructionReport`.
* :class:`ArrayTransform` — an :class:`AudioTransform` that works on numpy arrays (the reference codecs through
  FFmpeg, the low-pass anchors): it never imports torch, so a run of such variants and numpy metrics does not.
* :class:`Codec` — a transform through discrete codes: ``encode(wav) -> Encoded`` and
  ``decode(Encoded) -> wav`` are the only abstract methods. The bitrate is derived as
  ``frame_rate × Σ log2 K`` over the codebooks in use (plus declared side information), never tabulated.

Configuration (bandwidth, number of codebooks, ...) is fixed at construction; constructors are cheap and
``load()`` builds the model and fetches weights.
"""

from __future__ import annotations

import importlib.metadata
import math
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from evalkit import audio as audio_lib
from evalkit._lazy import torch
from evalkit.audio import AudioError, ChannelPolicy
from evalkit.codecs.chunking import Chunking, decode_chunked, encode_chunked
from evalkit.codecs.spec import CodecSpec


def cuda_possible() -> bool:
    """Whether torch could find a CUDA device here, answered without importing torch where the answer is no:
    a CPU-only build (its version ends in ``+cpu``) or macOS (no CUDA builds). Otherwise ``True``: ask torch."""
    if sys.platform == "darwin":
        return False
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return True  # importing torch will say what is wrong
    return not version.endswith("+cpu")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class Encoded:
    """Codes of a batch plus the side information needed to decode them.

    Attributes:
        codes: ``[batch, n_codebooks, frames]`` int64 code indices.
        num_samples: input length at the codec's rate, before any padding.
        scales: ``[batch, segments]`` per-segment normalisation gains (EnCodec 48 kHz), else ``None``.
        segment_frames: frames of each segment along ``codes``' last axis when the codec works in
            segments, else ``None``.
    """

    codes: torch.Tensor
    num_samples: int
    scales: torch.Tensor | None = None
    segment_frames: tuple[int, ...] | None = None

    @property
    def num_frames(self) -> int:
        return int(self.codes.shape[-1])


@dataclass(frozen=True)
class ReconstructionReport:
    """Everything :meth:`AudioTransform.reconstruct` did at the boundary, for provenance."""

    spec: str
    weights: str
    device: str
    input_rate: int
    codec_rate: int
    resampler: str | None
    input_channels: int
    channel_handling: str
    input_samples: int
    codec_input_samples: int
    codec_output_samples: int
    trimmed_samples: int
    padded_samples: int
    output_samples: int
    encode_s: float
    decode_s: float
    process_s: float  # the whole transform at the codec rate (encode + decode, or filtering)
    #: Bits of this input's coded representation per second of input: measured from the encoded packets by
    #: transforms that set it (reference codecs), else ``bitrate_bps`` × coded streams; ``None`` without bitrate.
    measured_bitrate_bps: float | None = None
    decoder_rate: int | None = None  # rate the decoder produced when it differs from codec_rate (resampled back)
    #: ``{"chunk_s", "context_s"}`` when the input was coded in chunks (:mod:`evalkit.codecs.chunking`), else ``None``
    chunked: dict[str, float] | None = None


@dataclass(frozen=True)
class Reconstruction:
    """Processed audio at the input rate and length (``[channels, samples]``) plus codes and report."""

    audio: np.ndarray
    sample_rate: int
    report: ReconstructionReport
    encoded: Encoded | None = None


#: Inputs this long or longer (seconds) go to :meth:`AudioTransform.process_at_input_rate` where a transform
#: implements it: resampled block by block, not held whole at another rate
STREAM_ABOVE_S = 30.0


def _upmix_handling(channels: int) -> str:
    return f"upmix 1->{channels}, output averaged"


@dataclass
class ProcessContext:
    """Per-call state of :meth:`AudioTransform.process`: the rate it runs at, timings, codes produced."""

    sample_rate: int
    encode_s: float = 0.0
    decode_s: float = 0.0
    encodings: list[Encoded] = field(default_factory=list)
    measured_bitrate_bps: float | None = None  # set by transforms that measure their bitstream
    decoder_rate: int | None = None  # set when the decoder's output rate differs (and was resampled back)
    resample_s: float = 0.0  # evalkit's own resampling inside process_at_input_rate (not the codec's time)
    chunking: Chunking | None = None  # code this input in chunks (set by reconstruct for long inputs)


class AudioTransform(ABC):
    """Audio in, audio out, at a fixed configuration; subclasses implement :meth:`process`."""

    #: Weights description shown with every output ("pretrained", "random (seed 0)", "none").
    weights_label: str = "none"
    #: How long inputs are coded in chunks (:mod:`evalkit.codecs.chunking`; :class:`Codec` subclasses whose
    #: ``encode``/``decode`` work on any frame-aligned window), or ``None``: always whole.
    chunking: Chunking | None = None

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        self.spec = spec
        self._device_request = device
        self._device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        """The device the model runs on, resolved on first use (so describing a codec never imports torch)."""
        if self._device is None:
            self._device = resolve_device(self._device_request)
        return self._device

    @property
    def device_name(self) -> str:
        """The device as recorded with each unit (``"cpu"``, ``"cuda:0"``)."""
        return str(self.device)

    @property
    def device_type(self) -> str:
        """``"cpu"`` or ``"cuda"``, without importing torch where it must be the CPU (planning a run then keeps
        the coordinator free of torch's few hundred MB)."""
        if self._device is None and (self._device_request == "cpu" or self._device_request == "auto"
                                     and not cuda_possible()):
            return "cpu"
        return self.device.type

    # --- static description --------------------------------------------------------------------
    @property
    @abstractmethod
    def sample_rate(self) -> int | None:
        """Rate the transform runs at, or ``None`` when it runs at the input's rate."""

    @property
    def channels(self) -> int | None:
        """Channels the model takes, or ``None`` for any number."""
        return None

    @property
    def bitrate_bps(self) -> float | None:
        """Bits per second of the coded representation, ``None`` for non-codecs."""
        return None

    @property
    def min_samples(self) -> int:
        """Shortest input (samples at :attr:`sample_rate`) the transform accepts."""
        return 1

    def codec_rate_for(self, input_rate: int) -> int:
        """Rate the transform runs at for an input at ``input_rate`` (resampled to it by :meth:`reconstruct`)."""
        return self.sample_rate or input_rate

    def load(self) -> AudioTransform:
        """Build the model / fetch weights; idempotent. Cheap transforms need nothing."""
        return self

    def input_problem(self, sample_rate: int, channels: int,
                      channel_policy: ChannelPolicy | str = ChannelPolicy.PER_CHANNEL) -> str | None:
        """Why these parameters cannot code an input of ``channels`` at ``sample_rate`` (the codec library
        refuses them, or would silently change them), known without running it; ``None`` when they can.

        An input :meth:`reconstruct` refuses anyway (more channels than the codec takes) gives ``None``: that is
        a failed unit with its reason, not a problem of the parameters.
        """
        try:
            batch, _ = self._channels_to_batch(np.zeros((channels, 1), np.float32), "input", channel_policy)
        except AudioError:
            return None
        return self.stream_problem(self.codec_rate_for(sample_rate), batch.shape[1])

    def stream_problem(self, codec_rate: int, channels: int) -> str | None:
        """Why these parameters cannot code one stream of ``channels`` at ``codec_rate``; ``None`` (the default)
        when they can. Override it where the codec library has limits that depend on the input."""
        return None

    @abstractmethod
    def process(self, wav: torch.Tensor, context: ProcessContext) -> torch.Tensor:
        """``[batch, channels, samples]`` at ``context.sample_rate`` → same shape; fills ``context``."""

    #: Whether :meth:`process_at_input_rate` also takes a mono input to a codec of more channels, upmixing it and
    #: averaging the output back to mono as :meth:`reconstruct` does around :meth:`process`
    streams_mono_upmixed = False

    def process_at_input_rate(self, x: np.ndarray, input_rate: int, context: ProcessContext
                              ) -> tuple[np.ndarray, int, int] | None:
        """Optional, for inputs of :data:`STREAM_ABOVE_S` or more taken as they are (no channel policy applies;
        see :attr:`streams_mono_upmixed` for mono inputs to a codec of more channels):
        code ``x`` (``[channels, samples]`` at ``input_rate``), resampling to ``context.sample_rate`` and back
        block by block, as :meth:`reconstruct` would resample the whole signals around :meth:`process` (the
        output trimmed to the codec input's length before resampling back); fill ``context`` (its
        ``resample_s``: that resampling's time). Returns the output at ``input_rate``, the codec input's samples
        and the codec output's, or ``None`` (the default): :meth:`reconstruct` resamples whole signals."""
        return None

    # --- boundary work -------------------------------------------------------------------------
    def reconstruct(self, samples: np.ndarray, sample_rate: int, *,
                    channel_policy: ChannelPolicy | str = ChannelPolicy.PER_CHANNEL,
                    source: str = "input", chunked: bool | None = None) -> Reconstruction:
        """Run ``samples`` (``[channels, samples]`` at ``sample_rate``) through the transform.

        Resamples to the codec rate and back with the one resampler, applies the channel policy, and
        restores the exact input length. A transform with a :attr:`chunking` codes inputs longer than its
        threshold in chunks (``chunked``: ``None`` decides by the input's length, a bool forces it, as the
        runner does with what it planned and keyed).

        Raises:
            AudioError: empty, non-finite or silent input, input shorter than one frame, or more channels
                than the codec takes; the message names ``source`` and the spec.
        """
        x = audio_lib.as_2d(samples)
        audio_lib.validate(x, source)
        self.load()
        in_channels, in_len = x.shape
        codec_rate = self.codec_rate_for(sample_rate)
        timing = ProcessContext(codec_rate)
        if chunked is None:
            chunked = self.chunking is not None and self.chunking.applies(in_len, sample_rate)
        timing.chunking = self.chunking if chunked else None
        streamed = None
        takes_as_is = self.channels in (None, in_channels)
        if in_len >= STREAM_ABOVE_S * sample_rate and not chunked and (
                takes_as_is or (in_channels == 1 and self.streams_mono_upmixed)):
            t0 = time.perf_counter()
            streamed = self.process_at_input_rate(x, sample_rate, timing)
        if streamed is not None:
            y, codec_len, codec_out_len = streamed
            process_s = time.perf_counter() - t0 - timing.resample_s
            handling, batch_size = "as-is" if takes_as_is else _upmix_handling(self.channels), 1
            trimmed = max(0, codec_out_len - codec_len)
        else:
            y, codec_len, codec_out_len, handling, batch_size, process_s = self._process_whole(
                x, sample_rate, codec_rate, source, channel_policy, timing)
            trimmed = max(0, y.shape[1] - codec_len)
            y = y[:, :codec_len]
            y = audio_lib.resample(y, codec_rate, sample_rate)
        padded = max(0, in_len - y.shape[1])
        trimmed += max(0, y.shape[1] - in_len)
        y = np.pad(y[:, :in_len], ((0, 0), (0, padded))) if padded else y[:, :in_len]  # no copy when not padded
        measured = timing.measured_bitrate_bps
        if measured is None and self.bitrate_bps is not None:
            measured = self.bitrate_bps * batch_size  # fixed-rate codes: every coded stream is sent
        report = ReconstructionReport(
            spec=str(self.spec), weights=self.weights_label, device=self.device_name,
            input_rate=sample_rate, codec_rate=codec_rate,
            resampler=audio_lib.RESAMPLER if codec_rate != sample_rate else None,
            input_channels=in_channels, channel_handling=handling,
            input_samples=in_len, codec_input_samples=codec_len, codec_output_samples=codec_out_len,
            trimmed_samples=trimmed, padded_samples=padded, output_samples=y.shape[1],
            encode_s=timing.encode_s, decode_s=timing.decode_s, process_s=process_s,
            measured_bitrate_bps=measured, decoder_rate=timing.decoder_rate,
            chunked=timing.chunking.key() if timing.chunking is not None else None)
        encoded = timing.encodings[0] if len(timing.encodings) == 1 else None
        return Reconstruction(np.ascontiguousarray(y, dtype=np.float32), sample_rate, report, encoded)

    def _process_whole(self, x: np.ndarray, sample_rate: int, codec_rate: int, source: str,
                       channel_policy: ChannelPolicy | str, timing: ProcessContext
                       ) -> tuple[np.ndarray, int, int, str, int, float]:
        """:meth:`process` on the whole input resampled to ``codec_rate``: (output ``[channels, samples]`` at
        ``codec_rate``, codec input samples, codec output samples, channel handling, batch size, seconds)."""
        in_len = x.shape[1]
        x_codec = audio_lib.resample(x, sample_rate, codec_rate)
        if x_codec.shape[1] < self.min_samples:
            raise AudioError(source, f"too short for {self.spec}: {in_len / sample_rate * 1000:.1f} ms, "
                                     f"need at least {self.min_samples / codec_rate * 1000:.1f} ms (one frame)")
        batch, handling = self._channels_to_batch(x_codec, source, channel_policy)
        out_np, process_s = self._run_process(batch, timing)
        codec_len, batch_size = x_codec.shape[1], batch.shape[0]
        del batch, x_codec  # a long input's resampled copy is not held while the output is resampled back
        return (self._batch_to_channels(out_np, handling), codec_len, out_np.shape[-1], handling, batch_size,
                process_s)

    def _run_process(self, batch: np.ndarray, context: ProcessContext) -> tuple[np.ndarray, float]:
        """:meth:`process` on ``batch`` (``[batch, channels, samples]``): its float32 output and its seconds."""
        mode = torch.inference_mode()  # before the clock: the first call imports torch
        t0 = time.perf_counter()
        with mode:
            out = self.process(torch.from_numpy(batch).to(self.device), context)
        process_s = time.perf_counter() - t0
        return out.detach().float().cpu().numpy(), process_s

    def _channels_to_batch(self, x: np.ndarray, source: str, policy: ChannelPolicy | str
                           ) -> tuple[np.ndarray, str]:
        channels, want = x.shape[0], self.channels
        policy = ChannelPolicy(policy)
        if want is None or channels == want:
            return x[None], "as-is"
        if want == 1:
            if policy is ChannelPolicy.MONO:
                return x.mean(axis=0, keepdims=True)[None], f"downmix {channels}->1"
            return x[:, None, :], f"per-channel ({channels} x mono)"
        if channels == 1:  # the one channel seen ``want`` times, not copied (torch refuses in-place writes to it)
            upmix = np.lib.stride_tricks.as_strided(x, (1, want, x.shape[1]), (0, 0, x.strides[1]))
            return upmix, _upmix_handling(want)
        raise AudioError(source, f"has {channels} channels; {self.spec} takes at most {want}")

    @staticmethod
    def _batch_to_channels(y: np.ndarray, handling: str) -> np.ndarray:
        if handling.startswith("per-channel"):
            return y[:, 0, :]
        if handling.startswith("upmix"):
            return y[0].mean(axis=0, keepdims=True)
        return y[0]

    def describe(self) -> str:
        return f"{self.spec} [weights: {self.weights_label}]"

    def weights_identity(self) -> str | None:
        """What identifies weights that the spec string does not (e.g. a checkpoint's hash), for cache keys."""
        return None

    def library_identity(self) -> str | None:
        """The library computing the output, as ``dist=version``, for cache keys: where a transform computes it
        with a library the runner's table of codec libraries does not name (e.g. the anchors' ``scipy.fft``)."""
        return None

    def info(self) -> dict:
        """Extra provenance recorded with every unit (e.g. a KLT variant's spectrum and accounting)."""
        return {}


class ArrayTransform(AudioTransform):
    """An :class:`AudioTransform` on numpy arrays, on the CPU: subclasses implement :meth:`process_array`.
    :meth:`reconstruct` calls it directly, without torch; :meth:`process` takes and gives tensors as for any
    transform."""

    def __init__(self, spec: CodecSpec, device: str | torch.device = "cpu"):
        super().__init__(spec, "cpu")

    @property
    def device_name(self) -> str:
        return "cpu"

    @abstractmethod
    def process_array(self, x: np.ndarray, context: ProcessContext) -> np.ndarray:
        """``[batch, channels, samples]`` float32 at ``context.sample_rate`` → same shape; fills ``context``."""

    def process(self, wav: torch.Tensor, context: ProcessContext) -> torch.Tensor:
        return torch.from_numpy(self.process_array(wav.detach().cpu().numpy(), context))

    def _run_process(self, batch: np.ndarray, context: ProcessContext) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        out = self.process_array(batch, context)
        return out.astype(np.float32, copy=False), time.perf_counter() - t0


class Codec(AudioTransform):
    """A transform through discrete codes (residual VQ or similar): subclass it to add a codec.

    Implement, from the constructor's arguments alone (no model needed, so listing and planning stay cheap):

    * :attr:`sample_rate` (Hz the model runs at), :attr:`frame_rate` (code frames per second),
      :attr:`num_codebooks` (codebooks in use) and :attr:`cardinality` (entries per codebook, K); the bitrate
      :attr:`bitrate_bps` is derived from them (``frame_rate × Σ log2 K``), never declared;
    * :meth:`encode` (``[batch, channels, samples]`` at :attr:`sample_rate` → :class:`Encoded` with integer codes
      ``[batch, num_codebooks, frames]`` and ``num_samples``) and :meth:`decode` (back to
      ``[batch, channels, samples]``, at most ``num_samples`` long).

    Optionally override :attr:`channels` (``1`` for a mono model, the default ``None`` takes any number),
    :meth:`load` (build the model and fetch weights, idempotent; import optional packages here with a pip hint),
    :attr:`weights_label` (``"pretrained"``, ``"random (seed 0) - NOT a pretrained model"``...),
    :meth:`weights_identity` (a checkpoint's hash, keyed with every unit), :meth:`library_identity` (the
    ``dist=version`` of a library computing the output, keyed likewise), :attr:`side_info_bps`,
    :attr:`codebook_sizes` (codebooks of different sizes), :meth:`codebooks` (codewords, for analyses),
    :meth:`info` (extra provenance) and :attr:`~AudioTransform.chunking` (a
    :class:`~evalkit.codecs.chunking.Chunking` when ``encode`` takes any frame-aligned window and ``decode`` any
    run of frames with no side information: long inputs are then coded in chunks with that much context).
    The constructor takes ``(spec, device)``: read the parameters from ``spec.params`` (declared as
    :class:`~evalkit.codecs.Param` in the family), keep it cheap, and call ``super().__init__(spec, device)``.

    Do not override :meth:`~AudioTransform.reconstruct`: it validates the input, resamples to
    :attr:`sample_rate` and back (soxr VHQ), applies the channel policy (mono models code each channel), times
    encode and decode, restores the input's exact length and reports every step (:class:`ReconstructionReport`).
    The codes it returns give the codebook-usage metrics; padding frames past the input's end are excluded.
    A family (:class:`~evalkit.codecs.CodecFamily`) ties a name and its parameters to the class; give it to
    evalkit as a plugin (README, "How to add a codec").
    """

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Code frames per second."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """Codebooks in use at this configuration."""

    @property
    @abstractmethod
    def cardinality(self) -> int:
        """Entries per codebook (K)."""

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.cardinality,) * self.num_codebooks

    @property
    def side_info_bps(self) -> float:
        """Bits per second of side information sent besides the codes (e.g. segment gains)."""
        return 0.0

    @property
    def code_bitrate_bps(self) -> float:
        """``frame_rate × Σ_q log2 K_q`` over the codebooks in use."""
        return self.frame_rate * sum(math.log2(k) for k in self.codebook_sizes)

    @property
    def bitrate_bps(self) -> float:
        return self.code_bitrate_bps + self.side_info_bps

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate / self.frame_rate)

    @property
    def min_samples(self) -> int:
        return self.hop_length

    @abstractmethod
    def encode(self, wav: torch.Tensor) -> Encoded:
        """``[batch, channels, samples]`` at :attr:`sample_rate` → :class:`Encoded`."""

    @abstractmethod
    def decode(self, encoded: Encoded) -> torch.Tensor:
        """:class:`Encoded` → ``[batch, channels, samples]``, cropped to at most ``encoded.num_samples``.

        Some decoders return a few samples fewer (DAC's transposed convolutions); :meth:`reconstruct`
        zero-pads those and records them in ``padded_samples``.
        """

    def codebooks(self) -> torch.Tensor | None:
        """``[num_codebooks, cardinality, dim]`` codewords of the codebooks in use, or ``None``."""
        return None

    def encode_with(self, wav: torch.Tensor, quantize) -> Encoded:
        """Encode with another quantizer (``latent [B, D, T] -> codes [B, K, T]``); RVQ codecs only."""
        raise NotImplementedError(f"{self.spec.family} does not expose its latents")

    def decode_with(self, encoded: Encoded, dequantize) -> torch.Tensor:
        """Decode with another dequantizer (``codes -> latent [B, D, T]``); RVQ codecs only."""
        raise NotImplementedError(f"{self.spec.family} does not expose its latents")

    def process(self, wav: torch.Tensor, context: ProcessContext) -> torch.Tensor:
        self.load()
        t0 = time.perf_counter()
        if context.chunking is None:
            encoded = self.encode(wav)
            t1 = time.perf_counter()
            out = self.decode(encoded)
        else:
            encoded = self._encode_chunked(wav, context.chunking)
            t1 = time.perf_counter()
            out = self._decode_chunked(encoded, context.chunking)
        context.encode_s += t1 - t0
        context.decode_s += time.perf_counter() - t1
        context.encodings.append(encoded)
        return out

    def _encode_chunked(self, wav: torch.Tensor, chunking: Chunking) -> Encoded:
        def encode(window: torch.Tensor) -> torch.Tensor:
            encoded = self.encode(window)
            if encoded.scales is not None or encoded.segment_frames is not None:
                raise ValueError(f"{self.spec}: a codec with per-segment side information cannot be chunked")
            return encoded.codes

        chunk, context = chunking.frames(self.hop_length, self.sample_rate)
        return Encoded(encode_chunked(encode, wav, self.hop_length, chunk, context), int(wav.shape[-1]))

    def _decode_chunked(self, encoded: Encoded, chunking: Chunking) -> torch.Tensor:
        chunk, context = chunking.frames(self.hop_length, self.sample_rate)
        return decode_chunked(lambda codes, samples: self.decode(Encoded(codes, samples)), encoded.codes,
                              encoded.num_samples, self.hop_length, chunk, context)
