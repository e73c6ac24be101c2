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
        "output": str(output), "workers": 0, "seed": 0, **extra,
    }


@pytest.fixture
def small_dataset(tmp_path):
    """A corrupt file (first in sorted order) and two good 0.3 s items at 16 kHz: for tests that run codecs."""
    folder = tmp_path / "small"
    folder.mkdir()
    clip = audio.load(DEMO / "speech_demo-congrats.flac", channel_policy="mono")
    for i in range(2):
        x = audio.resample(clip.samples[:, int((i + 1) * 0.4 * 44100): int(((i + 1) * 0.4 + 0.3) * 44100)], 44100,
                           16000)
        sf.write(folder / f"item{i}.wav", x.T, 16000, subtype="FLOAT")
    (folder / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    return folder


@pytest.fixture
def stereo_dataset(tmp_path):
    """One 0.3 s stereo item at 24 kHz whose channels differ (so channel handling changes decoded audio)."""
    folder = tmp_path / "stereo"
    folder.mkdir()
    clip = audio.load(DEMO / "music_guit_em9.flac", channel_policy="mono")
    x = audio.resample(clip.samples[:, 22050: 22050 + int(0.3 * 44100)], 44100, 24000)
    x = np.concatenate([x, np.roll(x, 240, axis=1) * 0.5])
    sf.write(folder / "st.wav", x.T, 24000, subtype="FLOAT")
    return folder


def run_raw(raw, base_dir, **kwargs):
    """Validate a raw config dict and run it in-process (no progress bar)."""
    from evalkit.runner import run_evaluation, validate_config

    config, specs = validate_config(raw, base_dir)
    return run_evaluation(config, specs, progress=False, **kwargs)


def export_values(report) -> list[tuple]:
    """The exported (item, variant, metric, value, reason) rows, sorted; NaN as None."""
    import pandas as pd

    tidy = pd.read_csv(report.exports["results_csv"])
    rows = [(r.item_id, r.codec_spec, r.metric, None if pd.isna(r.value) else round(float(r.value), 9),
             None if pd.isna(r.reason) else r.reason) for r in tidy.itertuples()]
    return sorted(rows, key=str)
