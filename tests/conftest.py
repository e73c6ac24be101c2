"""Shared fixtures: no network, private weight caches, seeded synthetic clips of ≤ 1 s."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from tests.plugin_fixtures import clean_families  # noqa: F401 - a fixture for plugin tests
from tests.qincodec_fixtures import qincodec_run  # noqa: F401 - a trained tiny QinCodec, once per session

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture(autouse=True)
def offline_and_private_caches(monkeypatch, tmp_path_factory):
    """Tests never download: downloads are disabled, caches point to an empty temporary home, and any
    non-loopback connection raises."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("EVALKIT_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.delenv("EVALKIT_WEIGHTS", raising=False)
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")
                                          or host.startswith("/")):
            raise OSError(f"tests must not touch the network (tried {address})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield home


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]


@pytest.fixture
def demo_clip():
    """First second of a demo speech item (mono, 44.1 kHz)."""
    import soundfile as sf

    data, rate = sf.read(DEMO / "speech_demo-congrats.flac", dtype="float32", always_2d=True, frames=44100)
    return data.T.copy(), rate
