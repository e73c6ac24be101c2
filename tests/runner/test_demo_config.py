"""configs/demo.yaml shows the KLT family offline: KLT variants of the shipped QinCodec's RVQ run and are labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from evalkit.cli import main
from evalkit.runner import load_config

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def _klt_specs() -> list:
    _, specs = load_config(DEMO_CONFIG)
    return [s for s in specs if s.family == "klt"]


def test_demo_has_klt_variants_of_the_shipped_qincodec_rvq_below_its_latent_dimension():
    specs = _klt_specs()
    assert len(specs) >= 2
    assert {s.params["base"] for s in specs} == {"qincodec-rvq"}
    assert {s.params["checkpoint"] for s in specs} == {"shipped"}  # no download, no training
    assert all(0 < s.params["dim"] < 64 for s in specs)  # truncations of the shipped model's 64-dim latent
    assert len({s.params["dim"] for s in specs}) >= 2


def test_demo_klt_variants_run_offline_and_are_labelled_klt_in_the_report(tmp_path, rng, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.flac", (0.1 * rng.standard_normal(12000)).astype(np.float32), 24000)
    grids = "\n".join(f"  - {{family: klt, params: {{base: qincodec-rvq, bitrate_kbps: {s.params['bitrate_kbps']:g}, "
                      f"dim: {s.params['dim']}}}}}" for s in _klt_specs())
    config = tmp_path / "run.yaml"
    config.write_text(f"dataset: {{folder: data}}\ncodecs:\n{grids}\nmetrics: [si_sdr]\noutput: out\nworkers: 0\n")
    assert main(["run", str(config), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "skipped klt" not in out and f"{len(_klt_specs())} run, 0 rescored, 0 failed" in out
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "out"), "-o", str(report)]) == 0
    html = report.read_text()
    for spec in _klt_specs():
        assert f"KLT d={spec.params['dim']}" in html
