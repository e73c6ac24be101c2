"""The Python API: evalkit.score / build_codec / run / load_run, lazily imported."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import evalkit
from evalkit.cli import main
from tests.conftest import DEMO


def test_import_evalkit_loads_no_heavy_library_until_the_api_is_used():
    probe = ("import json, sys; import evalkit; "
             "before = [m for m in ('torch', 'scipy', 'pandas') if m in sys.modules]; "
             "names = sorted(n for n in ('score', 'run', 'load_run', 'build_codec', 'Codec') if n in dir(evalkit)); "
             "f = evalkit.score; print(json.dumps({'before': before, 'names': names, 'module': f.__module__}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"before": [], "names": ["Codec", "build_codec", "load_run", "run", "score"],
                                       "module": "evalkit.api"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        evalkit.nope  # noqa: B018


@pytest.mark.slow  # codec runs and every default pair metric
def test_score_of_files_equals_evalkit_score(tmp_path, capsys):
    ref = DEMO / "speech_demo-congrats.flac"
    deg = tmp_path / "deg.wav"
    clip = evalkit.build_codec("lowpass?cutoff_hz=3500").reconstruct(*_load(ref))
    import soundfile as sf

    sf.write(deg, clip.audio.T, clip.sample_rate, subtype="FLOAT")
    metrics = ["si_sdr", "mel_distance", "stoi"]
    assert main(["score", str(ref), str(deg), "--json", *[a for m in metrics for a in ("--metric", m)]]) == 0
    expected = json.loads(capsys.readouterr().out)
    scores = evalkit.score(ref, deg, metrics=metrics)
    assert list(scores) == metrics and dict(scores) == pytest.approx(expected, rel=1e-9)
    arrays = evalkit.score((clip_ref := _load(ref))[0], clip.audio, clip_ref[1], metrics=metrics)
    assert dict(arrays) == pytest.approx(expected, rel=1e-9)  # arrays at one rate give the same values
    assert scores.units["si_sdr"] == "dB" and scores.details["stoi"].preparation.rate == 10000


def _load(path):
    from evalkit import audio

    clip = audio.load(path)
    return clip.samples[:, : clip.sample_rate], clip.sample_rate  # 1 s


def test_score_reports_failures_and_bad_arguments(rng):
    x = rng.standard_normal(16000).astype(np.float32)
    scores = evalkit.score(x, np.zeros_like(x), 16000, metrics=["si_sdr"])
    assert math.isnan(scores["si_sdr"]) and scores.reasons["si_sdr"]
    with pytest.raises(ValueError, match="reference: an array needs its sample rate"):
        evalkit.score(x, x)
    from evalkit.metrics import UnknownMetric

    with pytest.raises(UnknownMetric):
        evalkit.score(x, x, 16000, metrics=["no_such_metric"])
    from evalkit import audio

    tone = np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)
    stereo = np.stack([tone, 0.5 * tone]).astype(np.float32)
    at_8k = audio.resample(stereo, 16000, 8000)  # (array, rate) pairs at different rates: resampled per metric
    assert evalkit.score((stereo, 16000), (at_8k, 8000), metrics="si_sdr")["si_sdr"] > 40


def test_build_codec_reconstructs_one_dimensional_audio(rng):
    x = (0.1 * rng.standard_normal(4410)).astype(np.float32)
    out = evalkit.build_codec("lowpass?cutoff_hz=7000").reconstruct(x, 44100)
    assert out.audio.shape == (1, 4410) and out.report.input_samples == 4410


@pytest.mark.slow  # codec runs and every default pair metric
def test_run_and_load_run_give_tidy_labelled_tables(tmp_path, rng):
    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        sf.write(data / f"x{i}.wav", (0.2 * rng.standard_normal(8000)).astype(np.float32), 16000, subtype="FLOAT")
    config = {"dataset": {"folder": "data", "glob": "*.wav"}, "output": "out", "workers": 0,
              "metrics": ["si_sdr", "mel_distance"],
              "codecs": [{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "encodec-24khz?bandwidth=1.5&weights=random"}]}
    run = evalkit.run(config, base_dir=tmp_path)
    assert run.report.units_total == 4 and run.run_dir == tmp_path / "out"
    loaded = evalkit.load_run(tmp_path / "out")
    assert len(loaded.results) == 8 and list(loaded.results.columns[:4]) == ["item_id", "category", "codec_spec",
                                                                            "label"]
    labels = {"3.5 kHz anchor", "EnCodec 24 kHz 1.5 kbps (random weights)"}
    assert set(loaded.summary["label"]) == labels
    assert loaded.summary.set_index(["label", "metric"])["n"].to_dict() == {(lb, m): 2 for lb in labels
                                                                             for m in ("mel_distance", "si_sdr")}
    assert set(loaded.codebooks["codebook"]) == {0, 1} and set(loaded.codebooks["label"]) == {
        "EnCodec 24 kHz 1.5 kbps (random weights)"}
    # a non-default, non-swept parameter (random weights) is its own curve, never mixed with the pretrained one
    assert set(loaded.rate_quality["family"]) == {"encodec-24khz:weights=random"}
    assert loaded.provenance["config"]["workers"] == 0 and set(loaded.units["status"]) == {"ok"}
    from evalkit.runner import ConfigError

    with pytest.raises(ConfigError, match="metrics.0: unknown metric 'nope'"):
        evalkit.run({**config, "metrics": ["nope"]}, base_dir=tmp_path)
    with pytest.raises(evalkit.RunNotFound, match="not a finished run folder"):
        evalkit.load_run(tmp_path / "data")
