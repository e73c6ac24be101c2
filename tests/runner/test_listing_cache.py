"""The listing cache: a rerun reads only the dataset files that changed, and never trusts a file it cannot
tell unchanged."""

import os
import sqlite3

from evalkit.hashing import file_sha256
from evalkit.runner import listing_cache, plan
from evalkit.runner.config import DatasetConfig
from evalkit.runner.listing_cache import ListingCache
from tests.runner.test_listing import _files


def _listed(folder, cache_path, monkeypatch, **kwargs):
    """The items of ``folder`` listed with the cache at ``cache_path`` (saved), and the names of the files read."""
    read = []
    real = plan.read_sha256
    monkeypatch.setattr(plan, "read_sha256", lambda fh: read.append(os.path.basename(fh.name)) or real(fh))
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
    real = plan.read_sha256
    monkeypatch.setattr(plan, "read_sha256", lambda fh: read.append(os.path.basename(fh.name)) or real(fh))
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
