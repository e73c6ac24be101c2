"""Metrics that align by themselves (ViSQOL, PESQ) equal their libraries' own calls on files that differ in
delay and length: evalkit passes them the whole signals instead of compensating and trimming first."""

import json

import numpy as np
import pytest
import soundfile as sf
from pesq import pesq

from evalkit import audio
from evalkit.cli import main
from evalkit.codecs.anchors import lowpass
from tests.conftest import DEMO

DELAY, PADDING = 100, 5000


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Per rate: a reference file and a degraded copy (7 kHz low-pass, 100 samples late, 5,000 zeros after)."""
    folder = tmp_path_factory.mktemp("pairs")
    clip = audio.load(DEMO / "speech_slt_codecs.flac")
    first_second = clip.samples[:, : clip.sample_rate]
    files = {}
    for rate in (48_000, 16_000):
        ref = audio.resample(first_second, clip.sample_rate, rate)
        deg = np.concatenate([np.zeros((1, DELAY), np.float32), lowpass(ref, 7000, rate),
                              np.zeros((1, PADDING), np.float32)], axis=1)
        files[rate] = (audio.save(folder / f"ref{rate}.wav", ref, rate),
                       audio.save(folder / f"deg{rate}.wav", deg, rate))
    return files


def _score(ref, deg, names, capsys) -> tuple[dict, str]:
    assert main(["score", str(ref), str(deg), "--json", *[a for n in names for a in ("--metric", n)]]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def _visqol(mode: str, ref, deg) -> float:
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode=mode)
    return api.measure(str(ref), str(deg)).moslqo


@pytest.mark.slow
def test_visqol_audio_equals_its_own_call_on_the_files(pairs, capsys):
    ref, deg = pairs[48_000]
    values, err = _score(ref, deg, ["visqol_audio", "si_sdr"], capsys)
    assert values["visqol_audio"] == pytest.approx(_visqol("audio", ref, deg), abs=1e-6)
    assert "lengths differ: reference 1.0000 s, degraded 1.1062 s (+106.2 ms)" in err
    assert "visqol_audio: align internally; given both whole signals" in err
    assert f"si_sdr: at 48000 Hz shifted by {DELAY} samples (2.08 ms), trimmed 0 reference and {DELAY + PADDING} " \
           "degraded samples" in err
    assert values["si_sdr"] > 10  # evalkit's own alignment still serves the metrics that need it


@pytest.mark.slow  # every speech metric against its own library call
def test_speech_metrics_equal_their_own_calls_on_the_files(pairs, capsys):
    ref, deg = pairs[16_000]
    values, err = _score(ref, deg, ["visqol_speech", "pesq_wb", "pesq_nb"], capsys)
    r, rate = sf.read(ref)
    d, _ = sf.read(deg)
    assert rate == 16_000 and len(d) == len(r) + DELAY + PADDING
    assert values["pesq_wb"] == pytest.approx(pesq(16_000, r, d, "wb"), abs=1e-6)
    assert values["pesq_nb"] == pytest.approx(pesq(16_000, r, d, "nb"), abs=1e-6)
    assert values["visqol_speech"] == pytest.approx(_visqol("speech", ref, deg), abs=1e-6)
    assert "visqol_speech, pesq_wb, pesq_nb: align internally" in err
