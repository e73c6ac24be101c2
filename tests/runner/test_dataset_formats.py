"""Kaldi wav.scp (+ segments), Lhotse manifests, Hugging Face datasets and JSON-lines lists as datasets: each
built from the demo corpus, each run compared with a run on the equivalent folder; none downloads anything."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit import audio
from evalkit.runner.config import ConfigError, validate_config
from evalkit.runner.plan import list_items
from tests.conftest import DEMO
from tests.runner.conftest import export_values, run_raw

RATE = 16000
CODECS = [{"spec": "lowpass?cutoff_hz=3000"}]


@pytest.fixture
def corpus(tmp_path):
    """Two 0.5 s mono demo excerpts (speech, music) at 16 kHz and one 0.5 s stereo one, as float32 WAV."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, source in (("speech.wav", "speech_demo-congrats"), ("music.wav", "music_guit_em9")):
        clip = audio.load(DEMO / f"{source}.flac", channel_policy="mono")
        x = audio.resample(clip.samples[:, 44100: 44100 + 22050], 44100, RATE)
        sf.write(folder / name, x.T, RATE, subtype="FLOAT")
    mono = sf.read(folder / "music.wav", dtype="float32", always_2d=True)[0].T
    stereo = np.concatenate([mono, np.roll(mono, 80, axis=1) * 0.5])
    sf.write(tmp_path / "stereo.wav", stereo.T, RATE, subtype="FLOAT")
    return folder


def _samples(path) -> np.ndarray:
    return sf.read(str(path), dtype="float32", always_2d=True)[0].T


def _run(tmp_path, dataset: dict, name: str):
    raw = {"dataset": dataset, "codecs": CODECS, "metrics": ["si_sdr"], "output": str(tmp_path / name),
           "workers": 0}
    return run_raw(raw, tmp_path)


def _values(report, rename=lambda item_id: item_id) -> dict[str, float]:
    return {rename(item): value for item, spec, metric, value, _ in export_values(report) if spec != "reference"}


def _items(tmp_path, dataset: dict) -> list:
    config, _ = validate_config({"dataset": dataset, "codecs": CODECS, "output": str(tmp_path / "out")}, tmp_path)
    return list(list_items(config.dataset, exclude=tmp_path / "out"))


# --- Kaldi ---------------------------------------------------------------------------------------------------


def test_scp_items_text_categories_and_values_equal_a_folder_run(tmp_path, corpus):
    (tmp_path / "wav.scp").write_text("utt-s corpus/speech.wav\nutt-m corpus/music.wav\n")
    (tmp_path / "text").write_text("utt-s hello there\nutt-m\n")
    (tmp_path / "utt2category").write_text("utt-s speech\nutt-m music\n")
    items = _items(tmp_path, {"scp": "wav.scp"})
    assert [(i.item_id, i.category, i.text, i.path) for i in items] == [
        ("utt-s", "speech", "hello there", tmp_path / "corpus/speech.wav"),
        ("utt-m", "music", None, tmp_path / "corpus/music.wav")]
    scp = _values(_run(tmp_path, {"scp": "wav.scp"}, "scp"))
    folder = _values(_run(tmp_path, {"folder": "corpus"}, "folder"), {"speech.wav": "utt-s", "music.wav": "utt-m"}.get)
    assert scp == folder and len(scp) == 2 and all(np.isfinite(v) for v in scp.values())


def test_segments_cut_exactly_those_samples_and_score_as_hand_cut_files(tmp_path, corpus):
    (tmp_path / "wav.scp").write_text("rec corpus/speech.wav\n")
    (tmp_path / "segments").write_text("rec-a rec 0.1 0.35\nrec-b rec 0.2 -1\n")
    items = _items(tmp_path, {"scp": "wav.scp", "segments": "segments"})
    whole = _samples(corpus / "speech.wav")
    assert [i.item_id for i in items] == ["rec-a", "rec-b"]
    np.testing.assert_array_equal(_samples(items[0].path), whole[:, 1600:5600])
    np.testing.assert_array_equal(_samples(items[1].path), whole[:, 3200:])
    assert items[0].path.is_relative_to(tmp_path / "out" / "cache" / "items")
    hand = tmp_path / "hand"
    hand.mkdir()
    sf.write(hand / "rec-a.wav", whole[:, 1600:5600].T, RATE, subtype="FLOAT")
    sf.write(hand / "rec-b.wav", whole[:, 3200:].T, RATE, subtype="FLOAT")
    cut = _values(_run(tmp_path, {"scp": "wav.scp", "segments": "segments"}, "seg"))
    assert cut == _values(_run(tmp_path, {"folder": "hand"}, "hand-run"), lambda i: i.removesuffix(".wav"))


