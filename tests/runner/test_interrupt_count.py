"""A Ctrl-C that arrives while a batch is being stored waits for it: the units the run says it kept are the units
in the store (a race that made `interrupted after 3 units` of a store holding 5). Batches are written by the
writer thread; the Ctrl-C reaches the main thread, which waits for the batch and writes what it still holds."""

import os
import signal
import sqlite3

import pytest

from evalkit.runner import RunInterrupted
from tests.runner.conftest import make_config, run_raw


def test_ctrl_c_during_a_store_write_waits_for_the_batch_and_counts_it(dataset, tmp_path, monkeypatch):
    from evalkit.runner.store import Store

    real = Store.write_units
    calls = []

    def interrupted_write(self, units):
        calls.append(len(units))
        if len(calls) == 2:  # the second batch: Ctrl-C arrives in the middle of the write
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, units)

    monkeypatch.setattr(Store, "write_units", interrupted_write)
    out = tmp_path / "out"
    raw = make_config(dataset, out, codecs=[{"spec": "lowpass?cutoff_hz=3500"}, {"spec": "lowpass?cutoff_hz=7000"}],
                      metrics=["si_sdr"])
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own: an earlier test may have
    try:                                                                    # left another (dask-jobqueue's)
        with pytest.raises(RunInterrupted) as caught:
            run_raw(raw, tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    stored = sqlite3.connect(out / "results.sqlite").execute(
        "SELECT COUNT(*) FROM units WHERE codec_spec LIKE 'lowpass%'").fetchone()[0]
    assert len(calls) >= 2 and stored == sum(calls) > calls[0]  # the interrupted batch was stored whole ...
    assert caught.value.units == stored  # ... and counted
