"""Checkpoints and training state are loaded with ``weights_only=True``: a planted object is refused, not run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from evalkit.cli import main
from evalkit.codecs import SpecError, build_codec
from evalkit.codecs.qincodec.checkpoint import FORMAT, CheckpointError, load_checkpoint
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.recipes import get_config

SRC = Path(__file__).resolve().parents[2] / "src"


class Planted:
    """Unpickling this runs ``touch MARKER`` (what an attacker would put in a shared run folder)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(path: Path, marker: Path, **extra) -> Path:
    torch.save({**extra, "model": {"w": torch.zeros(2)}, "step": 1, "payload": Planted(marker)}, path)
    return path


def test_the_planted_object_would_run_without_weights_only(tmp_path):
    """The control: the file really is malicious (so the refusals below are what stops it)."""
    marker = tmp_path / "ran"
    torch.load(plant(tmp_path / "x.pt", marker), weights_only=False)
    assert marker.exists()


def test_training_state_with_a_planted_object_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = plant(tmp_path / "ae_last.pt", marker)
    with pytest.raises(schedule.TrainingStateError,
                       match=r"ae_last.pt: refused: .*GLOBAL posix.system.*delete it to redo the stage"):
        schedule.load(path)
    assert not marker.exists()


@pytest.mark.slow  # starts QinCodec training
def test_resuming_a_run_folder_with_a_planted_ae_last_is_one_line_exit_2(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        sf.write(data / f"c{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(16_000)).astype(np.float32),
                 16_000)
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "ran"
    plant(out / "ae_last.pt", marker)
    code = main(["qincodec", "train", "--data", str(data), "--out", str(out), "--config", "tiny", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not marker.exists()
    assert err[-1].startswith("evalkit: error: ") and "ae_last.pt: refused" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_a_packaged_checkpoint_with_a_planted_object_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    config = get_config("tiny").as_dict()
    path = plant(tmp_path / "evil.pt", marker, format=FORMAT, config=config)
    with pytest.raises(CheckpointError, match=r"evil.pt refused: .*GLOBAL posix.system"):
        load_checkpoint(str(path))
    with pytest.raises(SpecError, match=r"evil.pt is unreadable: UnpicklingError: unexpected posix.system"):
        build_codec(f"qincodec?checkpoint={path}&n_steps=1", "cpu")  # the torch-free header reader refuses too
    assert not marker.exists()


def test_every_torch_load_in_evalkit_is_weights_only():
    calls = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):  # the call's closing parenthesis
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            calls.append((path.relative_to(SRC).as_posix(), text[match.start(): end + 1]))
    assert len(calls) >= 3  # schedule (training state), checkpoint (packaged), encodec (weights files)
    unsafe = [(f, c) for f, c in calls if "weights_only=True" not in c]
    assert not unsafe, unsafe
