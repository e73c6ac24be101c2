"""Shared fixtures: no network, private weight caches, seeded synthetic clips of ≤ 1 s."""

from __future__ import annotations

import socket
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

from tests.plugin_fixtures import clean_families  # noqa: F401 - a fixture for plugin tests
from tests.qincodec_fixtures import qincodec_run  # noqa: F401 - a trained tiny QinCodec, once per session

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"

#: Test files that are slow as a whole (``make test-fast`` leaves them out) but that this file declares instead of
#: their own ``pytestmark``: files under ``tests/listening/`` (kept free of tier bookkeeping while that folder is
#: being reorganised). Matched on the file name, so the patterns survive a move into subfolders. Everything
#: else marks itself: ``pytestmark = pytest.mark.slow`` in the module, or ``@pytest.mark.slow`` on a test.
SLOW_FILES = (
    "test_browser*.py",  # a real Chromium per test
    "test_serve_lifecycle.py",  # starts and signals Streamlit servers
)


def pytest_collection_modifyitems(config, items):
    """Mark every test collected from a :data:`SLOW_FILES` file as ``slow``."""
    for item in items:
        if any(fnmatch(item.path.name, pattern) for pattern in SLOW_FILES):
            item.add_marker(pytest.mark.slow)



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
