"""Array transforms (the FFmpeg codecs, the low-pass anchors) run without torch, and their tensor API agrees."""

import json
import subprocess
import sys

import numpy as np
import pytest

from evalkit.codecs import ArrayTransform, build_codec
from evalkit.codecs.base import ProcessContext

RUN_WITHOUT_TORCH = """
import json, sys
from pathlib import Path
import numpy as np, soundfile as sf
from evalkit.runner import run_evaluation, validate_config
folder = Path(sys.argv[1])
(folder / "data").mkdir()
t = np.arange(16000) / 16000
for i in range(2):
    sf.write(folder / "data" / f"x{i}.wav", (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)).astype(np.float32), 16000)
raw = {"dataset": {"folder": str(folder / "data"), "glob": "*.wav"}, "metrics": ["si_sdr"], "workers": 0,
       "codecs": [{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "opus?bitrate_kbps=12"}], "output": str(folder / "run")}
report = run_evaluation(*validate_config(raw, folder), progress=False)
print(json.dumps({"torch": "torch" in sys.modules, "run": report.units_run, "failed": report.units_failed}))
"""


@pytest.mark.slow  # a run in a fresh interpreter
def test_a_run_of_array_transforms_and_numpy_metrics_never_imports_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_TORCH, str(tmp_path)], capture_output=True, text=True,
                          check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"torch": False, "run": 4, "failed": 0}


@pytest.mark.parametrize("spec", ["lowpass?cutoff_hz=3500", "opus?bitrate_kbps=12", "mp3?bitrate_kbps=64"])
def test_the_tensor_api_of_an_array_transform_gives_its_array_output(spec):
    import torch

    codec = build_codec(spec)
    assert isinstance(codec, ArrayTransform) and codec.device_name == "cpu"
    rate = 48_000 if spec.startswith("opus") else 44_100
    x = (0.2 * np.random.default_rng(0).standard_normal((1, 1, rate // 2))).astype(np.float32)
    direct = codec.process_array(x, ProcessContext(rate))
    through = codec.process(torch.from_numpy(x), ProcessContext(rate))
    assert isinstance(through, torch.Tensor)
    np.testing.assert_array_equal(through.numpy(), direct)
    rec = codec.reconstruct(x[0], rate)
    assert rec.report.device == "cpu" and rec.audio.dtype == np.float32 and rec.audio.shape == x[0].shape
