"""Every extension of ``AUDIO_EXTENSIONS`` is read by ``audio.load``: libsndfile's formats, and AAC (``.m4a``,
``.aac``) decoded through PyAV with the encoder's priming and padding removed."""

import av
import numpy as np
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.audio import AUDIO_EXTENSIONS, PYAV_EXTENSIONS, SOUNDFILE_EXTENSIONS, AudioError


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def _write_aac(path, x: np.ndarray, rate: int, container: str) -> None:
    layout = {1: "mono", 2: "stereo"}[x.shape[0]]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("aac", rate=rate)
        stream.codec_context.layout = layout
        stream.codec_context.bit_rate = 192_000
        frame = av.AudioFrame.from_ndarray(x, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def _snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference ** 2) / np.sum((reference - test) ** 2)))


def test_the_extension_lists_are_lower_case_and_disjoint():
    assert AUDIO_EXTENSIONS == SOUNDFILE_EXTENSIONS + PYAV_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in AUDIO_EXTENSIONS)
    assert not set(SOUNDFILE_EXTENSIONS) & set(PYAV_EXTENSIONS)


@pytest.mark.parametrize("extension,options", [
    (".wav", {}), (".flac", {}), (".ogg", {}), (".oga", {"format": "OGG"}),
    (".opus", {"format": "OGG", "subtype": "OPUS"}), (".mp3", {}), (".aif", {"format": "AIFF"}), (".aiff", {}),
    (".aifc", {"format": "AIFF"}), (".au", {}), (".caf", {}), (".w64", {}), (".rf64", {}),
])
def test_every_soundfile_extension_loads(tmp_path, extension, options):
    x = _tone(48000, 0.2, 2)
    path = tmp_path / f"clip{extension}"
    sf.write(path, x.T, 48000, **options)
    clip = audio.load(path)
    assert clip.sample_rate == 48000 and clip.channels == 2 and abs(clip.num_samples - x.shape[1]) <= 1152


@pytest.mark.parametrize("extension,container", [(".m4a", "ipod"), (".aac", "adts")])
@pytest.mark.parametrize("channels", [1, 2])
def test_aac_files_decode_through_pyav_to_the_signal(tmp_path, extension, container, channels):
    x = _tone(44100, 0.5, channels)
    path = tmp_path / f"clip{extension}"
    _write_aac(path, x, 44100, container)
    clip = audio.load(path)
    assert clip.sample_rate == 44100 and clip.channels == channels and clip.samples.dtype == np.float32
    if container == "ipod":  # the MP4 edit list gives priming and length: the samples line up with the input
        assert clip.num_samples == x.shape[1]
        assert _snr_db(x, clip.samples) > 20
    else:  # ADTS carries neither: FFmpeg's decoder output keeps the encoder's 1024 priming samples
        assert clip.num_samples >= x.shape[1]
        assert _snr_db(x[:, : x.shape[1] - 2048], clip.samples[:, 1024: x.shape[1] - 1024]) > 20


def test_pyav_header_matches_the_decoded_file(tmp_path):
    x = _tone(22050, 0.4, 2)
    _write_aac(tmp_path / "clip.m4a", x, 22050, "ipod")
    rate, channels, seconds = audio.pyav_header(tmp_path / "clip.m4a")
    assert (rate, channels) == (22050, 2) and seconds == pytest.approx(0.4, abs=1e-3)


@pytest.mark.parametrize("content", [b"", b"\0\0\0\x18ftypM4A broken", b"plain text, not audio"])
def test_an_undecodable_aac_file_is_an_audio_error_naming_it(tmp_path, content):
    path = tmp_path / "bad.m4a"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="bad.m4a: (cannot decode audio|audio is empty)"):
        audio.load(path)
