"""``run.json``: what a run was (config, versions, machine, date, variants), written after every run.

Nothing in it is part of a key: it records how the folder's current exports were made, for reports.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import evalkit
from evalkit.metrics import PAIR_METRICS
from evalkit.metrics.plugins import plugin_records
from evalkit.runner.layout import PROVENANCE_NAME
from evalkit.versions import installed_version

if TYPE_CHECKING:
    from evalkit.runner.config import RunConfig
    from evalkit.runner.outcome import RunReport
    from evalkit.runner.plan import Variant

__all__ = ["LIBRARIES", "PROVENANCE_NAME", "machine", "run_provenance", "write_provenance"]
#: Distributions whose versions can change a stored value (codecs, resampling, metrics) or the exports.
LIBRARIES = ("numpy", "scipy", "torch", "soxr", "soundfile", "pyloudnorm", "encodec", "descript-audio-codec",
             "av", "faiss-cpu", "visqol-python", "numba", "pesq", "pystoi", "speechmos", "onnxruntime",
             "resemblyzer", "pocketsphinx", "jiwer", "pandas")


def machine() -> dict:
    """Platform, Python, CPU count and, when torch is already loaded, its CUDA device."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")  # never imported just to describe the machine
    info["cuda"] = None  # no GPU, or torch not loaded by the coordinator (a run of CPU transforms only)
    if torch is not None and torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info


def run_provenance(config: RunConfig, variants: list[Variant], report: RunReport, started: float) -> dict:
    """The JSON-ready record of one run; with plugin metrics loaded, ``metric_plugins`` gives each one's
    source, version and code identity (distribution version or file SHA-256)."""
    record = {
        "evalkit": evalkit.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.time() - started, 2),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("evalkit") else None,
        "config": json.loads(config.model_dump_json()),
        "machine": machine(),
        "libraries": {name: installed_version(name) for name in LIBRARIES},
        "variants": [{"codec_spec": str(v.spec), "weights": v.weights, "bitrate_kbps": v.bitrate_kbps,
                      "skipped": v.skipped} for v in variants],
        "units": {"planned": report.units_total, "run": report.units_run, "rescored": report.units_rescored,
                  "failed": report.units_failed},
        "warmup_s": report.warmup_s,
    }
    if plugins := plugin_records(PAIR_METRICS.plugins()):
        record["metric_plugins"] = [asdict(p) for p in plugins]
    return record


def write_provenance(output: Path, record: dict) -> Path:
    path = Path(output) / PROVENANCE_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)
    return path
