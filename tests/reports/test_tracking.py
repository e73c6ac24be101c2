"""``evalkit run CONFIG --log tensorboard|wandb``: TensorBoard for real (its event files read back with
tensorboard's EventAccumulator equal the summary's means), W&B for real in offline mode (the run file's
records and media read back), and one clear line when a tracker's package is missing."""

from __future__ import annotations

import json
import struct
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from evalkit.cli import main
from evalkit.reports.rundata import load_run
from evalkit.reports.tracking import log_run
from evalkit.runner import load_config

SPECS = ["lowpass?cutoff_hz=3500", "opus?bitrate_kbps=6", "opus?bitrate_kbps=12"]


def _config(root, log: str = "") -> str:
    data = root / "data"
    data.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for k in range(2):
        sf.write(data / f"tone{k}.wav", 0.3 * np.sin(2 * np.pi * (300 + 200 * k) * t)
                 + 0.01 * rng.standard_normal(t.size), 16000, subtype="FLOAT")
    grid = "\n".join(f'  - spec: "{s}"' for s in SPECS)
    path = root / "run.yaml"
    path.write_text(f'dataset: {{folder: data, glob: "*.wav"}}\ncodecs:\n{grid}\nmetrics: [si_sdr]\n'
                    f"output: run\nworkers: 0\n{log}")
    return str(path)


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    assert main(["run", _config(root), "--log", "tensorboard"]) == 0
    return root / "run"


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}, acc


def test_tensorboard_scalars_equal_the_summary_means(tb_run):
    summary = pd.read_csv(tb_run / "summary.csv")
    labels = load_run(tb_run).labels()
    scalars, acc = _scalars(tb_run / "tensorboard")
    expected = {f"summary/si_sdr/{labels[r.codec_spec]}": r.mean for r in summary.itertuples()}
    assert set(expected) <= set(scalars)
    for tag, mean in expected.items():
        ((step, value),) = scalars[tag]
        assert value == pytest.approx(mean, rel=1e-6)  # float32 in the event file
    rq = pd.read_csv(tb_run / "rate_quality.csv")
    curve = sorted(scalars["rate_quality/si_sdr/opus"])
    assert [s for s, _ in curve] == sorted(round(k * 1000) for k in rq["bitrate_kbps"])  # step: bit/s
    assert [v for _, v in curve] == pytest.approx(list(rq.sort_values("bitrate_kbps")["mean"]), rel=1e-6)
    assert acc.Tags()["images"] == ["rate_quality/si_sdr"]
    image = acc.Images("rate_quality/si_sdr")[0]
    assert image.width > 300 and image.height > 200
    text = acc.Tensors("summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| Codec variant | kbps | SI-SDR (dB) ↑ |" in text


def test_config_log_field_is_validated(tmp_path):
    config, _ = load_config(_config(tmp_path, "log: [tensorboard]\n"))
    assert config.log == ["tensorboard"]
    from evalkit.runner import ConfigError

    with pytest.raises(ConfigError, match="log"):
        load_config(_config(tmp_path, "log: [mlflow]\n"))


def _wandb_records(path):
    """The records of an offline W&B run file (``run-ID.wandb``): a 7-byte ``:W&B`` header, then LevelDB-log
    framing (32 KiB blocks of chunks: CRC32C, little-endian length, type FULL=1 FIRST=2 MIDDLE=3 LAST=4), each
    record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # block trailer or zero padding
            pos += left
            continue
        if pos + 7 + length > len(data):  # a chunk still being written
            return
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_summary_table_and_figures(tb_run, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    (line,) = log_run(tb_run, ["wandb"])
    (run_dir,) = (tb_run / "wandb").glob("offline-run-*")
    assert line == f"wandb: {run_dir.resolve()} (offline; upload with: wandb sync {run_dir.resolve()})"
    # wandb-core writes the file from its own process and may still be flushing when finish() returns (the
    # command's process exit waits for it): read until the exit record is there
    deadline = time.monotonic() + 60
    while True:
        records = list(_wandb_records(next(run_dir.glob("run-*.wandb"))))
        kinds = [r.WhichOneof("record_type") for r in records]
        if "exit" in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "exit" in kinds  # finished
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "run" and run.project == "evalkit"
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["metrics"] == ["si_sdr"]
    summary = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for u in r.summary.update if u.key.startswith("summary/")}
    frame = pd.read_csv(tb_run / "summary.csv")
    labels = load_run(tb_run).labels()
    assert summary == pytest.approx({f"summary/si_sdr/{labels[r.codec_spec]}": r.mean for r in frame.itertuples()})
    (table_file,) = (run_dir / "files" / "media" / "table").glob("summary_table_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["variant", "kbps", "si_sdr mean", "si_sdr ci_low", "si_sdr ci_high", "si_sdr n"]
    means = {row[0]: row[2] for row in table["data"]}  # the scoreboard's: over the items every variant scored
    assert means == pytest.approx({labels[r.codec_spec]: r.mean_shared for r in frame.itertuples()})
    (image_file,) = (run_dir / "files" / "media" / "images").glob("rate_quality/si_sdr_*.png")
    image = plt.imread(image_file)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300


def test_missing_wandb_is_one_line_before_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    assert main(["run", _config(tmp_path), "--log", "wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("evalkit: error: --log wandb: the `wandb` package is not installed; install the `wandb` extra: "
                   "pip install 'codec-evalkit[wandb]'")
    assert not (tmp_path / "run").exists()  # nothing ran
