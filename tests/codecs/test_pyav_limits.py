"""The config-time check of the reference codecs' parameters agrees with what FFmpeg (through PyAV) does at the
boundary: libopus refuses more than 256 kbit/s per channel, FFmpeg's AAC encoder clamps to 6144 bits per channel
per 1024-sample frame, and LAME takes every MP3 bitrate evalkit offers at the rate it picks."""

import io

import av
import numpy as np
import pytest

from evalkit.audio import AudioError
from evalkit.codecs import build_codec, get_family
from evalkit.codecs.pyav import LAYOUTS, MP3_BITRATES


def _codec(family: str, kbps: float):
    return build_codec(get_family(family).resolve({"bitrate_kbps": kbps}))


def _frames(channels: int, rate: int, seconds: float = 0.06) -> np.ndarray:
    """Three 20 ms frames of noise, ``[channels, samples]``."""
    return (0.1 * np.random.default_rng(0).standard_normal((channels, int(rate * seconds)))).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("kbps", [255.999, 256.0, 256.0004, 256.0006, 256.001, 257.0, 400.0, 510.0])
def test_opus_limit_agrees_with_a_real_libopus_encode(channels, kbps):
    codec = _codec("opus", kbps)
    problem = codec.input_problem(48000, channels)
    try:  # the real thing: encode and decode three frames through PyAV
        codec.reconstruct(_frames(channels, 48000), 48000)
        encoded = True
    except AudioError as exc:
        assert "libopus failed" in str(exc)
        encoded = False
    assert (problem is None) == encoded, (problem, encoded)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_opus_limit_does_not_depend_on_the_rate(rate):
    assert _codec("opus", 256).input_problem(rate, 1) is None
    assert "256 kbps per channel" in _codec("opus", 257).input_problem(rate, 1)


def _aac_bit_rate_after_open(rate: int, channels: int, bit_rate: int) -> int:
    """The bitrate FFmpeg's AAC encoder really uses: what it leaves in the codec context once opened."""
    with av.open(io.BytesIO(), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.codec_context.layout = LAYOUTS[channels]
        stream.codec_context.format = "fltp"
        stream.codec_context.bit_rate = bit_rate
        stream.codec_context.open()
        return stream.codec_context.bit_rate


@pytest.mark.parametrize("rate,channels", [(8000, 1), (8000, 2), (16000, 1), (22050, 1), (44100, 1)])
def test_aac_limit_agrees_with_ffmpegs_clamp(rate, channels):
    limit_bps = 6144 * channels * rate // 1024  # the clamp, computed by hand; probed below
    for bps in (limit_bps - 1000, limit_bps - 1, limit_bps, limit_bps + 1, limit_bps + 1000):
        if not 16_000 <= bps <= 320_000:  # outside the family's own range
            continue
        codec = _codec("aac", bps / 1000)
        assert codec.codec_rate_for(rate) == rate
        clamped = _aac_bit_rate_after_open(rate, channels, int(round(bps))) != int(round(bps))
        assert (codec.input_problem(rate, channels) is not None) == clamped, bps


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_every_mp3_bitrate_is_accepted_and_lame_encodes_it(rate, channels):
    for kbps in MP3_BITRATES:
        codec = _codec("mp3", kbps)
        assert codec.input_problem(rate, channels) is None
        out = codec.reconstruct(_frames(channels, rate, 0.1), rate)
        assert out.audio.shape == (channels, int(rate * 0.1)) and np.isfinite(out.audio).all()


def test_more_channels_than_a_reference_codec_takes_is_left_to_the_unit():
    """A 3-channel item fails its unit with the reason; it is no problem of the parameters."""
    assert _codec("opus", 510).input_problem(48000, 3) is None
    with pytest.raises(AudioError, match="codes mono or stereo"):
        _codec("opus", 510).reconstruct(_frames(3, 48000), 48000)


def test_codecs_without_limits_have_no_input_problem():
    assert build_codec("lowpass?cutoff_hz=3500").input_problem(8000, 6) is None
    assert build_codec("encodec-24khz?bandwidth=6&weights=random").input_problem(48000, 2, "mono") is None
