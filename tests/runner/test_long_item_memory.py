"""Long items (scored in segments) run with their large blocks mapped on their own; short items keep the heaps."""

import contextlib

import numpy as np
import soundfile as sf

from tests.runner.conftest import make_config, run_raw


def test_only_long_items_run_within_mapped_allocations(tmp_path, monkeypatch):
    from evalkit.runner import work

    rate = 8000
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in (("long.wav", 30.5), ("short.wav", 30.0)):  # only the first is scored in segments
        sf.write(folder / name, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
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
