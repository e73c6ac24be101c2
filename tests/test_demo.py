"""evalkit demo: a family that cannot run here is one row per item saying why; the others still run."""

import numpy as np
import soundfile as sf

from evalkit import demo
from evalkit.codecs.spec import SpecError


def test_a_family_that_cannot_be_built_gets_a_row_per_item_and_the_rest_run(tmp_path, monkeypatch):
    sf.write(tmp_path / "a.wav", 0.1 * np.sin(np.arange(4410) / 7.0)[:, None].astype(np.float32), 44100)
    sf.write(tmp_path / "b.wav", 0.1 * np.cos(np.arange(4410) / 5.0)[:, None].astype(np.float32), 44100)
    real_build = demo.build_codec

    def build(spec, device):
        if spec.family == "opus":
            raise SpecError("opus: checkpoint lacks a part (test)")
        return real_build(spec, device)

    monkeypatch.setattr(demo, "build_codec", build)
    monkeypatch.setattr(demo, "demo_specs", lambda: [demo.FAMILIES["opus"].resolve({}),
                                                     demo.FAMILIES["lowpass"].resolve({}), ("mp3", "no encoder")])
    rows = list(demo.run_demo(tmp_path, max_seconds=0.1, device="cpu"))
    by_codec = {}
    for row in rows:
        by_codec.setdefault(row.spec.split("?")[0], []).append(row)
    assert sorted(by_codec) == ["lowpass", "mp3", "opus"] and all(len(r) == 2 for r in by_codec.values())
    assert all(r.error == "unavailable: opus: checkpoint lacks a part (test)" for r in by_codec["opus"])
    assert all(r.error == "unavailable: no encoder" for r in by_codec["mp3"])
    assert all(r.error is None and r.restored_samples == 4410 for r in by_codec["lowpass"])
    assert "FAILED: unavailable: no encoder" in demo.format_rows(rows)
