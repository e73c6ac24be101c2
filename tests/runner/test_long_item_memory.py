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


def test_a_workers_large_decoded_audio_arrives_bit_exact(tmp_path):
    # 20 s at 16 kHz: 1.28 MB of decoded audio, sent by the worker as raw bytes after its unit's message
    from evalkit.runner import work
    from evalkit.runner.layout import DECODED_CACHE

    folder = tmp_path / "data"
    folder.mkdir()
    samples = 0.1 * np.random.default_rng(1).standard_normal(20 * 16_000)
    sf.write(folder / "item.wav", samples.astype(np.float32), 16_000)
    assert samples.size * 4 >= work.BULK_BYTES
    files = {}
    for workers in (0, 1):
        out = tmp_path / f"out{workers}"
        raw = make_config(folder, out, codecs=[{"spec": "lowpass?cutoff_hz=3500"}], metrics=["si_sdr"],
                          workers=workers)
        assert run_raw(raw, tmp_path).units_failed == 0
        [files[workers]] = out.joinpath(*DECODED_CACHE).rglob("*.wav")
    assert files[1].read_bytes() == files[0].read_bytes()
