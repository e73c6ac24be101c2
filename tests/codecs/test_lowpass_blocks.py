"""The low-pass anchor filters long inputs block by block with the same result as in one piece."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from evalkit.codecs import anchors


@pytest.mark.parametrize("length", [2_000, 2_048, 5_001])
def test_blockwise_lowpass_equals_one_convolution(monkeypatch, length):
    x = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    taps = anchors.design_lowpass(3500.0, 44_100)
    delay = (len(taps) - 1) // 2
    direct = np.stack([np.convolve(c.astype(np.float64), taps)[delay: delay + length] for c in x])  # reference
    monkeypatch.setattr(anchors, "BLOCK_SAMPLES", 512)
    blocks = anchors.lowpass(x, 3500.0, 44_100)
    assert blocks.shape == x.shape and blocks.dtype == np.float32
    np.testing.assert_allclose(blocks, direct, atol=2e-6)
    assert np.abs(signal.oaconvolve(x, taps[None], mode="full", axes=-1)[:, delay: delay + length]
                  - blocks).max() < 2e-6


def test_long_inputs_keep_no_filter_spectrum_and_short_ones_reuse_theirs(monkeypatch):
    """A long item's blocks are megabytes of spectrum each, of lengths that vary item to item: none is kept."""
    monkeypatch.setattr(anchors, "CACHED_SPECTRUM_FFT", 4096)
    anchors._cached_spectrum.cache_clear()
    rng = np.random.default_rng(1)
    anchors.lowpass(rng.standard_normal((1, 20_000)).astype(np.float32), 3500.0, 44_100)
    assert anchors._cached_spectrum.cache_info().currsize == 0
    for _ in range(3):
        anchors.lowpass(rng.standard_normal((1, 2_000)).astype(np.float32), 3500.0, 44_100)
    info = anchors._cached_spectrum.cache_info()
    assert (info.currsize, info.hits) == (1, 2)
