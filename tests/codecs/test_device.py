"""``device: auto`` is resolved without importing torch where torch cannot have CUDA, so planning a run keeps the
coordinator process free of torch (a few hundred MB beside the worker that codes a long item)."""

import importlib.metadata
import json
import subprocess
import sys

import pytest

from evalkit.codecs import base


@pytest.mark.parametrize(("version", "platform", "expected"), [
    ("2.13.0+cpu", "linux", False),
    ("2.13.0+cu126", "linux", True),
    ("2.13.0", "linux", True),  # PyPI's Linux wheel is a CUDA build
    ("2.13.0", "darwin", False),
])
def test_cuda_is_possible_only_for_a_cuda_build_off_macos(monkeypatch, version, platform, expected):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    monkeypatch.setattr(base.sys, "platform", platform)
    assert base.cuda_possible() is expected


PLAN = """
import json, sys
from evalkit.codecs import parse_spec
from evalkit.runner.plan import plan_variant
ids = [plan_variant(parse_spec(s), device="auto").identity for s in ("qincodec?bitrate_kbps=8", "opus?bitrate_kbps=12")]
planned_without_torch = "torch" not in sys.modules
from evalkit.codecs.base import resolve_device
print(json.dumps({"without_torch": planned_without_torch, "ids": ids, "torch_says": resolve_device("auto").type}))
"""


@pytest.mark.skipif(not importlib.metadata.version("torch").endswith("+cpu"), reason="needs torch's CPU build")
def test_planning_on_a_cpu_build_does_not_import_torch_and_names_the_device_torch_would_pick():
    done = subprocess.run([sys.executable, "-c", PLAN], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["without_torch"]
    assert result["torch_says"] == "cpu" and all("device=cpu" in identity for identity in result["ids"])
