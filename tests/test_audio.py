import io

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from evalkit import audio
from evalkit.audio import AudioError
from tests.conftest import DEMO, tone


@pytest.mark.parametrize("suffix,tol", [(".wav", 0.0), (".flac", 2.0 ** -23)])
def test_save_load_roundtrip(tmp_path, rng, suffix, tol):
    x = (rng.uniform(-0.9, 0.9, (2, 4410))).astype(np.float32)
    path = audio.save(tmp_path / f"a{suffix}", x, 44100)
    y = audio.load(path)
    assert y.sample_rate == 44100 and y.samples.shape == (2, 4410)
    np.testing.assert_allclose(y.samples, x, atol=tol)


def test_load_mono_policy_averages_channels(tmp_path, rng):
    x = rng.uniform(-0.5, 0.5, (2, 1000)).astype(np.float32)
    path = audio.save(tmp_path / "s.wav", x, 16000)
    y = audio.load(path, channel_policy="mono")
    np.testing.assert_allclose(y.samples[0], (x[0] + x[1]) / 2, atol=1e-7)


def test_bad_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(AudioError, match="corrupt.wav: cannot decode"):
        audio.load(corrupt)
    with pytest.raises(AudioError, match="missing.flac: file not found"):
        audio.load(tmp_path / "missing.flac")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: audio is empty"):
        audio.load(empty)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([[0.1], [np.nan], [np.inf]], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains 2 NaN or infinite"):
        audio.load(nan)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((100, 1), np.float32), 16000)
    with pytest.raises(AudioError, match="silent.wav: audio is silent"):
        audio.load(silent)
    assert audio.load(silent, allow_silent=True).num_samples == 100


def test_resample_matches_polyphase_reference_and_lengths():
    x = tone(1000, 48000, 0.5)
    y = audio.resample(x, 48000, 16000)
    assert y.shape == (1, 8000)
    ref = signal.resample_poly(x[0].astype(np.float64), 1, 3)
    core = slice(500, -500)  # edges differ by filter design only
    np.testing.assert_allclose(y[0][core], ref[core], atol=2e-3)
    assert audio.resample(x, 48000, 48000) is x  # same rate: untouched, not resampled
    assert audio.resample(tone(440, 44100, 1.0), 44100, 24000).shape == (1, 24000)


def test_loudness_matches_bs1770_reference_sine():
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS.
    x = tone(997, 48000, 5.0, amplitude=1.0)
    assert audio.loudness_lufs(x, 48000) == pytest.approx(-3.01, abs=0.05)
    y, gain = audio.normalize_loudness(x * 0.1, 48000, -23.0)
    assert audio.loudness_lufs(y, 48000) == pytest.approx(-23.0, abs=0.01)
    assert gain == pytest.approx(-23.0 - (-3.01 - 20.0), abs=0.05)
    with pytest.raises(AudioError, match="too short"):
        audio.loudness_lufs(x[:, :1000], 48000)