def test_a_segments_bounds_are_in_its_key(tmp_path, corpus):
    (tmp_path / "wav.scp").write_text("rec corpus/speech.wav\n")
    (tmp_path / "segments").write_text("rec-a rec 0.1 0.35\n")
    before = _items(tmp_path, {"scp": "wav.scp", "segments": "segments"})[0]
    (tmp_path / "segments").write_text("rec-a rec 0.1 0.36\n")
    after = _items(tmp_path, {"scp": "wav.scp", "segments": "segments"})[0]
    assert before.item_id == after.item_id and before.content_hash != after.content_hash
    assert _samples(after.path).shape[1] == round(0.36 * RATE) - round(0.1 * RATE)


# --- JSON lines ----------------------------------------------------------------------------------------------


def test_jsonl_items_with_spans_and_values_equal_a_manifest_run(tmp_path, corpus):
    rows = [{"file": "corpus/speech.wav", "category": "speech", "text": "hi"},
            {"file": "corpus/music.wav", "id": "m", "genre": "music"},
            {"file": "corpus/music.wav", "start": 0.25}]
    (tmp_path / "items.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n\n")
    items = _items(tmp_path, {"jsonl": "items.jsonl"})
    assert [(i.item_id, i.category, i.text) for i in items] == [
        ("corpus/speech.wav", "speech", "hi"), ("m", "", None), ("corpus/music.wav#0.25-end", "", None)]
    np.testing.assert_array_equal(_samples(items[2].path), _samples(corpus / "music.wav")[:, 4000:])
    (tmp_path / "manifest.csv").write_text("file,category\ncorpus/speech.wav,speech\ncorpus/music.wav,music\n")
    (tmp_path / "two.jsonl").write_text("\n".join(map(json.dumps, rows[:2])))
    jsonl = _values(_run(tmp_path, {"jsonl": "two.jsonl"}, "jsonl"), lambda i: {"m": "corpus/music.wav"}.get(i, i))
    assert jsonl == _values(_run(tmp_path, {"manifest": "manifest.csv"}, "manifest")) and len(jsonl) == 2


def test_category_column_picks_categories_in_every_format(tmp_path, corpus):
    rows = [{"file": "corpus/speech.wav", "genre": "speech"}, {"file": "corpus/music.wav", "genre": "music"}]
    (tmp_path / "items.jsonl").write_text("\n".join(map(json.dumps, rows)))
    assert [i.category for i in _items(tmp_path, {"jsonl": "items.jsonl", "category_column": "genre"})] == [
        "speech", "music"]
    (tmp_path / "wav.scp").write_text("a corpus/speech.wav\nb corpus/music.wav\n")
    (tmp_path / "utt2genre").write_text("a speech\nb music\n")
    assert [i.category for i in _items(tmp_path, {"scp": "wav.scp", "category_column": "genre"})] == [
        "speech", "music"]
    (tmp_path / "m.csv").write_text("file,genre\ncorpus/speech.wav,speech\ncorpus/music.wav,music\n")
    assert [i.category for i in _items(tmp_path, {"manifest": "m.csv", "category_column": "genre"})] == [
        "speech", "music"]


# --- Lhotse --------------------------------------------------------------------------------------------------


def test_lhotse_recording_manifest_scores_as_the_folder(tmp_path, corpus):
    lhotse = pytest.importorskip("lhotse")
    recordings = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(corpus / name, recording_id=name[:-4]) for name in ("speech.wav", "music.wav"))
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    items = _items(tmp_path, {"lhotse": "recordings.jsonl.gz"})
    assert [i.item_id for i in items] == ["speech", "music"]
    np.testing.assert_array_equal(_samples(items[0].path), _samples(corpus / "speech.wav"))
    values = _values(_run(tmp_path, {"lhotse": "recordings.jsonl.gz"}, "lhotse"))
    assert values == _values(_run(tmp_path, {"folder": "corpus"}, "folder"), lambda i: i.removesuffix(".wav"))


def test_lhotse_cuts_mono_and_multichannel_read_through_lhotse(tmp_path, corpus):
    lhotse = pytest.importorskip("lhotse")
    recording = lhotse.Recording.from_file(tmp_path / "stereo.wav", recording_id="st")
    both = recording.to_cut().truncate(offset=0.125, duration=0.25).with_id("both")
    sup = lhotse.SupervisionSegment(id="s1", recording_id="st", start=0.0, duration=0.1, channel=1, text="la la",
                                    custom={"genre": "music"})
    right = lhotse.MonoCut(id="right", start=0.05, duration=0.1, channel=1, recording=recording,
                           supervisions=[sup], custom={"category": "music"})
    lhotse.CutSet.from_cuts([both, right]).to_file(tmp_path / "cuts.jsonl.gz")
    items = _items(tmp_path, {"lhotse": "cuts.jsonl.gz"})
    stereo = _samples(tmp_path / "stereo.wav")
    assert [(i.item_id, i.channels, i.category, i.text) for i in items] == [
        ("both", 2, "", None), ("right", 1, "music", "la la")]
    np.testing.assert_array_equal(_samples(items[0].path), stereo[:, 2000:6000])
    np.testing.assert_array_equal(_samples(items[1].path), stereo[1:, 800:2400])
    np.testing.assert_array_equal(_samples(items[1].path), right.load_audio())
    with pytest.raises(ValueError, match=r"dataset.category_column: .*cuts.jsonl.gz entry 1 \(both\): no custom "
                                         r"field 'genre'"):
        _items(tmp_path, {"lhotse": "cuts.jsonl.gz", "category_column": "genre"})


