"""Long inputs through the PyAV codecs are resampled block by block (``process_at_input_rate``): the same values
and report as resampling the whole signals around ``process``, without a whole-length copy at another rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.codecs import base, build_codec
from evalkit.codecs.pyav import ReferenceCodec

SECONDS = base.STREAM_ABOVE_S + 1.5
SAME = ("input_samples", "codec_rate", "codec_input_samples", "codec_output_samples", "trimmed_samples",
        "padded_samples", "output_samples", "measured_bitrate_bps", "decoder_rate", "channel_handling", "resampler")


def _music(rate: int, channels: int, seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(channels)
    tones = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t * (1 + 0.01 * np.sin(t))) for c in range(channels)]
    return (np.stack(tones) + 0.01 * rng.standard_normal((channels, t.size))).astype(np.float32)


def _whole(codec, x, rate, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(base, "STREAM_ABOVE_S", float("inf"))
        return codec.reconstruct(x, rate)


@pytest.mark.parametrize(("spec", "rate", "channels"), [
    ("opus?bitrate_kbps=12", 44_100, 1),  # to 48 kHz and back
    ("opus?bitrate_kbps=24", 22_050, 2),  # to 24 kHz; the decoder's 48 kHz back to 24 kHz, then to 22.05 kHz
    ("opus?bitrate_kbps=16", 16_000, 1),  # no resampling at the input's rate; the decoder's 48 kHz to 16 kHz
    ("mp3?bitrate_kbps=64", 20_000, 1),  # to 22.05 kHz (MPEG-2) and back
    ("aac?bitrate_kbps=96", 40_000, 2),  # to 44.1 kHz and back; the encoder's priming cut from the decoded blocks
])
def test_a_long_input_streamed_gives_the_whole_signal_path_s_values_bit_for_bit(spec, rate, channels, monkeypatch):
    codec = build_codec(spec)
    x = _music(rate, channels)
    whole = _whole(codec, x, rate, monkeypatch)
    with monkeypatch.context() as patch:  # the streamed path must not fall back to process
        patch.setattr(ReferenceCodec, "process_array", lambda *a: pytest.fail("process ran on a long input"))
        streamed = codec.reconstruct(x, rate)
    assert np.array_equal(streamed.audio, whole.audio)
    assert {k: getattr(streamed.report, k) for k in SAME} == {k: getattr(whole.report, k) for k in SAME}
    assert streamed.report.process_s > 0 and streamed.report.encode_s > 0 and streamed.report.decode_s > 0


PEAK_CHILD = """
import json, sys
import numpy as np
from evalkit.codecs import base, build_codec

def status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

if sys.argv[1] == "whole":
    base.STREAM_ABOVE_S = float("inf")
codec = build_codec("opus?bitrate_kbps=12")
t = np.arange(120 * 44_100) / 44_100
x = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.01 * np.sin(t)))).astype(np.float32)[None]
del t
codec.reconstruct(x[:, :44_100], 44_100)  # imports and warms up everything with a short input
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident size starts again from the current one
before = status_kib("VmRSS")
codec.reconstruct(x, 44_100)
print(json.dumps({"peak_kib": status_kib("VmHWM") - before, "input_kib": x.nbytes // 1024}))
"""


@pytest.mark.slow  # two processes, two minutes of audio through Opus each
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_a_streamed_input_holds_no_whole_length_copy_at_the_codec_s_rate():
    """44.1 kHz through Opus (48 kHz): resampling whole signals holds the input's 48 kHz copy and the decoder's
    48 kHz output besides the result; streamed, the process grows by about the result alone."""
    import json
    import os
    import subprocess
    import sys

    # glibc raises its mmap threshold each time a large block is freed, after which freed arrays may stay resident
    # or not: the peak then varies by a third of the input's size from run to run (1.5x to 1.87x for the streamed
    # path). A fixed threshold maps and unmaps every large array, so the peak counts the arrays alive together.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}

    def growth(mode: str) -> tuple[int, int]:
        done = subprocess.run([sys.executable, "-c", PEAK_CHILD, mode], capture_output=True, text=True, check=True,
                              env=env)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return out["peak_kib"], out["input_kib"]

    whole, size = growth("whole")
    streamed, _ = growth("streamed")
    assert whole > 2.0 * size  # what the test guards against is there to see: 2.33x measured
    assert streamed < 1.6 * size  # the result (1x) and the blocks in flight: 1.30x measured
