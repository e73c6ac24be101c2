"""Chunked coding of long inputs (evalkit.codecs.chunking): windows, exactness where the model's receptive field
fits in the context, exact lengths, codes of the same shape as an unchunked encode, the threshold."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from evalkit.codecs import build_codec
from evalkit.codecs.chunking import Chunking, decode_chunked, encode_chunked, windows


def _signal(seconds: float, rate: int = 44_100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.05 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * 220 * t) + noise).astype(np.float32)[None]


@pytest.mark.parametrize("frames,chunk,context", [(10, 4, 1), (7, 3, 5), (1, 4, 2), (12, 4, 0)])
def test_windows_cover_every_frame_once_inside_their_window(frames, chunk, context):
    spans = windows(frames, chunk, context)
    assert [f for start, end, _, _ in spans for f in range(start, end)] == list(range(frames))
    for start, end, w_start, w_end in spans:
        assert w_start == max(0, start - context) and w_end == min(frames, end + context)


HOP = 4


def _toy_encode(wav: torch.Tensor, reach: int) -> torch.Tensor:
    """Frame f = round(100 × sum of samples within ``reach`` frames of f) (zero past the ends), a fake code."""
    frames = -(-wav.shape[-1] // HOP)
    x = torch.nn.functional.pad(wav, (0, frames * HOP - wav.shape[-1])).reshape(*wav.shape[:-1], frames, HOP).sum(-1)
    x = torch.nn.functional.pad(x, (reach, reach))
    return torch.round(100 * sum(x[..., k: k + frames] for k in range(2 * reach + 1))).long()


def _toy_decode(codes: torch.Tensor, samples: int, reach: int) -> torch.Tensor:
    frames = codes.shape[-1]
    x = torch.nn.functional.pad(codes.double(), (reach, reach))
    y = sum(x[..., k: k + frames] for k in range(2 * reach + 1))
    return y.repeat_interleave(HOP, dim=-1)[..., :samples]


@pytest.mark.parametrize("length", [400, 401, 403])
def test_chunked_equals_whole_when_the_context_covers_the_receptive_field(length):
    wav = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 1, length)))
    whole = _toy_encode(wav, 2)
    codes = encode_chunked(lambda w: _toy_encode(w, 2), wav, HOP, chunk=7, context=2)
    assert torch.equal(codes, whole)
    out = decode_chunked(lambda c, n: _toy_decode(c, n, 2), codes, length, HOP, chunk=7, context=2)
    assert out.shape == (2, 1, length) and torch.equal(out, _toy_decode(whole, length, 2))
    # the same model with too little context differs near the chunk edges: the context is what makes it exact
    short = encode_chunked(lambda w: _toy_encode(w, 2), wav, HOP, chunk=7, context=1)
    assert not torch.equal(short, whole)
    assert torch.equal(short[..., 2:5], whole[..., 2:5])  # frames at least 2 away from every chunk edge


def test_decode_refuses_a_decoder_that_drops_samples_inside_the_item():
    codes = torch.zeros((1, 1, 20), dtype=torch.long)
    with pytest.raises(RuntimeError, match="too few"):
        decode_chunked(lambda c, n: _toy_decode(c, n, 0)[..., : n - 2 * HOP], codes, 80, HOP, chunk=5,
                       context=1)


def _both(spec: str, seconds: float, chunking: Chunking, rate: int = 44_100):
    codec = build_codec(spec, device="cpu").load()
    x = _signal(seconds, rate)
    whole = codec.reconstruct(x, rate, chunked=False)
    codec.chunking = chunking
    return codec, x, whole, codec.reconstruct(x, rate, chunked=True)


def test_qincodec_chunked_equals_whole_and_keeps_codes_and_lengths():
    """QinCodec is stateless and convolutional, with a receptive field under its 0.5 s context: equal up to float
    rounding everywhere (edges included); same codes, same frame count, the input's exact length."""
    codec, x, whole, chunked = _both("qincodec?bitrate_kbps=8", 2.1, Chunking(0.6, 0.5))
    assert chunked.report.chunked == {"chunk_s": 0.6, "context_s": 0.5} and whole.report.chunked is None
    assert chunked.audio.shape == whole.audio.shape == x.shape
    assert torch.equal(chunked.encoded.codes, whole.encoded.codes)
    assert chunked.encoded.num_samples == whole.encoded.num_samples
    np.testing.assert_allclose(chunked.audio, whole.audio, rtol=0, atol=1e-5 * np.abs(whole.audio).max())