# --- Hugging Face --------------------------------------------------------------------------------------------


def _hf_dataset(tmp_path, corpus):
    datasets = pytest.importorskip("datasets")
    table = {"audio": [str(corpus / "speech.wav"), str(corpus / "music.wav")], "text": ["hello", ""],
             "genre": ["speech", "music"], "id": ["s", "m"]}
    ds = datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio())
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_hf_saved_dataset_reads_bytes_and_scores_as_the_folder(tmp_path, corpus):
    _hf_dataset(tmp_path, corpus)
    dataset = {"hf": "hf", "split": "test", "audio_column": "audio", "category_column": "genre"}
    items = _items(tmp_path, dataset)
    assert [(i.item_id, i.category, i.text) for i in items] == [("s", "speech", "hello"), ("m", "music", None)]
    assert items[0].path.read_bytes() == (corpus / "speech.wav").read_bytes()  # the embedded file, as it was
    values = _values(_run(tmp_path, dataset, "hf-run"))
    assert values == _values(_run(tmp_path, {"folder": "corpus"}, "folder"), {"speech.wav": "s", "music.wav": "m"}.get)


# --- errors --------------------------------------------------------------------------------------------------


def _problem(tmp_path, dataset: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config({"dataset": dataset, "codecs": CODECS, "output": str(tmp_path / "out")}, tmp_path)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


@pytest.mark.parametrize(("files", "dataset", "expected"), [
    ({"wav.scp": "a sox corpus/speech.wav -t wav - |\n"}, {"scp": "wav.scp"},
     r"dataset.scp: .*wav.scp line 1: a is a piped command .*never runs commands"),
    ({"wav.scp": "a corpus/speech.wav\nb corpus/gone.wav\n"}, {"scp": "wav.scp"},
     r"dataset.scp: .*wav.scp line 2: .*gone.wav not found"),
    ({"wav.scp": "justone\n"}, {"scp": "wav.scp"}, r"wav.scp line 1: expected 'utt-id path'"),
    ({"wav.scp": "a corpus/speech.wav\n", "segments": "s a 0.1\n"}, {"scp": "wav.scp", "segments": "segments"},
     r"dataset.segments: .*segments line 1: expected 'segment-id utt-id start end'"),
    ({"wav.scp": "a corpus/speech.wav\n", "segments": "s z 0.1 0.2\n"}, {"scp": "wav.scp", "segments": "segments"},
     r"segments line 1: recording 'z' is not in wav.scp"),
    ({"wav.scp": "a corpus/speech.wav\n", "segments": "s a 0.3 0.2\n"}, {"scp": "wav.scp", "segments": "segments"},
     r"segments line 1: end 0.2 s is not after start 0.3 s"),
    ({"wav.scp": "a corpus/speech.wav\n"}, {"scp": "wav.scp", "category_column": "genre"},
     r"dataset.category_column: .*utt2genre not found"),
    ({"items.jsonl": '{"file": "corpus/speech.wav"}\n{"file": \n'}, {"jsonl": "items.jsonl"},
     r"dataset.jsonl: .*items.jsonl line 2: not a JSON object"),
    ({"items.jsonl": '{"id": "x"}\n'}, {"jsonl": "items.jsonl"}, r"items.jsonl line 1: no 'file' field"),
    ({"items.jsonl": '{"file": "corpus/speech.wav", "start": "0"}\n'}, {"jsonl": "items.jsonl"},
     r"items.jsonl line 1: field 'start' must be a number"),
    ({"items.jsonl": '{"file": "corpus/speech.wav"}\n'}, {"jsonl": "items.jsonl", "category_column": "genre"},
     r"dataset.category_column: .*items.jsonl line 1: no field 'genre'"),
    ({"items.jsonl": "\n"}, {"jsonl": "items.jsonl"}, r"dataset.jsonl: .*items.jsonl lists no item"),
    ({"items.jsonl": '{"file": "corpus/speech.wav"}\n{"file": "corpus/speech.wav"}\n'}, {"jsonl": "items.jsonl"},
     r"items.jsonl line 2: item id 'corpus/speech.wav' already used at .*line 1"),
    ({}, {"jsonl": "nowhere.jsonl"}, r"dataset.jsonl: .*nowhere.jsonl not found"),
    ({"m.csv": "file,category\ncorpus/speech.wav,speech\n"}, {"manifest": "m.csv", "category_column": "genre"},
     r"dataset.category_column: m.csv has no 'genre' column"),
])
def test_bad_lists_give_one_line_naming_file_and_line(tmp_path, corpus, files, dataset, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert re.search(expected, _problem(tmp_path, dataset))


def test_a_cut_past_the_recording_is_refused_naming_the_line(tmp_path, corpus):
    (tmp_path / "wav.scp").write_text("a corpus/speech.wav\n")
    (tmp_path / "segments").write_text("s a 0.1 0.2\nt a 0.4 0.9\n")
    with pytest.raises(ValueError, match=r"dataset.segments: .*segments line 2: the cut \[0.4, 0.9\] s lies "
                                         r"outside .*speech.wav \(0.5 s\)"):
        _items(tmp_path, {"scp": "wav.scp", "segments": "segments"})


def test_config_takes_exactly_one_source_and_companions_with_their_source(tmp_path, corpus):
    assert "give exactly one of 'folder'" in _problem(tmp_path, {"folder": "corpus", "jsonl": "x.jsonl"})
    assert "'segments' goes with 'scp'" in _problem(tmp_path, {"folder": "corpus", "segments": "segments"})
    assert "'split' goes with 'hf'" in _problem(tmp_path, {"jsonl": "x.jsonl", "split": "test"})


def test_lhotse_supervisions_alone_and_command_sources_are_refused(tmp_path, corpus):
    lhotse = pytest.importorskip("lhotse")
    lhotse.SupervisionSet.from_segments([lhotse.SupervisionSegment(id="s", recording_id="r", start=0,
                                                                   duration=1)]).to_file(tmp_path / "sups.jsonl")
    assert "is a SupervisionSet, not a recording or cut manifest" in _problem(tmp_path, {"lhotse": "sups.jsonl"})
    piped = lhotse.Recording(id="r", sources=[lhotse.AudioSource(type="command", channels=[0],
                                                                 source="touch /tmp/evalkit-ran")],
                             sampling_rate=RATE, num_samples=RATE, duration=1.0)
    lhotse.RecordingSet.from_recordings([piped]).to_file(tmp_path / "piped.jsonl")
    assert "source of type 'command' refused" in _problem(tmp_path, {"lhotse": "piped.jsonl"})
    assert not Path("/tmp/evalkit-ran").exists()


def test_hf_unknown_column_split_and_uncached_name(tmp_path, corpus):
    _hf_dataset(tmp_path, corpus)
    assert "dataset.audio_column: hf [test] has no column 'audi'" in _problem(
        tmp_path, {"hf": "hf", "split": "test", "audio_column": "audi"}).replace(str(tmp_path / "hf"), "hf")
    assert "did you mean 'audio'?" in _problem(tmp_path, {"hf": "hf", "split": "test", "audio_column": "audi"})
    assert "give dataset.split (splits: test)" in _problem(tmp_path, {"hf": "hf"})
    assert "no split 'train' (splits: test)" in _problem(tmp_path, {"hf": "hf", "split": "train"})
    line = _problem(tmp_path, {"hf": "nobody/not-cached-anywhere", "split": "test"})
    assert line.startswith("dataset.hf: nobody/not-cached-anywhere cannot be read as a name in the local Hugging "
                           "Face cache (evalkit never downloads)") and "\n" not in line


@pytest.mark.parametrize(("module", "dataset", "extra"), [("lhotse", {"lhotse": "c.jsonl"}, "lhotse"),
                                                          ("datasets", {"hf": "hf", "split": "test"}, "hf")])
def test_a_missing_extra_names_what_to_install(tmp_path, corpus, monkeypatch, module, dataset, extra):
    (tmp_path / "c.jsonl").write_text("{}\n")
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    assert f"pip install 'codec-evalkit[{extra}]'" in _problem(tmp_path, dataset)


def test_cli_refuses_a_piped_scp_line_with_one_line_and_exit_2(tmp_path, corpus, capsys):
    from evalkit.cli import main

    (tmp_path / "wav.scp").write_text("a corpus/speech.wav\nb cat corpus/music.wav |\n")
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"dataset": {"scp": "wav.scp"}, "codecs": CODECS, "metrics": ["si_sdr"],
                                  "output": "out", "workers": 0}))
    assert main(["run", str(config)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"evalkit: error: {config}: dataset.scp: {tmp_path / 'wav.scp'} line 2: b is a piped command ('... |'); "
        f"evalkit never runs commands from a data file: write the audio to files and list their paths")
    assert not (tmp_path / "out").exists()
