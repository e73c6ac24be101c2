"""Numba's caches: set-up fills them, and every later process (pool workers too) loads instead of compiling."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a second Python process compiles ViSQOL kernels

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import json, sys
from evalkit.worker_setup import WorkerSetup, init_worker
init_worker(WorkerSetup(threads=1))  # as a pool worker starts
from evalkit.metrics.jit_cache import warm_caches
report = warm_caches(["visqol_speech"])
print(json.dumps({"compiled": report.compiled, "loaded": report.loaded}))
"""


def _worker_run() -> dict:
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", WORKER], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_visqols_kernels_from_the_disk_cache():
    pytest.importorskip("numba")
    _worker_run()  # compiles on a cold cache (as the first run of a fresh install would), else loads
    again = _worker_run()
    assert again["loaded"].get("visqol", 0) >= 5  # its DP, patch and gammatone kernels
    assert again["compiled"].get("visqol", 0) == 0


def test_setup_warms_the_caches_after_installing():
    script = (ROOT / "scripts" / "setup_env.sh").read_text()
    warm = script.index("-m evalkit.metrics.jit_cache")
    assert script.index("install --no-deps -e .") < warm < script.index('touch "$stamp"')
