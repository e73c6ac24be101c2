"""Listing a dataset: each item's header (rate, channels, duration) and content hash, several files at once."""

import io
import os
import sqlite3

import numpy as np
import pytest
import soundfile as sf

from evalkit.hashing import file_sha256
from evalkit.runner import listing_cache, plan
from evalkit.runner.config import DatasetConfig
from evalkit.runner.listing_cache import ListingCache


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


def _listed(folder, cache_path, monkeypatch, **kwargs):
    """The items of ``folder`` listed with the cache at ``cache_path`` (saved), and the names of the files read."""
    read = []
    real = plan._hash_read
    monkeypatch.setattr(plan, "_hash_read", lambda fh, path: read.append(path.name) or real(fh, path))
    known = ListingCache(cache_path, **kwargs)
    items = list(plan.list_items(DatasetConfig(folder=folder, glob="*"), known=known))
    known.save()
    return items, sorted(read)


def _fields(items):
    return [(i.item_id, i.content_hash, i.sample_rate, i.channels, i.seconds) for i in items]


def test_a_second_listing_reads_only_the_files_that_changed_and_gives_the_same_items(tmp_path, rng, monkeypatch):
    _files(tmp_path / "data", rng)
    data, cache = tmp_path / "data", tmp_path / "run" / "cache" / "listing.sqlite"
    monkeypatch.setattr(listing_cache, "MARGIN_NS", 0)  # the files were just written: see the racy-file test
    first, read = _listed(data, cache, monkeypatch)
    assert read == sorted(p.name for p in data.iterdir())
    again, read = _listed(data, cache, monkeypatch)
    assert read == [] and _fields(again) == _fields(first)
    # rewritten with the same size and its old modification time restored: its status-change time tells
    target = data / "f00.wav"
    st = target.stat()
    wav = bytearray(target.read_bytes())
    wav[-4:] = bytes(4)  # the last sample zeroed
    target.write_bytes(wav)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    changed, read = _listed(data, cache, monkeypatch)
    assert read == ["f00.wav"]
    assert changed[0].content_hash == file_sha256(target) != first[0].content_hash
    assert _fields(changed)[1:] == _fields(first)[1:]
    # replaced by a copy of itself (a new inode), rewritten in place with the same bytes, and a new file
    (data / "copy.tmp").write_bytes((data / "f01.wav").read_bytes())
    os.replace(data / "copy.tmp", data / "f01.wav")
    (data / "f02.wav").write_bytes((data / "f02.wav").read_bytes())
    (data / "new.wav").write_bytes((data / "f03.wav").read_bytes())
    _, read = _listed(data, cache, monkeypatch)
    assert read == ["f01.wav", "f02.wav", "new.wav"]
    assert _listed(data, cache, monkeypatch)[1] == []


def test_a_file_changed_within_the_margin_of_its_reading_is_read_again_until_it_is_older(tmp_path, rng,
                                                                                       monkeypatch):
    _files(tmp_path / "data", rng)
    data, cache = tmp_path / "data", tmp_path / "cache.sqlite"
    monkeypatch.setattr(listing_cache, "MARGIN_NS", 3600 * 10**9)  # every file was written within it
    _listed(data, cache, monkeypatch)
    _, read = _listed(data, cache, monkeypatch)
    assert len(read) == len(list(data.iterdir()))
    monkeypatch.setattr(listing_cache, "MARGIN_NS", 0)
    _, read = _listed(data, cache, monkeypatch)
    assert read == []


def test_fresh_decoder_versions_and_a_broken_cache_read_every_file(tmp_path, rng, monkeypatch, caplog):
    _files(tmp_path / "data", rng)
    data, cache = tmp_path / "data", tmp_path / "cache.sqlite"
    monkeypatch.setattr(listing_cache, "MARGIN_NS", 0)
    everything = sorted(p.name for p in data.iterdir())
    first, _ = _listed(data, cache, monkeypatch)
    assert _listed(data, cache, monkeypatch, read=False)[1] == everything  # --fresh
    monkeypatch.setattr(listing_cache, "decoders", lambda: "libsndfile=9|av=99")
    assert _listed(data, cache, monkeypatch)[1] == everything
    assert _listed(data, cache, monkeypatch)[1] == []
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT value FROM meta").fetchall() == [("libsndfile=9|av=99",)]
    cache.write_bytes(b"not a database" * 100)
    items, read = _listed(data, cache, monkeypatch)
    assert read == everything and _fields(items) == _fields(first)
    assert "cannot read the listing cache" in caplog.text
    assert _listed(data, cache, monkeypatch)[1] == []  # rewritten


def test_a_resumed_run_reads_no_unchanged_dataset_file_and_fresh_reads_them_all(small_dataset, tmp_path,
                                                                                  monkeypatch):
    from tests.runner.conftest import make_config, run_raw

    monkeypatch.setattr(listing_cache, "MARGIN_NS", 0)
    read = []
    real = plan._hash_read
    monkeypatch.setattr(plan, "_hash_read", lambda fh, path: read.append(path.name) or real(fh, path))
    raw = make_config(small_dataset, tmp_path / "run", codecs=[{"spec": "lowpass?cutoff_hz=3500"}],
                      metrics=["si_sdr"])
    files = sorted(p.name for p in small_dataset.glob("*.wav"))
    first = run_raw(raw, tmp_path)
    assert sorted(read) == files and first.units_run == len(files)
    read.clear()
    again = run_raw(raw, tmp_path)
    assert read == [] and again.units_run == 0  # every unit found done: the keys did not change
    assert (tmp_path / "run" / "cache" / "listing.sqlite").is_file()
    run_raw(raw, tmp_path, fresh=True)
    assert sorted(read) == files


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
