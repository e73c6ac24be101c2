"""Listing a dataset: each item's header (rate, channels, duration) and content hash, several files at once."""

import io

import numpy as np
import pytest
import soundfile as sf

from evalkit.hashing import file_sha256
from evalkit.runner import plan
from evalkit.runner.config import DatasetConfig


def _files(folder, rng):
    """A mixed folder: WAV files evalkit parses itself and others it leaves to libsndfile; one over 1 MiB."""
    folder.mkdir()
    cases = [("FLOAT", "WAV", 1, 16_000, 0.25), ("PCM_16", "WAV", 2, 44_100, 0.5), ("PCM_24", "WAV", 1, 8000, 0.3),
             ("FLOAT", "WAVEX", 2, 48_000, 0.2), ("PCM_16", "FLAC", 1, 16_000, 0.4),
             ("FLOAT", "WAV", 1, 22_050, 15.0)]  # 1.3 MB: its header comes from the first read only
    for n, (subtype, container, channels, rate, seconds) in enumerate(cases * 3):
        x = (0.2 * rng.standard_normal((int(rate * seconds) + n, channels))).astype(np.float32)
        suffix = ".flac" if container == "FLAC" else ".wav"
        buffer = io.BytesIO()
        sf.write(buffer, x, rate, subtype=subtype, format=container)
        (folder / f"f{n:02d}{suffix}").write_bytes(buffer.getvalue())
    (folder / "f99.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio")  # unreadable: an item without header


@pytest.mark.parametrize("threads", [1, 4])
def test_each_item_has_libsndfiles_header_and_its_files_sha256_in_sorted_order(tmp_path, rng, monkeypatch, threads):
    _files(tmp_path / "data", rng)
    monkeypatch.setattr(plan, "available_cores", lambda: threads)
    monkeypatch.setattr(plan, "LISTING_BLOCK", 2)  # many blocks: their order must be kept
    items = list(plan.list_items(DatasetConfig(folder=tmp_path / "data", glob="*")))
    assert [i.item_id for i in items] == sorted(p.name for p in (tmp_path / "data").iterdir())
    for item in items:
        assert item.content_hash == file_sha256(item.path), item.item_id
        if item.item_id == "f99.wav":
            assert (item.sample_rate, item.channels, item.seconds) == (None, None, 0.0)
            continue
        info = sf.info(str(item.path))
        assert (item.sample_rate, item.channels) == (info.samplerate, info.channels), item.item_id
        assert item.seconds == info.frames / info.samplerate, item.item_id


def test_a_listed_file_that_vanished_is_missing_and_max_items_reads_no_further(tmp_path, rng, monkeypatch):
    _files(tmp_path / "data", rng)
    manifest = tmp_path / "data" / "list.csv"
    manifest.write_text("file\nf00.wav\ngone.wav\nf01.wav\nf02.wav\n")
    read = []
    real = plan._examine_file
    monkeypatch.setattr(plan, "_examine_file", lambda p, known=None: read.append(p.name) or real(p, known))
    items = list(plan.list_items(DatasetConfig(manifest=manifest, max_items=3)))
    assert [(i.item_id, i.content_hash == plan.MISSING) for i in items] == [
        ("f00.wav", False), ("gone.wav", True), ("f01.wav", False)]
    assert sorted(read) == ["f00.wav", "f01.wav", "gone.wav"]


def test_a_file_that_cannot_be_read_is_an_unreadable_item_not_a_crash(tmp_path, rng):
    _files(tmp_path / "data", rng)
    (tmp_path / "data" / "loop.wav").symlink_to(tmp_path / "data" / "loop.wav")  # stat fails: ELOOP
    (tmp_path / "data" / "folder.wav").mkdir()
    manifest = tmp_path / "data" / "list.csv"
    manifest.write_text("file\nloop.wav\nfolder.wav\nf00.wav\n")
    items = list(plan.list_items(DatasetConfig(manifest=manifest)))
    assert [(i.item_id, i.content_hash, i.sample_rate) for i in items[:2]] == [
        ("loop.wav", plan.UNREADABLE, None), ("folder.wav", plan.MISSING, None)]
    assert items[2].content_hash == file_sha256(tmp_path / "data" / "f00.wav")


def test_files_that_resolve_into_the_output_folder_are_never_items_links_included(tmp_path, rng):
    """The output check resolves links: a linked file or folder of the dataset that leads into the output is
    left out, one that leads elsewhere is an item (each folder is resolved once for its files)."""
    data, out, elsewhere = tmp_path / "data", tmp_path / "data" / "run", tmp_path / "elsewhere"
    _files(data, rng)
    (out / "cache").mkdir(parents=True)
    (out / "cache" / "own.wav").write_bytes((data / "f00.wav").read_bytes())
    elsewhere.mkdir()
    (elsewhere / "far.wav").write_bytes((data / "f00.wav").read_bytes())
    (data / "sub").mkdir()
    (data / "sub" / "into_run").symlink_to(out / "cache")  # a folder link into the output
    (data / "sub" / "link.wav").symlink_to(out / "cache" / "own.wav")  # a file link into the output
    (data / "sub" / "far").symlink_to(elsewhere)  # a folder link elsewhere
    (data / "sub" / "far_file.wav").symlink_to(elsewhere / "far.wav")
    expected = {"**/*.wav": {"f00.wav", "sub/far_file.wav"}, "*/*/*.wav": {"sub/far/far.wav"}}
    for pattern, present in expected.items():  # "**" enters no linked folder; "*/*" does
        ids = {i.item_id for i in plan.list_items(DatasetConfig(folder=data, glob=pattern), exclude=out)}
        assert present <= ids
        assert not any(i.startswith(("run/", "sub/into_run/")) or i == "sub/link.wav" for i in ids)
        assert ids == {p.relative_to(data).as_posix() for p in data.glob(pattern)
                       if not p.resolve().is_relative_to(out.resolve())}
    assert (data / "sub" / "into_run" / "own.wav") in data.glob("*/*/*.wav")  # the link was there to leave out
