"""Standard reference codecs through PyAV (FFmpeg): ``opus``, ``mp3`` and ``aac``.

PyPI's ``av`` wheel bundles FFmpeg with libopus, libmp3lame and FFmpeg's native AAC encoder, so these run
wherever evalkit runs. Audio is encoded into an in-memory container (no temporary files) and decoded back:

* ``opus?bitrate_kbps=6…510&application=audio|voip|lowdelay`` — libopus (its default VBR, 20 ms frames) in Ogg.
  The encoder takes 8, 12, 16, 24 or 48 kHz: :meth:`ReferenceCodec.codec_rate_for` picks the nearest rate at or
  above the input's (evalkit's resampler does the conversion; the report records it). FFmpeg's Opus decoder
  always outputs 48 kHz; that output is resampled back to the encoder's rate with the same resampler and the
  report says so (``decoder_rate``). The Ogg demuxer removes the pre-skip of the OpusHead header and the end
  padding given by the last page's granule position.
* ``mp3?bitrate_kbps=8…320`` — LAME, constant bitrate. The bitrate must be a Layer III bitrate of the MPEG
  version whose sample rate is used: 32–320 kbps at 32/44.1/48 kHz (MPEG-1), 8–160 kbps at 16/22.05/24 kHz
  (MPEG-2), 8–64 kbps at 8/11.025/12 kHz (MPEG-2.5); the rate is the nearest at or above the input's among
  those that allow the bitrate (else the highest that does). The demuxer removes LAME's encoder delay and
  padding using the LAME tag.
* ``aac?bitrate_kbps=16…320`` — FFmpeg's native AAC-LC encoder in ADTS. ADTS carries no priming information, so
  the priming samples the encoder reports (the first packet's timestamp is ``−priming``, 1024 for this encoder)
  are removed after decoding, and the trailing padding is cut at the input length by the caller (recorded as
  ``trimmed_samples``).

Mono and stereo inputs are coded as they are (stereo jointly, the bitrate being the stream's total); more
channels are refused. :meth:`ReferenceCodec.stream_problem` names a bitrate the library would not take as given
for a stream's rate and channels (libopus: at most 256 kbps per channel, else FFmpeg refuses to open it; AAC: at
most 6144 bits per channel per 1024-sample frame, else FFmpeg lowers it silently); ``evalkit run`` checks it
against every item before any unit runs. The nominal bitrate is the requested one; the measured one is the
payload bytes of the encoded packets × 8 / input duration (container overhead excluded), reported per call.
These codecs have no codebooks: they are :class:`ArrayTransform`\\ s (numpy in and out, no torch), not
:class:`Codec`\\ s, so codebook metrics do not apply.
"""

from __future__ import annotations

import io
import itertools
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from evalkit import audio as audio_lib
from evalkit._lazy import torch
from evalkit.audio import AudioError
from evalkit.codecs.base import ArrayTransform, ProcessContext
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param

MAX_CHANNELS = 2
LAYOUTS = {1: "mono", 2: "stereo"}

# Layer III bitrates (kbps) per MPEG version, and the sample rates of each version (ISO 11172-3, 13818-3).
MP3_TABLES: dict[tuple[int, ...], tuple[int, ...]] = {
    (32_000, 44_100, 48_000): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (16_000, 22_050, 24_000): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (8_000, 11_025, 12_000): (8, 16, 24, 32, 40, 48, 56, 64),
}
MP3_BITRATES = tuple(sorted({b for table in MP3_TABLES.values() for b in table}))
OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
OPUS_MAX_BPS_PER_CHANNEL = 256_000  # FFmpeg libopusenc.c: bit_rate above 256000 × channels is refused
AAC_MAX_FRAME_BITS_PER_CHANNEL = 6144  # FFmpeg aacenc.c: the bitrate is clamped to this per 1024-sample frame
AAC_RATES = (7_350, 8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 64_000, 88_200, 96_000)


