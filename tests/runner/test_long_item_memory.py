"""Long items (scored in segments) run with their large blocks mapped on their own; short items keep the heaps."""

import contextlib

import numpy as np
import soundfile as sf

from tests.runner.conftest import make_config, run_raw


def _long_and_short_items(folder, rate):
    """``long.wav`` (30.5 s, scored in segments) and ``short.wav`` (30 s, scored whole) in ``folder``."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in (("long.wav", 30.5), ("short.wav", 30.0)):
        sf.write(folder / name, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return folder


def test_only_long_items_run_within_mapped_allocations(tmp_path, monkeypatch):
    from evalkit.runner import work

    rate = 8000
    folder = _long_and_short_items(tmp_path / "data", rate)
    entered = []

    @contextlib.contextmanager
    def spy():
        entered.append("in")
        yield

    monkeypatch.setattr(work, "mapped_allocations", spy)
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"],
                      workers=0)
    report = run_raw(raw, tmp_path)
    assert report.units_failed == 0 and report.units_run == 2
    assert entered == ["in"]  # once: the long item's task


def test_a_long_item_s_codec_is_let_go_before_its_metrics_run(tmp_path, monkeypatch):
    """A long item's metrics (and the next variant's codec) run without the last codec's model held; a short
    item's codecs stay loaded for the next item."""
    from evalkit.runner import work

    rate = 8000
    folder = _long_and_short_items(tmp_path / "data", rate)
    real_score_pair, held = work.score_pair, []

    def score_pair(reference, degraded, rate, metrics, *, source, **kwargs):
        held.append((reference.samples.shape[1] > 30 * rate, source, any(k[0] == source for k in work.CODECS.codecs)))
        return real_score_pair(reference, degraded, rate, metrics, source=source, **kwargs)

    monkeypatch.setattr(work, "score_pair", score_pair)
    monkeypatch.setattr(work, "CODECS", work.CodecCache())
    specs = ["lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=2000"]
    raw = make_config(folder, tmp_path / "out", codecs=[{"spec": s} for s in specs], metrics=["si_sdr"], workers=0)
    report = run_raw(raw, tmp_path)
    assert report.units_failed == 0 and report.units_run == 4
    assert sorted(held) == sorted([(True, s, False) for s in specs] + [(False, s, True) for s in specs])


def test_a_long_unit_s_decoded_audio_is_written_by_its_worker_bit_exact(tmp_path, monkeypatch):
    # 20 s at 16 kHz: 1.28 MB of decoded audio; the worker writes it, the coordinator only renames the file
    from evalkit.runner import run as run_module
    from evalkit.runner import work
    from evalkit.runner.layout import DECODED_CACHE

    folder = tmp_path / "data"
    folder.mkdir()
    samples = 0.1 * np.random.default_rng(1).standard_normal(20 * 16_000)
    sf.write(folder / "item.wav", samples.astype(np.float32), 16_000)
    assert samples.size * 4 >= work.BULK_BYTES
    received = []  # what reached the coordinator's writer: (the array, a file written by the worker)
    real_files = run_module._Writer._files

    def files(self, outcome, written):
        received.append((outcome.decoded is not None, outcome.decoded_file is not None))
        return real_files(self, outcome, written)

    monkeypatch.setattr(run_module._Writer, "_files", files)
    written = {}
    for how, workers in (("by the worker", 1), ("by the coordinator", 0)):
        if how == "by the coordinator":  # in-process, the worker's own write switched off: the array travels
            monkeypatch.setattr(work, "_write_long_decoded", lambda outcome, folder: None)
        out = tmp_path / f"out{workers}"
        raw = make_config(folder, out, codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"],
                          workers=workers)
        assert run_raw(raw, tmp_path).units_failed == 0
        [written[how]] = out.joinpath(*DECODED_CACHE).rglob("*.wav")
        assert not list(out.rglob("*.tmp"))
    assert received == [(False, True), (True, False)]
    assert written["by the worker"].read_bytes() == written["by the coordinator"].read_bytes()


def test_a_long_unit_is_scored_from_its_decoded_file_new_or_cached_with_the_values_of_the_array(tmp_path,
                                                                                                  monkeypatch):
    """A long unit's decoded audio is written before its metrics run and read back a segment at a time, when new
    and when a later run rescores it from the cache; the values are those of the array scored in memory."""
    import pandas as pd

    from evalkit.audio import FileSignal
    from evalkit.runner import work

    rate = 16_000  # the long item's decoded audio is 1.95 MB: written by its worker (work.BULK_BYTES)
    folder = _long_and_short_items(tmp_path / "data", rate)
    real_score_pair, seen = work.score_pair, []

    def score_pair(reference, degraded, rate, metrics, **kwargs):
        seen.append((reference.samples.shape[1] > 30 * rate, isinstance(degraded, FileSignal)))
        return real_score_pair(reference, degraded, rate, metrics, **kwargs)

    monkeypatch.setattr(work, "score_pair", score_pair)

    def values(out, metrics):
        raw = make_config(folder, out, codecs=[{"spec": "lowpass?cutoff_hz=3000"}], metrics=metrics, workers=0)
        report = run_raw(raw, tmp_path)
        assert report.units_failed == 0
        tidy = pd.read_csv(report.exports["results_csv"])
        return sorted(zip(tidy["item_id"], tidy["metric"], tidy["value"], strict=True))

    from_file = values(tmp_path / "out", ["si_sdr"])
    rescored = values(tmp_path / "out", ["si_sdr", "stoi"])  # stoi: the cached decoded audio, rescored
    assert sorted(seen) == [(False, False), (False, False), (True, True), (True, True)]
    monkeypatch.setattr(work, "_write_long_decoded", lambda outcome, folder: None)  # the array, in memory
    seen.clear()
    in_memory = values(tmp_path / "mem", ["si_sdr", "stoi"])
    assert sorted(seen) == [(False, False), (True, False)]
    assert rescored == in_memory and set(from_file) <= set(in_memory)
