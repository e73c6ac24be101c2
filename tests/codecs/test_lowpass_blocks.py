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