def _av():
    try:
        import av
    except ImportError as exc:  # av is a base requirement; this only fires in a broken environment
        raise ImportError("the reference codecs need PyAV: pip install av") from exc
    return av


def nearest_rate_at_or_above(rate: int, supported: tuple[int, ...]) -> int:
    """The smallest supported rate ≥ ``rate``, else the largest supported rate.

    >>> nearest_rate_at_or_above(44_100, OPUS_RATES), nearest_rate_at_or_above(16_000, OPUS_RATES)
    (48000, 16000)
    >>> nearest_rate_at_or_above(96_000, OPUS_RATES)
    48000
    """
    above = [r for r in sorted(supported) if r >= rate]
    return above[0] if above else max(supported)


@dataclass(frozen=True)
class Bitstream:
    """An encoded signal held in memory.

    Attributes:
        data: the whole container (Ogg, MP3 or ADTS) as written.
        packet_bytes: payload bytes of the encoded packets (container headers and framing excluded).
        num_samples: input length in samples at ``sample_rate``.
        sample_rate: rate the encoder ran at.
        channels: coded channels.
        priming_samples: encoder delay the encoder reported (``−pts`` of its first packet).
    """

    data: bytes
    packet_bytes: int
    num_samples: int
    sample_rate: int
    channels: int
    priming_samples: int

    @property
    def bitrate_bps(self) -> float:
        """Measured bitrate: ``packet_bytes × 8 / (num_samples / sample_rate)`` in bit/s."""
        return self.packet_bytes * 8 * self.sample_rate / self.num_samples