@pytest.mark.parametrize("delay", [0, 37, -120, 2200])
def test_estimate_delay_and_align(rng, delay):
    rate = 44100
    ref = rng.standard_normal((1, rate // 2)).astype(np.float32)
    if delay >= 0:
        deg = np.concatenate([np.zeros((1, delay), np.float32), ref], axis=1)
    else:
        deg = ref[:, -delay:]
    estimate = audio.estimate_delay(ref, deg, rate)
    assert estimate.samples == delay and estimate.reliable and estimate.polarity == 1
    r, d, info = audio.align(ref, deg, rate)
    np.testing.assert_array_equal(r, d)
    assert info.delay_samples == delay and info.length == r.shape[1]
    assert info.trimmed_reference == ref.shape[1] - info.length
    assert info.delay_ms == pytest.approx(1000 * delay / rate)


def _delayed(x: np.ndarray, samples: int, gain: float = 1.0) -> np.ndarray:
    return np.concatenate([np.zeros((1, samples), np.float32), gain * x], axis=1)


def test_delay_beyond_the_window_is_not_shifted_and_says_so(rng):
    ref = rng.standard_normal((1, 20000)).astype(np.float32)
    deg = _delayed(ref, 3000)  # 68 ms > the 50 ms window
    outside = audio.estimate_delay(ref, deg, 44100)
    assert outside.samples == 0 and not outside.reliable and "not shifted" in outside.note
    assert outside.confidence < 0.1  # the normalised correlation of unrelated noise is small
    r, d, info = audio.align(ref, deg, 44100)
    assert info.delay_samples == 0 and info.trimmed_degraded == 3000  # only the length is matched
    wider = audio.estimate_delay(ref, deg, 44100, max_delay_s=0.1)
    assert wider.samples == 3000 and wider.reliable and wider.confidence == pytest.approx(1.0, abs=1e-6)


def test_polarity_inverted_copy_is_found_at_its_delay_with_negative_polarity(demo_clip):
    x, rate = demo_clip
    x = x[:1]
    estimate = audio.estimate_delay(x, _delayed(x, 128, gain=-0.5), rate)
    assert (estimate.samples, estimate.polarity, estimate.reliable) == (128, -1, True)
    assert estimate.confidence == pytest.approx(1.0, abs=1e-6)  # normalised: gain and sign do not matter


def test_200ms_delay_of_music_has_no_reliable_peak_within_50ms():
    # A held guitar chord correlates with itself 200 ms later (|r| about 0.4 inside the ±50 ms window), but no
    # lag stands out (and lags beyond the window correlate better): the old estimator shifted by a wrong delay.
    clip = audio.load(DEMO / "music_guit_em9.flac", channel_policy="mono")
    x = clip.samples[:, : clip.sample_rate]
    estimate = audio.estimate_delay(x, _delayed(x, int(0.2 * clip.sample_rate)), clip.sample_rate, search_s=0.05)
    assert estimate.samples == 0 and not estimate.reliable
    assert 0.3 < estimate.confidence < 0.6 and estimate.peak_ratio < audio.MIN_PEAK_RATIO
    assert "no reliable delay within ±50 ms: the cross-correlation is stronger outside the window" in estimate.note
    assert estimate.misaligned and estimate.best_lag_s == pytest.approx(0.2)  # so aligned metrics are NaN


def test_unrelated_or_silent_signals_are_not_shifted(rng):
    ref = rng.standard_normal((1, 8000)).astype(np.float32)
    noise = audio.estimate_delay(ref, rng.standard_normal((1, 8000)).astype(np.float32), 8000)
    assert noise.samples == 0 and "no reliable delay" in noise.note
    silent = audio.estimate_delay(ref, np.zeros((1, 8000), np.float32), 8000)
    assert silent.samples == 0 and "silent" in silent.note


def test_detect_clipping_counts_by_hand():
    x = np.array([[0.1, -1.0, 0.9995, 0.5, 1.0]], np.float32)
    rep = audio.detect_clipping(x)
    assert rep.clipped_samples == 3 and rep.total_samples == 5 and rep.fraction == pytest.approx(0.6)
    assert rep.peak == pytest.approx(1.0) and rep.clipped
    assert not audio.detect_clipping(x * 0.5).clipped


@pytest.mark.parametrize("name", ["speech_slt_codecs", "speech_slt_stella", "speech_basic-pbx-ivr-main",
                                  "music_bach_bwv4_8", "music_loop_tabla"])
def test_a_delay_just_beyond_the_window_is_never_aligned_to_a_peak_near_its_edge(name, rng):
    # A true delay of 52-60 ms (the window is ±50 ms) used to be "found" at a spurious 46-50 ms (or 15 ms for
    # the chorale), wrecking every aligned metric. A 10 dB SNR copy stands in for a codec's output.
    clip = audio.load(DEMO / f"{name}.flac", channel_policy="mono")
    rate, x = clip.sample_rate, clip.samples[:, : 3 * clip.sample_rate]
    noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(x.std() * 10 ** (-10 / 20))
    for ms in (52, 55, 58, 60):
        deg = _delayed(noisy, round(ms * rate / 1000))
        estimate = audio.estimate_delay(x, deg, rate, search_s=0.05)  # the window kept at ±50 ms
        assert estimate.samples == 0 and not estimate.reliable, (ms, estimate)
        assert estimate.note.startswith("no reliable delay within ±50 ms") and "not shifted" in estimate.note
        assert estimate.misaligned  # and so NaN for the metrics evalkit aligns
        wider = audio.estimate_delay(x, deg, rate, max_delay_s=0.1)
        assert wider.samples == round(ms * rate / 1000) and wider.reliable
        grown = audio.estimate_delay(x, deg, rate)  # the default window grows to 10 % of the 3 s item
        assert grown.samples == round(ms * rate / 1000) and grown.reliable and grown.window_s == 0.3
        assert audio.align(x, deg, rate)[2].delay_samples == grown.samples
    for ms in (3, 30, 49.5):  # inside the window (also near its edge) the delay is still found
        delay = round(ms * rate / 1000)
        assert audio.estimate_delay(x, _delayed(noisy, delay), rate, search_s=0.05).samples == delay


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_write_float_wav_reads_back_bit_exact_through_libsndfile_and_ffmpeg(tmp_path, channels):
    import av

    x = np.random.default_rng(channels).uniform(-1.2, 1.2, (channels, 4801)).astype(np.float32)  # beyond ±1 too
    path = tmp_path / "x.wav"
    with open(path, "wb") as fh:
        audio.write_float_wav(fh, x, 48000)
    y, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 48000 and np.array_equal(y.T, x)
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.frames, info.channels) == ("WAV", "FLOAT", 4801, channels)
    with av.open(str(path)) as container:  # FFmpeg (PyAV) agrees on the layout
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    decoded = np.concatenate(frames, axis=-1).reshape(-1, channels).T if frames[0].shape[0] == 1 else \
        np.concatenate(frames, axis=-1)
    assert np.array_equal(decoded, x)


def test_write_float_wav_bytes_depend_only_on_samples_and_rate(tmp_path):
    x = np.linspace(-1, 1, 1000, dtype=np.float32)[None]
    first, second = io.BytesIO(), io.BytesIO()
    audio.write_float_wav(first, x, 16000)
    audio.write_float_wav(second, x.astype(np.float64), 16000)  # converted to float32 on the way
    assert first.getvalue() == second.getvalue()
    assert len(first.getvalue()) == 58 + 4 * 1000  # RIFF, fmt (18), fact, data headers: nothing else


def _with_chunk(wav: bytes, chunk: bytes, payload: bytes) -> bytes:
    """``wav`` with an extra chunk (padded to an even size) between ``fmt `` and the rest, RIFF size fixed."""
    at = wav.index(b"fmt ") + 8 + int.from_bytes(wav[wav.index(b"fmt ") + 4:wav.index(b"fmt ") + 8], "little")
    extra = chunk + len(payload).to_bytes(4, "little") + payload + b"\0" * (len(payload) % 2)
    out = wav[:at] + extra + wav[at:]
    return out[:4] + (len(out) - 8).to_bytes(4, "little") + out[8:]


def _wav_file(folder, rng, shape, rate, subtype, container, extra):
    """``x.wav`` in ``folder``: noise of ``shape`` (frames, channels), with an extra chunk holding ``extra``."""
    x = np.clip(0.5 * rng.standard_normal(shape), -1, 1).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, subtype=subtype, format=container)
    wav = buffer.getvalue() if extra is None else _with_chunk(buffer.getvalue(), b"junk", extra)
    path = folder / "x.wav"
    path.write_bytes(wav)
    return path, wav


