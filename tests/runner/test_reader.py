"""The run reader: variant records stored once at plan time and read back (also with the plugin gone), units of
the exports' plan, the one resolution of decoded audio, and a store written the old way (no records)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit.codecs.records import VariantRole, describe
from evalkit.runner.reader import RunReader, decoded_audio_path
from tests.plugin_fixtures import write_plugin_file

RATE = 24000
SPECS = ["opus?bitrate_kbps=12", "lowpass?cutoff_hz=3500", "toy-reader?bits=6"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from evalkit.codecs import FAMILIES
    from evalkit.runner import load_config, run_evaluation

    root = tmp_path_factory.mktemp("reader")
    data = root / "data"
    data.mkdir()
    t = np.arange(RATE // 2) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(data / "a.wav", np.stack([tone, 0.5 * tone], axis=1).astype(np.float32), RATE)
    plugin = write_plugin_file(root / "plugins", family="toy-reader")
    codecs = "\n".join(f'  - spec: "{s}"' for s in SPECS)
    (root / "run.yaml").write_text(f'dataset: {{folder: data, glob: "*.wav"}}\ncodecs:\n{codecs}\n'
                                   f"plugins: [{plugin}]\nmetrics: [si_sdr]\noutput: run\nworkers: 0\n")
    try:
        run_evaluation(*load_config(root / "run.yaml"), progress=False)
    finally:
        FAMILIES.unregister("toy-reader")  # from here on, reading the run must not need the plugin
    return root / "run"


def _stored(run_dir: Path) -> dict[str, dict]:
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return {spec: json.loads(text) for spec, text in db.execute("SELECT codec_spec, record FROM variant_records")}


def test_one_record_per_variant_is_stored_at_plan_time(run_dir):
    stored = _stored(run_dir)
    reader = RunReader(run_dir)
    specs = {u["codec_spec"] for u in reader.plan_units()}
    assert set(stored) == specs | {"reference"}  # every variant of the plan, and the reference pseudo-variant
    opus = next(s for s in stored if s.startswith("opus?"))
    assert stored[opus] == json.loads(describe(opus, "per_channel").to_json())
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_records_are_read_back_without_running_plugin_code(run_dir):
    from evalkit.codecs import FAMILIES
    from evalkit.reports.rundata import load_run

    assert "toy-reader" not in FAMILIES  # unregistered after the run: only the store knows its label
    records = RunReader(run_dir).records()
    toy = next(r for s, r in records.items() if s.startswith("toy-reader"))
    assert (toy.label, toy.role, toy.nominal_kbps) == ("Toy file 48 kbps", VariantRole.CODEC, 48.0)
    assert toy.source.startswith("file ") and toy.source.endswith("my_codec.py")
    labels = load_run(run_dir).labels()
    assert labels[toy.codec_spec] == "Toy file 48 kbps/ch"  # a mono codec on a stereo item
    assert {labels[s] for s in labels if s.startswith("lowpass")} == {"3.5 kHz anchor"}


def test_reader_finds_units_and_decoded_audio(run_dir):
    reader = RunReader(run_dir)
    assert reader.finished and reader.provenance()["config"]["plugins"]
    units = [u for u in reader.plan_units() if u["status"] == "ok" and u["codec_spec"] != "reference"]
    assert len(units) == len(SPECS)
    for unit in units:
        path = reader.decoded_path(unit)
        assert path == run_dir / unit["decoded_path"] and sf.info(str(path)).frames == RATE // 2
        assert reader.item_path(unit).is_file()
    moved = dict(units[0], decoded_path=f"/gone/elsewhere/cache/decoded/{units[0]['unit_key']}.wav")
    assert decoded_audio_path(moved, run_dir) == run_dir / "cache" / "decoded" / f"{units[0]['unit_key']}.wav"
    assert decoded_audio_path(dict(units[0], decoded_path=None, unit_key="0" * 32), run_dir) is None


def _old_store(run_dir: Path, target: Path) -> None:
    """``target`` as a store of a version before variant records: same units, no ``variant_records``, no
    schema version."""
    shutil.copytree(run_dir, target)
    for side in ("-wal", "-shm"):
        (target / f"results.sqlite{side}").unlink(missing_ok=True)
    with sqlite3.connect(target / "results.sqlite") as db:
        db.execute("DROP TABLE variant_records")
        db.execute("PRAGMA user_version = 0")


def test_an_old_store_reads_with_records_computed_on_open(run_dir, tmp_path):
    from evalkit.reports.rundata import load_run
    from evalkit.runner.store import Store

    old = tmp_path / "old"
    _old_store(run_dir, old)
    reader = RunReader(old)
    assert reader.stored_records() == {}
    opus = next(u["codec_spec"] for u in reader.plan_units() if u["codec_spec"].startswith("opus"))
    record = reader.record(opus)  # computed from the spec on open (the store is only read)
    assert record == describe(opus, "per_channel") and record.label == "Opus 12 kbps"
    new, old_data = load_run(run_dir), load_run(old)
    assert old_data.labels() == new.labels()  # the plugin file is imported again to label its variants
    with sqlite3.connect(old / "results.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    Store(old / "results.sqlite").close()  # opening it to write (a next run) migrates it
    with sqlite3.connect(old / "results.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM variant_records").fetchone()[0] == 0