def test_klt_variant_is_chunked_like_its_base():
    codec = build_codec("klt?base=qincodec-rvq&bitrate_kbps=8&dim=32", device="cpu").load()
    assert codec.chunking == codec.base.chunking
    x = _signal(2.2)
    whole = codec.reconstruct(x, 44_100, chunked=False)
    codec.base.chunking = Chunking(0.6, 0.5)
    chunked = codec.reconstruct(x, 44_100, chunked=True)
    assert torch.equal(chunked.encoded.codes, whole.encoded.codes)
    np.testing.assert_allclose(chunked.audio, whole.audio, rtol=0, atol=1e-5 * np.abs(whole.audio).max())


def test_the_threshold_decides_and_short_inputs_are_coded_as_before():
    codec = build_codec("qincodec?bitrate_kbps=8", device="cpu").load()
    x = _signal(1.5)
    assert codec.reconstruct(x, 44_100).report.chunked is None  # 1.5 s is under the default 30 s
    before = codec.reconstruct(x, 44_100, chunked=False).audio
    codec.chunking = replace(codec.chunking, chunk_s=0.5, above_s=1.0)
    auto = codec.reconstruct(x, 44_100)
    assert auto.report.chunked == {"chunk_s": 0.5, "context_s": 0.5}
    codec.chunking = replace(codec.chunking, above_s=1.5)  # not longer than the threshold: whole, as before
    same = codec.reconstruct(x, 44_100)
    assert same.report.chunked is None and np.array_equal(same.audio, before)


def test_transforms_without_chunking_ignore_the_request():
    anchor = build_codec("lowpass?cutoff_hz=3500", device="cpu")
    assert anchor.chunking is None
    assert anchor.reconstruct(_signal(0.5), 44_100, chunked=True).report.chunked is None
    assert build_codec("encodec-48khz?weights=random", device="cpu").chunking is None  # 1 s segments of its own


@pytest.mark.slow  # random-weight EnCodec and DAC runs: tens of seconds on CPU
def test_encodec_24khz_chunked_within_tolerance():
    """EnCodec 24 kHz is causal with LSTMs: its state remembers past the 0.5 s context, so chunked output may
    differ, but only by what a random LSTM keeps that long (measured: ~1e-6 of full scale)."""
    _, x, whole, chunked = _both("encodec-24khz?weights=random", 3.0, Chunking(0.5, 0.5), rate=24_000)
    assert chunked.audio.shape == whole.audio.shape == x.shape
    assert torch.equal(chunked.encoded.codes, whole.encoded.codes)
    np.testing.assert_allclose(chunked.audio, whole.audio, rtol=0, atol=1e-4 * np.abs(whole.audio).max())


@pytest.mark.slow
def test_dac_chunked_equals_whole_up_to_rounding():
    """DAC is stateless; 0.25 s of context covers its receptive field (0.12 s): equal up to float rounding."""
    _, x, whole, chunked = _both("dac-16khz?weights=random", 1.0, Chunking(0.3, 0.25), rate=16_000)
    assert chunked.audio.shape == whole.audio.shape == x.shape
    assert torch.equal(chunked.encoded.codes, whole.encoded.codes)
    np.testing.assert_allclose(chunked.audio, whole.audio, rtol=0, atol=1e-5 * np.abs(whole.audio).max())
