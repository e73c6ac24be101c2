"""Official architectures at random weights: shapes, restored length, codebooks, bad input."""

import numpy as np
import pytest
import torch

from evalkit.audio import AudioError
from evalkit.codecs import build_codec

pytestmark = pytest.mark.slow  # random-weight EnCodec/DAC encode-decode runs: minutes on CPU

CASES = [
    # spec, codec rate, frame rate, codebooks, codebook dim
    ("encodec-24khz?bandwidth=1.5&weights=random", 24000, 75, 2, 128),
    ("encodec-48khz?bandwidth=6&weights=random", 48000, 150, 4, 128),
    ("dac-16khz?weights=random", 16000, 50, 12, 8),
    ("dac-24khz?n_codebooks=8&weights=random", 24000, 75, 8, 8),
    ("dac-44khz?weights=random", 44100, 44100 / 512, 9, 8),
]


@pytest.mark.parametrize("spec,rate,frame_rate,n_q,dim", CASES)
def test_reconstruct_demo_clip(demo_clip, spec, rate, frame_rate, n_q, dim):
    x, sr = demo_clip
    codec = build_codec(spec, device="cpu")
    rec = codec.reconstruct(x, sr)
    assert rec.audio.shape == x.shape and rec.sample_rate == sr
    assert np.all(np.isfinite(rec.audio))
    assert codec.frame_rate == pytest.approx(frame_rate) and codec.sample_rate == rate
    codes = rec.encoded.codes
    assert codes.dtype == torch.int64 and codes.shape[1] == n_q
    assert int(codes.min()) >= 0 and int(codes.max()) < 1024
    frames = rec.encoded.num_frames
    assert abs(frames - rec.report.codec_input_samples / rate * frame_rate) <= 2
    assert codec.codebooks().shape == (n_q, 1024, dim)
    rep = rec.report
    assert rep.input_rate == sr and rep.codec_rate == rate and rep.output_samples == x.shape[1]
    assert (rep.resampler is None) == (rate == sr) and "random" in rep.weights


def test_model_constants_agree_with_loaded_architecture():
    enc = build_codec("encodec-24khz?weights=random", device="cpu").load()
    assert enc.model.frame_rate == enc.frame_rate and enc.model.sample_rate == enc.sample_rate
    assert enc.model.quantizer.n_q == 32
    embed = enc.model.quantizer.vq.layers[31]._codebook.embed
    assert embed.shape == (1024, 128) and embed.abs().sum() > 0  # random fill, not EnCodec's zeros
    dac = build_codec("dac-44khz-16kbps?weights=random", device="cpu").load()
    assert dac.model.hop_length == dac.hop_length == 512 and dac.model.latent_dim == 128
    assert dac.model.n_codebooks == 18


def test_encode_decode_equals_reconstruct_and_is_seeded():
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 1, 16000)).astype(np.float32))
    a = build_codec("dac-16khz?n_codebooks=3&weights=random&seed=7", device="cpu")
    b = build_codec("dac-16khz?n_codebooks=3&weights=random&seed=7", device="cpu")
    c = build_codec("dac-16khz?n_codebooks=3&weights=random&seed=8", device="cpu")
    with torch.inference_mode():
        ea, eb, ec = a.encode(x), b.encode(x), c.encode(x)
        assert torch.equal(ea.codes, eb.codes) and not torch.equal(ea.codes, ec.codes)
        y = a.decode(ea)
    # DAC's decoder yields 8 samples fewer than 50 frames x 320; reconstruct zero-pads and says so
    assert y.shape[:2] == x.shape[:2] and x.shape[-1] - 16 <= y.shape[-1] <= x.shape[-1]
    rec = a.reconstruct(x[0].numpy(), 16000)
    assert rec.report.padded_samples == x.shape[-1] - y.shape[-1]
    np.testing.assert_allclose(rec.audio[:, : y.shape[-1]], y[0].numpy(), atol=1e-5)
    assert not rec.audio[:, y.shape[-1]:].any()


