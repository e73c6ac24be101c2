"""Trust on the user's own data (issue 26, points 5 and 11): manifests as spreadsheets write them, misspelled
fields, every problem in one pass, every audio file of a folder, codec limits checked against the items, and a
worker count the machine can hold."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit.cli import main
from evalkit.runner import ConfigError, load_config, validate_config
from evalkit.runner.plan import list_items
from tests.runner.conftest import make_config, run_raw


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def _problems(raw, base_dir):
    with pytest.raises(ConfigError) as info:
        validate_config(raw, base_dir)
    return info.value.problems


def _noise(seconds=0.3, rate=16000, channels=1, seed=0):
    x = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * rate), channels))
    return x.astype(np.float32)


# --- manifests: an empty `file`, a byte-order mark ------------------------------------------------------------

def test_manifest_rows_with_an_empty_file_are_one_config_line_naming_manifest_and_rows(dataset, tmp_path, capsys):
    manifest = dataset / "items.csv"  # row 3: an empty cell; row 5: blanks; row 6: a short row with its file
    manifest.write_text("file,category\nitem0.wav,speech\n,music\nitem1.wav,x\n   ,other\nitem2.wav\n",
                        encoding="utf-8")
    raw = make_config(dataset, tmp_path / "out")
    raw["dataset"] = {"manifest": str(manifest)}
    config = _write(tmp_path / "run.yaml", raw)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"evalkit: error: {config}: dataset.manifest: {manifest}: rows 3, 5: empty 'file' "
                           f"(the header is row 1)")
    manifest.write_text("file,text\nitem0.wav,hello\nitem1.wav\n\n,\n", encoding="utf-8")  # row 4 is blank: skipped
    assert _problems(raw, tmp_path) == [f"dataset.manifest: {manifest}: row 5: empty 'file' (the header is row 1)"]
    assert not (tmp_path / "out").exists()


def test_a_manifest_with_a_utf8_byte_order_mark_reads_like_one_without(dataset, tmp_path):
    text = "file,category,text\nitem0.wav,speech,hello there\nitem1.wav,music,\n"
    items = {}
    for name, encoding in (("plain.csv", "utf-8"), ("excel.csv", "utf-8-sig")):  # utf-8-sig writes the BOM
        (dataset / name).write_text(text, encoding=encoding)
        raw = make_config(dataset, tmp_path / "out")
        raw["dataset"] = {"manifest": str(dataset / name)}
        config, _ = validate_config(raw, tmp_path)
        items[name] = [(i.item_id, i.category, i.text, i.content_hash) for i in list_items(config.dataset)]
    assert (dataset / "excel.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert items["excel.csv"] == items["plain.csv"]
    assert items["plain.csv"][0][:3] == ("item0.wav", "speech", "hello there")
    config_path = tmp_path / "bom.yaml"  # PyYAML already skips a BOM in a config: kept so
    config_path.write_text(yaml.safe_dump({**raw, "dataset": {"manifest": "data/excel.csv"}}), encoding="utf-8-sig")
    config, _ = load_config(config_path)
    assert [(i.item_id, i.category, i.text, i.content_hash) for i in list_items(config.dataset)] == items["plain.csv"]


def test_a_folder_manifest_with_a_byte_order_mark_still_describes_its_files(dataset, tmp_path):
    (dataset / "MANIFEST.csv").write_text("file,category\nitem0.wav,speech\n", encoding="utf-8-sig")
    config, _ = validate_config(make_config(dataset, tmp_path / "out"), tmp_path)
    assert {i.item_id: i.category for i in list_items(config.dataset)}["item0.wav"] == "speech"


# --- one pass, and "did you mean" -----------------------------------------------------------------------------

def test_schema_problems_and_every_other_problem_come_out_together(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"},
                                                         {"spec": "nocodec"}, {"family": "lowpass", "bogus": 1},
                                                         {"family": "dac-44khz", "params": {"n_codebooks": [99]}}],
                      metrics=["si_sdr", "nope"])
    raw.update(workers=-1, device="tpu", plugins=["missing_plugin.py"])
    raw["dataset"]["folder"] = str(tmp_path / "nowhere")
    problems = _problems(raw, tmp_path)
    expected = ["workers: Input should be greater than or equal to 0",  # the schema's
                "codecs.2.bogus: unknown field",
                f"plugins.0: {tmp_path / 'missing_plugin.py'}: plugin file not found",  # and beyond it
                "codecs.1: unknown codec family 'nocodec'",
                "codecs.3: dac-44khz: n_codebooks=99 is above the maximum 9",
                "device: unknown device 'tpu'",
                "metrics.1: unknown metric 'nope'",
                f"dataset.folder: {tmp_path / 'nowhere'} is not a folder"]
    assert len(problems) == len(expected), problems
    for line in expected:
        assert sum(p.startswith(line) for p in problems) == 1, (line, problems)


def test_a_field_the_schema_rejects_leaves_the_others_checked(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out", metrics="all of them")  # neither a list nor "applicable"
    raw["dataset"]["glob"] = "*.mp3"
    problems = _problems(raw, tmp_path)
    assert any(p.startswith("metrics") for p in problems)
    assert f"dataset.glob: '*.mp3' matches no file in {dataset}" in problems


@pytest.mark.parametrize("mutate,expected", [
    (lambda r: r.update(datset=r.pop("dataset")), "datset: unknown field; did you mean 'dataset'?"),
    (lambda r: r.update(metircs=r.pop("metrics")), "metircs: unknown field; did you mean 'metrics'?"),
    (lambda r: r.update(exclude_metric=["wer"]), "exclude_metric: unknown field; did you mean 'exclude_metrics'?"),
    (lambda r: r["dataset"].update(glb=r["dataset"].pop("glob")), "dataset.glb: unknown field; did you mean 'glob'?"),
    (lambda r: r.update(codecs=[{"family": "opus", "parms": {"bitrate_kbps": [6]}}]),
     "codecs.0.parms: unknown field; did you mean 'params'?"),
    (lambda r: r.update(codecs=[{"decoded": {"folder": ".", "lable": "x"}}]),
     "codecs.0.decoded.lable: unknown field; did you mean 'label'?"),
    (lambda r: r.update(codecs=[{"spec": "opus?bitrate_kpbs=24"}]),
     "codecs.0: opus: unknown parameter 'bitrate_kpbs'; valid: application, bitrate_kbps; did you mean "
     "'bitrate_kbps'?"),
    (lambda r: r.update(codecs=[{"family": "opus", "params": {"bitrate_kpbs": [6, 12]}}]),
     "codecs.0: opus: unknown parameter 'bitrate_kpbs'; valid: application, bitrate_kbps; did you mean "
     "'bitrate_kbps'?"),
    (lambda r: r.update(codecs=[{"spec": "opsu"}]), "codecs.0: unknown codec family 'opsu'; known: "),
    (lambda r: r.update(metrics=["si-sdr"]), "metrics.0: unknown metric 'si-sdr'; valid: "),
])
def test_misspelled_names_get_did_you_mean(dataset, tmp_path, mutate, expected):
    raw = make_config(dataset, tmp_path / "out")
    mutate(raw)
    problems = _problems(raw, tmp_path)
    hits = [p for p in problems if p.startswith(expected)]
    assert len(hits) == 1 and hits[0].endswith("?") and "did you mean" in hits[0], problems


def test_a_misspelled_required_field_is_one_problem_not_two(dataset, tmp_path):
    raw = make_config(dataset, tmp_path / "out")
    raw["datset"] = raw.pop("dataset")
    raw["colour"] = "red"  # nothing near it: no suggestion
    expected = ["colour: unknown field", "datset: unknown field; did you mean 'dataset'?"]  # no "dataset: required"
    assert sorted(_problems(raw, tmp_path)) == expected


# --- point 11: every audio file of a folder by default ---------------------------------------------------------

def _mixed_folder(root):
    """Audio in five formats (one upper-case extension), a corrupt WAV, non-audio files and a subfolder."""
    import av

    folder = root / "mixed"
    (folder / "sub").mkdir(parents=True)
    x = _noise()
    sf.write(folder / "a.wav", x, 16000)
    sf.write(folder / "b.mp3", x, 16000)
    sf.write(folder / "C.FLAC", x, 16000)
    sf.write(folder / "d.ogg", x, 16000)
    with av.open(str(folder / "e.m4a"), "w", format="ipod") as out:  # AAC in MP4: decoded through PyAV
        stream = out.add_stream("aac", rate=16000)
        stream.codec_context.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    (folder / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    sf.write(folder / "sub" / "nested.wav", x, 16000)  # not taken: the default does not enter subfolders
    (folder / "notes.txt").write_text("recorded on tuesday")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "MANIFEST.csv").write_text("file,category\na.wav,speech\n")  # descriptions: not an item, not skipped
    return folder


def test_default_dataset_takes_every_audio_file_and_names_the_others_in_one_line(tmp_path, caplog):
    folder = _mixed_folder(tmp_path)
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"])
    del raw["dataset"]["glob"]
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        report = run_raw(raw, tmp_path)
    notes = [r.getMessage() for r in caplog.records if "non-audio" in r.getMessage()]
    assert notes == [f"skipped 2 non-audio files in {folder}: .DS_Store, notes.txt"]
    import pandas as pd

    units = pd.read_parquet(report.exports["results_parquet"]).set_index("item_id")
    assert sorted(units.index) == ["C.FLAC", "a.wav", "b.mp3", "corrupt.wav", "d.ogg", "e.m4a"]
    assert "corrupt.wav: cannot decode audio (" in units.loc["corrupt.wav", "reason"]  # failed, as before
    for item in ("C.FLAC", "a.wav", "b.mp3", "d.ogg", "e.m4a"):  # decoded and scored
        assert np.isfinite(units.loc[item, "value"]), item
    assert units.loc["a.wav", "category"] == "speech"
    raw["dataset"]["glob"] = "**/*.wav"  # a glob, when given, is taken as it is
    config, _ = validate_config(raw, tmp_path)
    assert [i.item_id for i in list_items(config.dataset)] == ["a.wav", "corrupt.wav", "sub/nested.wav"]


def test_a_long_list_of_skipped_files_is_cut_short(tmp_path, caplog):
    folder = tmp_path / "many"
    folder.mkdir()
    sf.write(folder / "a.wav", _noise(), 16000)
    for k in range(11):
        (folder / f"note{k:02d}.txt").write_text("x")
    raw = make_config(folder, tmp_path / "out")
    del raw["dataset"]["glob"]
    config, _ = validate_config(raw, tmp_path)
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        assert [i.item_id for i in list_items(config.dataset)] == ["a.wav"]
    names = ", ".join(f"note{k:02d}.txt" for k in range(8))
    assert [r.getMessage() for r in caplog.records] == [f"skipped 11 non-audio files in {folder}: {names} and 3 more"]


def test_a_folder_without_audio_is_a_config_error_naming_it(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.txt").write_text("x")
    sf.write(folder / "sub" / "deeper.wav", _noise(), 16000)
    raw = make_config(folder, tmp_path / "out")
    del raw["dataset"]["glob"]
    problems = _problems(raw, tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"dataset.folder: {folder} holds no audio file (.wav .flac")
    assert "give dataset.glob for others or for subfolders" in problems[0]


def test_a_corrupt_m4a_is_a_failed_item(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    sf.write(folder / "good.wav", _noise(), 16000)
    (folder / "broken.m4a").write_bytes(b"\0\0\0\x18ftypM4A not really")
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"])
    del raw["dataset"]["glob"]
    import pandas as pd

    rows = pd.read_parquet(run_raw(raw, tmp_path).exports["results_parquet"]).set_index("item_id")
    assert "cannot decode audio (FFmpeg" in rows.loc["broken.m4a", "reason"]
    assert np.isfinite(rows.loc["good.wav", "value"])


# --- codec parameters against the items, before any unit runs ---------------------------------------------------

def test_opus_bitrate_above_the_libopus_limit_for_mono_items_is_rejected_before_any_unit(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(folder / "mono.wav", _noise(), 16000)
    sf.write(folder / "stereo.wav", _noise(channels=2), 16000)
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "opus?bitrate_kbps=400"},
                                                        {"spec": "aac?bitrate_kbps=160"}], metrics=["si_sdr"])
    assert main(["run", str(_write(tmp_path / "run.yaml", raw))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evalkit: error: codecs: 2 problems:",
                   "  - opus?application=audio&bitrate_kbps=400: bitrate_kbps=400 is above the maximum of the "
                   "libopus encoder for mono: 256 kbps (256 kbps per channel; FFmpeg refuses more), for 1 item(s), "
                   "e.g. mono.wav",
                   "  - aac?bitrate_kbps=160: bitrate_kbps=160 is above the maximum of the aac encoder for mono: 96 "
                   "kbps (6144 bits per channel per 1024-sample frame at 16000 Hz; FFmpeg would lower the bitrate "
                   "without an error), for 1 item(s), e.g. mono.wav"]
    assert not (tmp_path / "out" / "results.sqlite").exists()
    (folder / "mono.wav").unlink()  # stereo alone: 200 kbps per channel for Opus, 80 for AAC (limit 96)
    for policy in ("per_channel", "mono"):  # the reference codecs code a stereo item as it is under either
        raw.update(channel_policy=policy, output=str(tmp_path / policy))
        assert main(["run", str(_write(tmp_path / "run.yaml", raw))]) == 0
        assert "failed" not in capsys.readouterr().err


# --- workers ---------------------------------------------------------------------------------------------------

@pytest.mark.slow  # starts a process pool
def test_workers_above_the_cores_are_capped_with_one_note(small_dataset, tmp_path, monkeypatch, caplog):
    import evalkit.runner.run as run_module

    monkeypatch.setattr(run_module, "available_cores", lambda: 1)
    started = []
    real_pool = run_module.local_pool

    def recording_pool(workers, *args, **kwargs):
        started.append(workers)
        return real_pool(workers, *args, **kwargs)

    monkeypatch.setattr(run_module, "local_pool", recording_pool)
    raw = make_config(small_dataset, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                      metrics=["si_sdr"], workers=6)
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        report = run_raw(raw, tmp_path)
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("workers:")]
    assert notes == ["workers: 6 requested, but this process may use 1 CPU core(s); running 1"]
    assert started == [1]  # in-process: no pool of six
    assert json.loads((tmp_path / "out" / "run.json").read_text())["config"]["workers"] == 1
    assert report.units_run == 3


def test_an_item_ffmpeg_decodes_is_keyed_with_pyavs_version(tmp_path, monkeypatch):
    from evalkit.runner import plan

    real = plan._version
    items = [plan.Item(name, tmp_path / name, "same bytes") for name in ("a.m4a", "a.wav")]

    def keys():
        return [plan.unit_key(item, plan.REFERENCE, {}) for item in items]

    before = keys()
    monkeypatch.setattr(plan, "_version", lambda dist: "99.0" if dist == "av" else real(dist))
    after = keys()
    assert before[0] != after[0] and before[1] == after[1]  # FFmpeg's decoder makes the m4a item's samples
