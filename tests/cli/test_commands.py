import shutil

import numpy as np
import pytest
import soundfile as sf

from evalkit.cli import main
from tests.conftest import DEMO


def test_codecs_list_shows_families_and_bitrates(capsys):
    assert main(["codecs", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("encodec-24khz", "encodec-48khz", "dac-16khz", "dac-24khz", "dac-44khz", "lowpass"):
        assert f"{name}:" in out
    assert "bitrates (kbps): 1.5, 3, 6, 12, 24" in out
    assert "7.752" in out and "side information 32.3 bit/s" in out


@pytest.mark.slow
def test_demo_runs_every_family_and_reports_bad_files(tmp_path, capsys):
    shutil.copy(DEMO / "speech_demo-congrats.flac", tmp_path / "speech.flac")
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    sf.write(tmp_path / "silent.wav", np.zeros((4410, 1), np.float32), 44100)
    assert main(["demo", "--data", str(tmp_path), "--seconds", "0.3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("speech.flac")]
    from evalkit.codecs import FAMILIES

    assert len(lines) == len(FAMILIES) and all(" 13230 " in line for line in lines if "lowpass" not in line)
    assert "random (seed 0) - NOT a pretrained model" in out and "NOTE:" in out
    assert out.count("broken.wav") == len(FAMILIES) and "cannot decode audio" in out
    assert "silent.wav" in out and "audio is silent" in out


def test_demo_on_missing_folder_exits_2(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow  # every default pair metric, ViSQOL and PESQ included
def test_score_json_and_table(tmp_path, capsys):
    import json

    from evalkit import audio

    clip = audio.load(DEMO / "speech_demo-congrats.flac")
    ref = clip.samples[:, :44100]
    audio.save(tmp_path / "ref.wav", ref, 44100)
    audio.save(tmp_path / "deg.flac", audio.resample(ref * 0.5, 44100, 16000), 16000)
    assert main(["score", str(tmp_path / "ref.wav"), str(tmp_path / "deg.flac"), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert set(values) == {"si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_speech"}
    assert values["si_sdr"] > 20
    assert main(["score", str(tmp_path / "ref.wav"), str(tmp_path / "ref.wav"), "--metric", "mel_distance"]) == 0
    out = capsys.readouterr().out
    assert "mel_distance" in out and " 0.0000 " in out


def test_score_bad_input_exits_2(tmp_path, capsys):
    (tmp_path / "x.wav").write_bytes(b"junk")
    assert main(["score", str(tmp_path / "x.wav"), str(tmp_path / "x.wav")]) == 2
    assert "x.wav: cannot decode audio" in capsys.readouterr().err
    assert main(["score", str(DEMO / "music_guit_em9.flac"), str(DEMO / "music_guit_em9.flac"),
                 "--metric", "nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err


def test_metrics_list(capsys):
    import importlib.metadata

    from evalkit.metrics import ALL_INFO

    assert main(["metrics", "list"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")] == list(ALL_INFO)
    assert "visqol_audio: audio mode, 48 kHz" in out and 'shown as "ViSQOL audio (MOS-LQO) ↑"' in out
    # each metric's implementing library with its installed version, as the package metadata gives it
    for dist, name in (("pesq", "pesq_wb"), ("pystoi", "stoi"), ("visqol-python", "visqol_audio")):
        block = out.split(f"{name}:", 1)[1].split("\n")[:3]
        assert any(line.strip().startswith(f"{dist} {importlib.metadata.version(dist)}; v") for line in block), block