class ReferenceCodec(ArrayTransform):
    """A standard codec run through PyAV at a nominal bitrate; subclasses fix the encoder and container."""

    encoder: str = ""
    container: str = ""  # FFmpeg muxer
    demuxer: str = ""  # FFmpeg demuxer, named (small streams can defeat format probing)
    sample_format: str = "fltp"  # what the encoder is fed (float, so nothing is quantised before it)
    demuxer_trims: bool = True  # the container tells the demuxer the delay and padding to remove

    def __init__(self, spec: CodecSpec, device: str | torch.device = "cpu"):
        super().__init__(spec)
        self.bitrate_kbps = float(spec.params["bitrate_kbps"])

    @property
    def sample_rate(self) -> None:
        return None  # depends on the input rate: see codec_rate_for

    @property
    def bitrate_bps(self) -> float:
        """Nominal (requested) bitrate in bit/s; the measured one comes with each reconstruction."""
        return self.bitrate_kbps * 1000

    @abstractmethod
    def codec_rate_for(self, input_rate: int) -> int:
        """The encoder's rate for an input at ``input_rate`` (one the encoder supports)."""

    def encoder_options(self) -> dict[str, str]:
        return {}

    def max_bitrate_bps(self, codec_rate: int, channels: int) -> tuple[int, str] | None:
        """The highest bitrate (bit/s) the encoder takes as given for a stream of ``channels`` at
        ``codec_rate``, and why; ``None`` when it has no limit below the family's maximum."""
        return None

    def stream_problem(self, codec_rate: int, channels: int) -> str | None:
        limit = self.max_bitrate_bps(codec_rate, channels) if channels in LAYOUTS else None
        if limit is None or int(round(self.bitrate_bps)) <= limit[0]:  # as `encode` sets the encoder's bit_rate
            return None
        return (f"bitrate_kbps={self.bitrate_kbps:g} is above the maximum of the {self.encoder} encoder for "
                f"{LAYOUTS[channels]}: {limit[0] / 1000:g} kbps ({limit[1]})")

    @abstractmethod
    def frame_samples(self, rate: int) -> int:
        """Samples of one codec frame at ``rate`` (shorter inputs are refused)."""

    def info(self) -> dict:
        av = _av()
        return {"reference_codec": {"encoder": self.encoder, "container": self.container, "av": av.__version__,
                                    "libavcodec": ".".join(map(str, av.library_versions["libavcodec"]))}}

    def load(self) -> ReferenceCodec:
        _av()
        return self

    def encode(self, wav: np.ndarray, sample_rate: int) -> Bitstream:
        """``[channels, samples]`` float32 at ``sample_rate`` (one the encoder takes) → :class:`Bitstream`."""
        block = ENCODE_BLOCK_S * sample_rate
        return self.encode_blocks((wav[:, s:s + block] for s in range(0, wav.shape[1], block)), wav.shape[0],
                                  sample_rate)

    def encode_blocks(self, blocks: Iterable[np.ndarray], channels: int, sample_rate: int) -> Bitstream:
        """:meth:`encode` of the signal made of ``blocks`` (``[channels, samples]`` each, of any lengths: PyAV
        cuts the encoder's frames from them), without the whole signal in memory."""
        av = _av()
        buffer = io.BytesIO()
        packet_bytes, first_pts, num_samples = 0, None, 0
        with av.open(buffer, "w", format=self.container) as out:
            stream = out.add_stream(self.encoder, rate=sample_rate)
            ctx = stream.codec_context
            ctx.layout = LAYOUTS[channels]
            ctx.format = self.sample_format
            ctx.bit_rate = int(round(self.bitrate_bps))
            ctx.options = self.encoder_options()
            for frame in _frames(blocks, sample_rate, LAYOUTS[channels]):
                if frame is not None:
                    num_samples += frame.samples
                for packet in stream.encode(frame):
                    if first_pts is None:
                        first_pts = packet.pts
                    packet_bytes += packet.size
                    out.mux(packet)
        return Bitstream(buffer.getvalue(), packet_bytes, num_samples, sample_rate, channels,
                         priming_samples=max(0, -int(first_pts or 0)))

    def decode(self, bitstream: Bitstream) -> tuple[np.ndarray, int]:
        """:class:`Bitstream` → (``[channels, samples]`` float32, decoder output rate), encoder delay removed."""
        blocks = self.decoded_blocks(bitstream)
        first = next(blocks, None)
        if first is None:
            return np.zeros((bitstream.channels, 0), np.float32), _decoder_rate(self, bitstream)
        rate = first[1]
        # frames go straight into one array sized for the input's length (plus a second): a long item is not held
        # twice, as a list of frames and their concatenation
        expected = -(-bitstream.num_samples * rate // bitstream.sample_rate) + rate
        frames = itertools.chain([first[0]], (block for block, _ in blocks))
        return audio_lib.collect_blocks(frames, bitstream.channels, expected), rate

    def decoded_blocks(self, bitstream: Bitstream) -> Iterator[tuple[np.ndarray, int]]:
        """The decoded signal frame by frame, encoder delay removed: (``[channels, samples]`` float32, rate)."""
        av = _av()
        with av.open(io.BytesIO(bitstream.data), "r", format=self.demuxer) as src:
            stream = src.streams.audio[0]
            rate = stream.codec_context.sample_rate
            skip = 0 if self.demuxer_trims else bitstream.priming_samples * rate // bitstream.sample_rate
            for frame in src.decode(stream):
                array = frame.to_ndarray()
                if not frame.format.is_planar:  # packed: [1, samples × channels]
                    array = array.reshape(-1, bitstream.channels).T
                if skip:
                    dropped = min(skip, array.shape[1])
                    array, skip = array[:, dropped:], skip - dropped
                yield array, rate

    def process_at_input_rate(self, x: np.ndarray, input_rate: int, context: ProcessContext
                              ) -> tuple[np.ndarray, int, int] | None:
        """Code a long input block by block: resampled to the encoder's rate as it is fed, and the decoder's output
        resampled back as it comes, so no whole-length copy at another rate is held (the same values as
        :meth:`process` between whole-signal resamplings: soxr's stream resampler is its one-shot call bit for
        bit)."""
        channels, rate = x.shape[0], context.sample_rate
        if channels > MAX_CHANNELS:
            return None  # process refuses it, with its message
        av = _av()
        to_codec = audio_lib.StreamResampler(input_rate, rate, channels)
        back = audio_lib.StreamResampler(rate, input_rate, channels)
        step = ENCODE_BLOCK_S * input_rate
        n = x.shape[1]
        counts = {"codec_in": 0, "codec_out": 0}

        def codec_blocks():
            for start in range(0, n, step):
                block = to_codec(x[:, start:start + step], last=start + step >= n)
                counts["codec_in"] += block.shape[1]
                yield block

        def output_blocks():
            for block in self._decoded_at(bitstream, rate, context):
                keep = block[:, :max(0, counts["codec_in"] - counts["codec_out"])]  # what reconstruct would keep
                counts["codec_out"] += block.shape[1]
                yield back(keep)
            yield back.end()

        t0 = time.perf_counter()
        try:
            bitstream = self.encode_blocks(codec_blocks(), channels, rate)
            t1 = time.perf_counter()
            y = audio_lib.collect_blocks(output_blocks(), channels, n + input_rate)
        except av.error.FFmpegError as exc:
            raise AudioError(str(self.spec), f"{self.encoder} failed: {exc}") from exc
        context.encode_s += t1 - t0 - to_codec.seconds
        context.decode_s += time.perf_counter() - t1 - back.seconds
        context.resample_s += to_codec.seconds + back.seconds
        context.measured_bitrate_bps = bitstream.bitrate_bps
        return y, counts["codec_in"], counts["codec_out"]

    def _decoded_at(self, bitstream: Bitstream, rate: int, context: ProcessContext) -> Iterator[np.ndarray]:
        """The decoded signal at ``rate``, block by block (Opus decodes at 48 kHz whatever the encoder's rate)."""
        to_rate = None
        for block, decoder_rate in self.decoded_blocks(bitstream):
            if to_rate is None:
                to_rate = audio_lib.StreamResampler(decoder_rate, rate, bitstream.channels)
                if decoder_rate != rate:
                    context.decoder_rate = decoder_rate
            yield to_rate(block)
        if to_rate is not None:
            yield to_rate.end()

    def process_array(self, x: np.ndarray, context: ProcessContext) -> np.ndarray:
        rate = context.sample_rate
        if x.shape[1] > MAX_CHANNELS:
            raise AudioError(str(self.spec), f"{x.shape[1]} channels; {self.spec.family} codes mono or stereo")
        if x.shape[2] < self.frame_samples(rate):
            raise AudioError(str(self.spec), f"too short: {x.shape[2] / rate * 1000:.1f} ms, need at least one "
                                             f"frame ({self.frame_samples(rate) / rate * 1000:.1f} ms)")
        av = _av()
        outputs, measured = [], 0.0
        for signal in x:  # batch of one unless a channel policy split it
            t0 = time.perf_counter()
            try:
                bitstream = self.encode(signal, rate)
                t1 = time.perf_counter()
                decoded = audio_lib.collect_blocks(self._decoded_at(bitstream, rate, context), bitstream.channels,
                                                   signal.shape[1] + rate)
            except av.error.FFmpegError as exc:
                raise AudioError(str(self.spec), f"{self.encoder} failed: {exc}") from exc
            context.encode_s += t1 - t0
            context.decode_s += time.perf_counter() - t1
            outputs.append(decoded)
            measured += bitstream.bitrate_bps  # streams of one input: their bitrates add up
        context.measured_bitrate_bps = measured
        length = min(o.shape[1] for o in outputs)
        if len(outputs) == 1:  # no stacked copy of the only output
            return outputs[0][None, :, :length]
        return np.stack([o[:, :length] for o in outputs])


ENCODE_BLOCK_S = 10  # the encoder is fed blocks of this many seconds: no whole-signal copy inside FFmpeg


def _frames(blocks: Iterable[np.ndarray], sample_rate: int, layout: str):
    """``blocks`` as consecutive audio frames (empty ones left out), then ``None`` (flush)."""
    start = 0
    for block in blocks:
        if not block.shape[1]:
            continue
        frame = _av().AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp",
                                              layout=layout)
        frame.sample_rate, frame.pts = sample_rate, start
        start += block.shape[1]
        yield frame
    yield None


