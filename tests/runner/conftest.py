import numpy as np
import pytest
import soundfile as sf

from evalkit import audio
from tests.conftest import DEMO


@pytest.fixture
def dataset(tmp_path):
    """3 good 0.6 s items at 16 kHz, plus a corrupt, a silent and a too-short file."""
    folder = tmp_path / "data"
    folder.mkdir()
    for i, name in enumerate(["speech_demo-congrats", "music_guit_em9", "other_ambi_sauna"]):
        clip = audio.load(DEMO / f"{name}.flac", channel_policy="mono")
        x = audio.resample(clip.samples[:, int(i * 0.3 * 44100): int((i * 0.3 + 0.6) * 44100)], 44100, 16000)
        sf.write(folder / f"item{i}.wav", x.T, 16000, subtype="FLOAT")
    (folder / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    sf.write(folder / "silent.wav", np.zeros((9600, 1), np.float32), 16000)
    sf.write(folder / "tiny.wav", (0.1 * np.random.default_rng(0).standard_normal((80, 1))).astype(np.float32), 16000)
    return folder


def make_config(dataset, output, codecs=None, metrics=None, **extra):
    return {
        "dataset": {"folder": str(dataset), "glob": "*.wav"},
        "codecs": codecs or [{"spec": "lowpass?cutoff_hz=3500"},
                             {"family": "encodec-24khz", "params": {"bandwidth": [1.5], "weights": "random"}},
                             {"spec": "encodec-24khz?bandwidth=3"}],  # pretrained: missing -> skipped
        "metrics": metrics or ["si_sdr", "mel_distance_22k", "stoi"],
        "output": str(output), "workers": 1, "seed": 0, **extra,
    }