def test_dac_projections_materialise_weight_norm():
    codec = build_codec("dac-16khz?n_codebooks=2&weights=random", device="cpu").load()
    (proj_in, proj_out), _ = codec.projections()
    q = codec.model.quantizer.quantizers[0]
    z = torch.randn(1, 1024, 5)
    with torch.inference_mode():
        expected = q.in_proj(z)[0]
        back = q.out_proj(expected[None])[0]
    assert proj_in.weight.shape == (8, 1024) and proj_out.weight.shape == (1024, 8)
    torch.testing.assert_close(proj_in.weight @ z[0] + proj_in.bias[:, None], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(proj_out.weight @ expected + proj_out.bias[:, None], back, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [321, 1000, 7777])
def test_random_lengths_are_restored(length):
    codec = build_codec("encodec-48khz?bandwidth=3&weights=random", device="cpu")
    x = np.random.default_rng(length).uniform(-0.3, 0.3, (2, length)).astype(np.float32)
    assert codec.reconstruct(x, 48000).audio.shape == (2, length)


def _direct(codec, batch: np.ndarray) -> np.ndarray:
    """The codec's own encode → decode on ``[batch, channels, samples]`` at its rate: no boundary work."""
    with torch.inference_mode():
        return codec.decode(codec.encode(torch.from_numpy(np.ascontiguousarray(batch)))).numpy()


def test_channel_policies_on_values():
    codec = build_codec("encodec-24khz?weights=random", device="cpu").load()
    x = np.random.default_rng(1).uniform(-0.3, 0.3, (2, 4800)).astype(np.float32)
    per = codec.reconstruct(x, 24000)
    assert per.encoded.codes.shape[0] == 2 and per.report.channel_handling == "per-channel (2 x mono)"
    np.testing.assert_allclose(per.audio, _direct(codec, x[:, None, :])[:, 0], atol=1e-6)  # each channel alone
    mono = codec.reconstruct(x, 24000, channel_policy="mono")
    assert mono.audio.shape == (1, 4800) and mono.report.channel_handling == "downmix 2->1"
    np.testing.assert_allclose(mono.audio, _direct(codec, x.mean(axis=0)[None, None])[0], atol=1e-6)
    stereo = build_codec("encodec-48khz?weights=random", device="cpu").load()
    y = x[:1]
    up = stereo.reconstruct(y, 48000)  # duplicated into both channels, the two outputs averaged
    both = _direct(stereo, np.concatenate([y, y])[None])[0]
    assert up.report.channel_handling.startswith("upmix") and not np.allclose(both[0], both[1])
    np.testing.assert_allclose(up.audio, both.mean(axis=0, keepdims=True), atol=1e-6)


def test_resampling_in_and_out_on_values():
    """16 kHz input through the 24 kHz codec equals soxr VHQ up, the codec, soxr VHQ down (the libraries' calls)."""
    import soxr

    codec = build_codec("encodec-24khz?weights=random", device="cpu").load()
    z = np.random.default_rng(2).uniform(-0.3, 0.3, (1, 3200)).astype(np.float32)
    rec = codec.reconstruct(z, 16000)
    up = soxr.resample(z[0], 16000, 24000, quality="VHQ").astype(np.float32)
    out = _direct(codec, up[None, None])[0, 0, : len(up)]
    down = soxr.resample(out, 24000, 16000, quality="VHQ")
    assert rec.report.resampler.endswith("VHQ") and rec.report.codec_input_samples == len(up) == 4800
    np.testing.assert_allclose(rec.audio[0], down[:3200], atol=1e-5)


def test_bad_input_is_reported_with_source_and_spec():
    codec = build_codec("encodec-48khz?weights=random", device="cpu")
    with pytest.raises(AudioError, match="clip.wav: has 3 channels; encodec-48khz.* takes at most 2"):
        codec.reconstruct(np.ones((3, 4800), np.float32) * 0.1, 48000, source="clip.wav")
    with pytest.raises(AudioError, match="x.wav: too short for dac-44khz.*need at least 11.6 ms"):
        build_codec("dac-44khz?weights=random", device="cpu").reconstruct(
            np.full((1, 100), 0.1, np.float32), 44100, source="x.wav")
    with pytest.raises(AudioError, match="silent"):
        codec.reconstruct(np.zeros((1, 4800), np.float32), 48000)
    with pytest.raises(AudioError, match="NaN"):
        codec.reconstruct(np.full((1, 4800), np.nan, np.float32), 48000)


@pytest.mark.parametrize("spec,rate,channels", [("encodec-24khz?bandwidth=3&weights=random", 24000, 1),
                                                ("encodec-48khz?bandwidth=6&weights=random", 48000, 2)])
def test_encodec_split_pipeline_equals_library(spec, rate, channels):
    """Our encoder → quantizer → decoder split reproduces EncodecModel.encode/decode (segments, gains)."""
    codec = build_codec(spec, device="cpu").load()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, channels, int(1.7 * rate)))
                         .astype(np.float32))
    with torch.inference_mode():
        ours = codec.encode(x)
        frames = codec.model.encode(x)
        assert torch.equal(ours.codes, torch.cat([c for c, _ in frames], dim=-1))
        assert torch.equal(codec.decode(ours), codec.model.decode(frames)[..., : x.shape[-1]])  # bit for bit