@pytest.mark.parametrize(("channels", "subtype", "container"), [
    (1, "FLOAT", "WAV"), (2, "FLOAT", "WAV"), (1, "PCM_16", "WAV"), (2, "PCM_16", "WAV"), (3, "FLOAT", "WAVEX"),
    (2, "PCM_16", "WAVEX")])
@pytest.mark.parametrize("extra", [None, b"odd"])  # an odd-sized chunk before the data, padded
def test_plain_wav_files_read_with_numpy_equal_libsndfile(tmp_path, rng, channels, subtype, container, extra):
    path, _ = _wav_file(tmp_path, rng, (999, channels), 22_050, subtype, container, extra)
    expected, rate = sf.read(path, dtype="float32", always_2d=True)
    plain = audio.read_plain_wav(path)
    assert plain is not None, "read by libsndfile instead"
    samples, plain_rate = plain
    assert plain_rate == rate == 22_050 and samples.flags.writeable and samples.flags.c_contiguous
    np.testing.assert_array_equal(samples, expected.T)
    np.testing.assert_array_equal(audio.load(path).samples, expected.T)


@pytest.mark.parametrize("case", ["PCM_24", "DOUBLE", "PCM_U8", "truncated", "big-endian", "flac"])
def test_other_files_are_left_to_libsndfile_which_load_uses_for_them(tmp_path, rng, case):
    x = (0.3 * rng.standard_normal((500, 1))).astype(np.float32)
    buffer = io.BytesIO()
    if case in ("PCM_24", "DOUBLE", "PCM_U8"):
        sf.write(buffer, x, 8000, subtype=case, format="WAV")
    elif case == "big-endian":
        sf.write(buffer, x, 8000, subtype="PCM_16", format="WAV", endian="BIG")  # RIFX
    elif case == "flac":
        sf.write(buffer, x, 8000, format="FLAC")
    else:
        sf.write(buffer, x, 8000, subtype="FLOAT", format="WAV")
    data = buffer.getvalue()[:-100] if case == "truncated" else buffer.getvalue()
    path = tmp_path / "x.wav"
    path.write_bytes(data)
    assert audio.read_plain_wav(path) is None
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(audio.load(path).samples, expected.T)


@pytest.mark.parametrize(("channels", "subtype", "container"), [
    (1, "FLOAT", "WAV"), (2, "PCM_16", "WAV"), (3, "FLOAT", "WAVEX"), (1, "PCM_24", "WAV"), (1, "DOUBLE", "WAV")])
@pytest.mark.parametrize("extra", [None, b"odd"])
def test_a_plain_wav_layout_from_the_first_bytes_has_libsndfiles_header(tmp_path, rng, channels, subtype, container,
                                                                         extra):
    path, wav = _wav_file(tmp_path, rng, (1001, channels), 32_000, subtype, container, extra)
    info = sf.info(str(path))
    whole = audio.plain_wav_layout(wav, len(wav))
    if subtype in ("PCM_24", "DOUBLE"):  # not a format read_plain_wav reads: the caller asks libsndfile
        assert whole is None
        return
    assert (whole.rate, whole.channels, whole.frames) == (info.samplerate, info.channels, info.frames)
    # the bytes up to the data chunk's header are enough; fewer are not
    assert audio.plain_wav_layout(wav[:whole.offset], len(wav)) == whole
    assert audio.plain_wav_layout(wav[:whole.offset - 8], len(wav)) is None
    assert audio.plain_wav_layout(wav[:whole.offset], len(wav) - 100) is None  # truncated: libsndfile decides