def _decoder_rate(codec: ReferenceCodec, bitstream: Bitstream) -> int:
    """The decoder's output rate of a bitstream that decoded to no frame at all."""
    with _av().open(io.BytesIO(bitstream.data), "r", format=codec.demuxer) as src:
        return src.streams.audio[0].codec_context.sample_rate


class Opus(ReferenceCodec):
    encoder, container, demuxer, sample_format = "libopus", "ogg", "ogg", "flt"

    def codec_rate_for(self, input_rate: int) -> int:
        return nearest_rate_at_or_above(input_rate, OPUS_RATES)

    def frame_samples(self, rate: int) -> int:
        return rate // 50  # 20 ms, libopus' default frame

    def encoder_options(self) -> dict[str, str]:
        return {"application": str(self.spec.params["application"])}

    def max_bitrate_bps(self, codec_rate: int, channels: int) -> tuple[int, str]:
        # FFmpeg's libopus wrapper refuses to open the encoder above 256 kbit/s per channel.
        return OPUS_MAX_BPS_PER_CHANNEL * channels, "256 kbps per channel; FFmpeg refuses more"


class Mp3(ReferenceCodec):
    encoder, container, demuxer = "libmp3lame", "mp3", "mp3"

    def codec_rate_for(self, input_rate: int) -> int:
        allowed = tuple(r for rates, kbps in MP3_TABLES.items() if int(self.bitrate_kbps) in kbps for r in rates)
        return nearest_rate_at_or_above(input_rate, allowed)

    def frame_samples(self, rate: int) -> int:
        return 1152 if rate >= 32_000 else 576  # MPEG-1 / MPEG-2 and 2.5 Layer III granules