def test_dac_split_pipeline_equals_library():
    codec = build_codec("dac-16khz?n_codebooks=5&weights=random", device="cpu").load()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 1, 8000)).astype(np.float32))
    with torch.inference_mode():
        _, codes, *_ = codec.model.encode(codec.model.preprocess(x, 16000), n_quantizers=5)
        assert torch.equal(codec.encode(x).codes, codes[:, :5])
        z = codec.model.quantizer.from_codes(codes[:, :5])[0]
        latent_books = codec.latent_codebooks()
        manual = sum(latent_books[k][codes[0, k]].T for k in range(5))
        torch.testing.assert_close(manual, z[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frame,stride,count,last,cut", [(100, 99, 6, 37, 7), (100, 99, 4, 100, 0),
                                                          (90, 30, 7, 61, 20), (64, 64, 3, 10, 0)])
def test_overlap_add_one_frame_at_a_time_equals_encodec_s_bit_for_bit(frame, stride, count, last, cut):
    """EnCodec 48 kHz's segments joined one at a time give the library's overlap-add, cut to the input's length
    (the decoder's last segment ends on a whole frame): its 1 % overlap, three frames over a position, no overlap,
    and a short last segment."""
    from encodec.utils import _linear_overlap_add

    from evalkit.codecs.encodec import overlap_add

    rng = np.random.default_rng(frame + last)
    frames = [torch.from_numpy(rng.standard_normal((1, 2, n)).astype(np.float32))
              for n in [frame] * (count - 1) + [last]]
    length = stride * (count - 1) + last - cut
    expected = _linear_overlap_add(frames, stride)[..., :length]
    assert torch.equal(overlap_add(iter(frames), stride, length), expected)
    with pytest.raises(ValueError, match="before the length asked for"):
        overlap_add(iter(frames), stride, length + cut + 1)


def test_an_upmixed_input_is_a_view_the_codec_cannot_write_to():
    codec = build_codec("encodec-48khz?weights=random", device="cpu")
    x = np.random.default_rng(3).uniform(-0.3, 0.3, (1, 4800)).astype(np.float32)
    batch, handling = codec._channels_to_batch(x, "x.wav", "per_channel")
    assert handling == "upmix 1->2, output averaged" and np.shares_memory(batch, x)
    assert np.array_equal(batch, np.repeat(x, 2, axis=0)[None])
    with pytest.raises(RuntimeError, match="single memory location"):
        torch.from_numpy(batch).mul_(2)


@pytest.mark.parametrize("rate,channels,samples", [(44_100, 1, int(3.3 * 44_100)),  # upmixed, resampled
                                                   (48_000, 2, 3 * 47_520 + 100),  # the last two segments short
                                                   (48_000, 1, 2 * 47_520 + 48_000)])  # segments end on the end
def test_encodec_48khz_streams_a_long_input_with_the_whole_path_s_values_bit_for_bit(rate, channels, samples,
                                                                                      monkeypatch):
    """A long input is coded segment by segment as it is resampled (1 s blocks here), never as a whole
    48 kHz signal; its output, codes, gains and report are those of the whole-signal path."""
    from evalkit.codecs import base, encodec

    codec = build_codec("encodec-48khz?bandwidth=6&weights=random", device="cpu").load()
    x = np.random.default_rng(samples).uniform(-0.3, 0.3, (channels, samples)).astype(np.float32)
    whole = codec.reconstruct(x, rate)
    monkeypatch.setattr(base, "STREAM_ABOVE_S", 2.0)
    monkeypatch.setattr(encodec, "ENCODE_BLOCK_S", 1)
    with monkeypatch.context() as patch:  # the whole path must not run
        patch.setattr(encodec.EncodecCodec, "decode_with", lambda *a: pytest.fail("decoded the whole signal"))
        streamed = codec.reconstruct(x, rate)
    assert np.array_equal(streamed.audio, whole.audio)
    assert torch.equal(streamed.encoded.codes, whole.encoded.codes)
    assert torch.equal(streamed.encoded.scales, whole.encoded.scales)
    assert streamed.encoded.segment_frames == whole.encoded.segment_frames
    assert streamed.encoded.num_samples == whole.encoded.num_samples
    same = ("channel_handling", "input_samples", "codec_input_samples", "codec_output_samples", "trimmed_samples",
            "padded_samples", "output_samples", "measured_bitrate_bps", "resampler")
    assert {k: getattr(streamed.report, k) for k in same} == {k: getattr(whole.report, k) for k in same}
    assert streamed.report.encode_s > 0 and streamed.report.decode_s > 0
