"""Reference codecs through PyAV: exact alignment, restored length, measured bitrate, rates, validation."""

import io

import av
import numpy as np
import pytest
import torch

from evalkit.audio import AudioError
from evalkit.codecs import Codec, SpecError, build_codec, parse_spec
from evalkit.codecs.pyav import MP3_TABLES


def click_train(rate: int, channels: int = 1, seconds: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Single-sample clicks every 50 ms, at an odd offset from the frame grid."""
    n = int(rate * seconds)
    x = np.zeros((channels, n), np.float32)
    positions = np.arange(rate // 40, n - rate // 40, rate // 20) + 7
    x[:, positions] = 0.8
    return x, positions


def click_offsets(y: np.ndarray, positions: np.ndarray, window: int = 200) -> set[int]:
    return {int(np.argmax(np.abs(ch[p - window: p + window]))) - window for ch in y for p in positions}


@pytest.mark.parametrize(("spec", "rate", "channels", "codec_rate"), [
    ("opus?bitrate_kbps=256", 48000, 1, 48000),
    ("opus?bitrate_kbps=256", 44100, 2, 48000),
    ("opus?bitrate_kbps=256", 16000, 1, 16000),  # encoder at 16 kHz, decoder at 48 kHz, resampled back
    ("mp3?bitrate_kbps=320", 44100, 1, 44100),
    ("mp3?bitrate_kbps=320", 48000, 2, 48000),
    ("aac?bitrate_kbps=256", 44100, 1, 44100),
    ("aac?bitrate_kbps=256", 48000, 2, 48000),
])
def test_click_train_lands_within_one_sample_and_length_is_kept(spec, rate, channels, codec_rate):
    x, positions = click_train(rate, channels)
    rec = build_codec(spec).reconstruct(x, rate)
    assert rec.audio.shape == x.shape
    assert click_offsets(rec.audio, positions) <= {-1, 0, 1}
    report = rec.report
    assert report.codec_rate == codec_rate and report.channel_handling == "as-is" and report.padded_samples == 0
    assert report.decoder_rate == (48000 if codec_rate != 48000 and spec.startswith("opus") else None)
    if not spec.startswith("aac"):  # the demuxer already removed delay and padding: nothing left to trim
        assert report.trimmed_samples == 0 and report.codec_output_samples == report.codec_input_samples
    assert rec.encoded is None  # no codes


def test_aac_priming_comes_from_the_encoder_and_padding_is_trimmed_at_the_input_length():
    codec = build_codec("aac?bitrate_kbps=128").load()
    x, _ = click_train(44100)
    stream = codec.encode(x, 44100)
    assert stream.priming_samples == 1024  # FFmpeg's AAC encoder; ADTS itself does not carry it
    decoded, rate = codec.decode(stream)
    frames = -(-(x.shape[1] + 1024) // 1024)  # every packet is 1024 samples, priming included
    assert rate == 44100 and x.shape[1] <= decoded.shape[1] <= frames * 1024 - 1024
    rec = codec.reconstruct(x, 44100)
    assert rec.report.trimmed_samples == rec.report.codec_output_samples - x.shape[1] > 0


def test_opus_pre_skip_is_read_from_the_stream():
    codec = build_codec("opus?bitrate_kbps=64").load()
    stream = codec.encode(click_train(48000)[0], 48000)
    with av.open(io.BytesIO(stream.data)) as src:
        head = bytes(src.streams.audio[0].codec_context.extradata)
    assert head[:8] == b"OpusHead" and int.from_bytes(head[10:12], "little") == stream.priming_samples == 312


@pytest.mark.parametrize("rate", [44100, 16000])
def test_measured_bitrate_of_cbr_mp3_64k_is_within_10_percent_and_excludes_the_container(rate, demo_clip):
    samples, clip_rate = demo_clip
    from evalkit import audio

    x = audio.resample(samples, clip_rate, rate)
    codec = build_codec("mp3?bitrate_kbps=64")
    rec = codec.reconstruct(x, rate)
    assert codec.bitrate_bps == 64000
    assert rec.report.measured_bitrate_bps == pytest.approx(64000, rel=0.10)
    stream = codec.encode(x.astype(np.float32), rec.report.codec_rate)
    with av.open(io.BytesIO(stream.data)) as src:  # the packets as the demuxer sees them
        demuxed = sum(p.size for p in src.demux(src.streams.audio[0]))
    assert stream.packet_bytes == demuxed < len(stream.data)  # LAME/Xing header frame and ID3 excluded
    assert rec.report.measured_bitrate_bps == pytest.approx(stream.packet_bytes * 8 / (x.shape[1] / rate))


def test_opus_measured_bitrate_follows_the_nominal_one(demo_clip):
    samples, rate = demo_clip
    low = build_codec("opus?bitrate_kbps=6").reconstruct(samples, rate).report.measured_bitrate_bps
    high = build_codec("opus?bitrate_kbps=24").reconstruct(samples, rate).report.measured_bitrate_bps
    assert 3000 < low < 9000 and 16000 < high < 32000


def test_rates_chosen_for_the_input():
    opus = build_codec("opus?bitrate_kbps=12")
    assert [opus.codec_rate_for(r) for r in (8000, 11025, 16000, 22050, 44100, 96000)] == \
        [8000, 12000, 16000, 24000, 48000, 48000]
    assert build_codec("mp3?bitrate_kbps=64").codec_rate_for(44100) == 44100
    assert build_codec("mp3?bitrate_kbps=8").codec_rate_for(44100) == 24000  # MPEG-1 has no 8 kbps
    assert build_codec("mp3?bitrate_kbps=320").codec_rate_for(16000) == 32000  # MPEG-2 stops at 160 kbps
    assert build_codec("mp3?bitrate_kbps=144").codec_rate_for(8000) == 16000
    for rates, kbps in MP3_TABLES.items():
        for b in kbps:
            assert build_codec(f"mp3?bitrate_kbps={b}").codec_rate_for(rates[0]) == rates[0]
    assert build_codec("aac").codec_rate_for(44100) == 44100 and build_codec("aac").codec_rate_for(20000) == 22050


def test_low_bitrate_mp3_runs_at_an_mpeg2_rate():
    x, _ = click_train(44100)
    rec = build_codec("mp3?bitrate_kbps=8").reconstruct(x, 44100)
    assert rec.report.codec_rate == 24000 and rec.audio.shape == x.shape
    assert rec.report.measured_bitrate_bps == pytest.approx(8000, rel=0.10)


def test_specs_are_validated():
    assert str(parse_spec("opus?bitrate_kbps=6")) == "opus?application=audio&bitrate_kbps=6"
    with pytest.raises(SpecError, match="bitrate_kbps=5 is below the minimum 6"):
        parse_spec("opus?bitrate_kbps=5")
    with pytest.raises(SpecError, match="application=music is not one of audio, voip, lowdelay"):
        parse_spec("opus?application=music")
    with pytest.raises(SpecError, match="bitrate_kbps=65 is not one of 8, 16"):
        parse_spec("mp3?bitrate_kbps=65")
    with pytest.raises(SpecError, match="bitrate_kbps=400 is above the maximum 320"):
        parse_spec("aac?bitrate_kbps=400")


def test_no_codebooks_and_more_than_two_channels_refused():
    codec = build_codec("opus?bitrate_kbps=24&application=voip")
    assert not isinstance(codec, Codec) and codec.bitrate_bps == 24000
    x, _ = click_train(48000, channels=3)
    with pytest.raises(AudioError, match="3 channels; opus codes mono or stereo"):
        codec.reconstruct(x, 48000)


class _FixedRate(Codec):
    """A codec with fixed-rate codes and no model: 100 frames/s, 2 codebooks of 256 → 1600 bit/s per stream."""

    sample_rate, channels, frame_rate, num_codebooks, cardinality = 16000, 1, 100.0, 2, 256

    def encode(self, wav):
        from evalkit.codecs import Encoded

        frames = -(-wav.shape[-1] // self.hop_length)
        return Encoded(torch.zeros(wav.shape[0], 2, frames, dtype=torch.int64), wav.shape[-1])

    def decode(self, encoded):
        return torch.zeros(encoded.codes.shape[0], 1, encoded.num_samples)


def test_codes_measured_bitrate_counts_every_coded_stream():
    """Mono codecs code each channel of a stereo input (per-channel policy): twice the bits are sent."""
    codec = _FixedRate(parse_spec("lowpass"), "cpu")
    x = click_train(16000, channels=2)[0]
    assert codec.reconstruct(x, 16000).report.measured_bitrate_bps == 2 * codec.bitrate_bps == 3200
    assert codec.reconstruct(x[:1], 16000).report.measured_bitrate_bps == 1600
    assert codec.reconstruct(x, 16000, channel_policy="mono").report.measured_bitrate_bps == 1600
    assert build_codec("lowpass").reconstruct(x, 16000).report.measured_bitrate_bps is None


@pytest.mark.parametrize(("spec", "need_ms"), [("opus", "20.0"), ("mp3", "36.0"), ("aac", "64.0")])
def test_inputs_shorter_than_one_frame_are_refused(spec, need_ms):
    x = np.full((1, 80), 0.1, np.float32)
    with pytest.raises(AudioError, match=rf"too short: 5.0 ms, need at least one frame \({need_ms} ms\)"):
        build_codec(spec).reconstruct(x, 16000)
