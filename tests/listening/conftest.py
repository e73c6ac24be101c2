"""Fixtures for listening tests: a small real evaluation run (low-pass "conditions" on seeded 1 s clips), test
folders prepared from it, and a Streamlit server on a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit.listening.model import Design
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.web.serve import ADMIN_ENV, COMPLETION_ENV, streamlit_command, write_launcher

RATE = 16000
CONDITIONS = ("lowpass?cutoff_hz=2000", "lowpass?cutoff_hz=5000")


def make_run(root: Path, n_items: int = 3, specs=CONDITIONS, seconds: float = 1.0, rate: int = RATE,
             noise: bool = False) -> Path:
    """A real ``evalkit run`` over seeded tone-plus-noise (or white-noise) clips, with si_sdr only (fast)."""
    from evalkit.runner import load_config, run_evaluation

    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(7)
    t = np.arange(int(rate * seconds)) / rate
    for k in range(n_items):
        x = 0.1 * rng.standard_normal(len(t))
        if not noise:
            x = 0.3 * np.sin(2 * np.pi * 300 * (k + 1) * t) + 0.5 * x
        sf.write(data / f"clip{k}.wav", x.astype(np.float32), rate)
    codecs = "\n".join(f'  - spec: "{s}"' for s in specs)
    config = root / "run.yaml"
    config.write_text(f'dataset: {{folder: {data}, glob: "*.wav"}}\ncodecs:\n{codecs}\nmetrics: [si_sdr]\n'
                      f"output: {root / 'run'}\nworkers: 0\n")
    cfg, parsed = load_config(config)
    run_evaluation(cfg, parsed, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("listen-run"))


@pytest.fixture(scope="session")
def mushra_dir(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mushra") / "test"
    prepare_test(run_dir, out, PrepareOptions(Design.MUSHRA, items=2, listeners=4))
    return out


@pytest.fixture(scope="session")
def ab_dir(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ab") / "test"
    prepare_test(run_dir, out, PrepareOptions(Design.AB, items=2, listeners=4))
    return out


@pytest.fixture(scope="session")
def panel_dir(run_dir, tmp_path_factory) -> Path:
    """A MUSHRA test with questionnaire answers and headphone checks (tests/listening/test_questionnaire.py)."""
    from tests.listening.test_questionnaire import make_panel_test

    return make_panel_test(run_dir, tmp_path_factory.mktemp("panel") / "test")


@pytest.fixture
def fresh_copy(tmp_path):
    """A private copy of a prepared test folder (tests that write ratings must not share a store)."""
    def copy(folder: Path) -> Path:
        dst = Path(tempfile.mkdtemp(dir=tmp_path)) / folder.name
        shutil.copytree(folder, dst)
        return dst
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, admin_token: str = "admin-token-for-tests", completion_code: str | None = None,
                 base_url_path: str = ""):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/" + (f"{base_url_path}/" if base_url_path else "")
        self.admin_token = admin_token
        write_launcher(folder)
        env = dict(os.environ, **{ADMIN_ENV: admin_token})
        env.pop(COMPLETION_ENV, None)
        if completion_code:
            env[COMPLETION_ENV] = completion_code
        self.proc = subprocess.Popen(streamlit_command(folder, "127.0.0.1", self.port, base_url_path), env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"streamlit did not start: {self.proc.stdout.read().decode(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def serve_test():
    servers = []

    def start(folder: Path, **options) -> Server:
        server = Server(folder, **options)
        servers.append(server)
        return server
    yield start
    for s in servers:
        s.stop()