class Aac(ReferenceCodec):
    encoder, container, demuxer, demuxer_trims = "aac", "adts", "aac", False

    def codec_rate_for(self, input_rate: int) -> int:
        return nearest_rate_at_or_above(input_rate, AAC_RATES)

    def frame_samples(self, rate: int) -> int:
        return 1024

    def max_bitrate_bps(self, codec_rate: int, channels: int) -> tuple[int, str]:
        # FFmpeg's AAC encoder clamps the bitrate (a warning in its log, nothing else) to 6144 bits per channel
        # per 1024-sample frame, truncated to an integer: the stored nominal bitrate would be false.
        return (int(AAC_MAX_FRAME_BITS_PER_CHANNEL * channels / 1024 * codec_rate),
                f"6144 bits per channel per 1024-sample frame at {codec_rate} Hz; FFmpeg would lower the bitrate "
                f"without an error")


FAMILIES = (
    CodecFamily("opus", "Opus (libopus via PyAV, VBR, Ogg in memory); reference codec, no codebooks",
                (Param("bitrate_kbps", float, 24.0, "nominal bitrate in kbps (total over channels)",
                       minimum=6.0, maximum=510.0, sweep=True),
                 Param("application", str, "audio", "libopus application mode",
                       choices=("audio", "voip", "lowdelay"))), Opus),
    CodecFamily("mp3", "MP3 (LAME CBR via PyAV, in memory); reference codec, no codebooks",
                (Param("bitrate_kbps", int, 64, "Layer III bitrate in kbps (total over channels)",
                       choices=MP3_BITRATES, sweep=True),), Mp3),
    CodecFamily("aac", "AAC-LC (FFmpeg's native encoder via PyAV, ADTS in memory); reference codec, no codebooks",
                (Param("bitrate_kbps", float, 64.0, "nominal bitrate in kbps (total over channels)",
                       minimum=16.0, maximum=320.0, sweep=True),), Aac),
)
