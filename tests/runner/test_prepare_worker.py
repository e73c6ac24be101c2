"""A pool worker loads the run's array transforms while the coordinator plans; model codecs wait for a unit."""

from evalkit.runner import work


def test_load_array_transforms_loads_ffmpeg_codecs_and_anchors_only(monkeypatch):
    monkeypatch.setattr(work, "CODECS", type(work.CODECS)())
    work.load_array_transforms(("lowpass?cutoff_hz=3500", "opus?bitrate_kbps=12", "encodec-24khz?bandwidth=1.5",
                                "nosuchfamily?x=1"), "auto")
    assert sorted(spec for spec, _ in work.CODECS.codecs) == ["lowpass?cutoff_hz=3500", "opus?bitrate_kbps=12"]
    assert not work.CODECS.models  # no model loaded, and an unknown spec is left for its units to report
