"""A tiny QinCodec trained once per session (synthetic audio, every stage through the command line), shared by the
training tests and the codec tests that need a trained checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

RATE = 16_000


def synthetic_corpus(folder, files: int = 8, seconds: float = 3.0) -> None:
    """Harmonic tones with vibrato, noise bursts and chirps: enough structure for a tiny codec to learn."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    folder.mkdir(parents=True)
    for i in range(files):
        f0 = 110 * 2 ** (i / 4) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 6))
        x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + i)) + 0.05 * rng.standard_normal(len(t))
        x[int(RATE * 1.5): int(RATE * 1.7)] += 0.3 * rng.standard_normal(int(RATE * 0.2))
        sf.write(folder / f"clip{i}.wav", (0.2 * x / np.abs(x).max()).astype(np.float32), RATE)


@pytest.fixture(scope="session")
def qincodec_run(tmp_path_factory):
    """`evalkit qincodec train --config tiny` through every stage, via the command line; its training context."""
    from evalkit.cli import main
    from evalkit.training.qincodec.recipes import get_config
    from evalkit.training.qincodec.train import Context

    root = tmp_path_factory.mktemp("qincodec")
    synthetic_corpus(root / "data")
    threads = torch.get_num_threads()
    try:  # one thread: tiny tensors gain nothing from more, and a busy machine makes them wait
        assert main(["qincodec", "train", "--data", str(root / "data"), "--out", str(root / "run"),
                     "--config", "tiny", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return Context(get_config("tiny"), root / "data", root / "run", torch.device("cpu"), progress=False)


def held_out_latents(run) -> torch.Tensor:
    return torch.from_numpy(np.load(run.out / "latents.npz")["val"])
