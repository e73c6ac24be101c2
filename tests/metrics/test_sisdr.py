import numpy as np
import pytest
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as tm_si_sdr

from evalkit.metrics import Reference, get_metric, score_pair
from evalkit.metrics.sisdr import si_sdr


def test_hand_computed_values():
    s, e = np.array([3, -0.5, 2, 7.0]), np.array([2.5, 0, 2, 8.0])
    assert si_sdr(s, e, zero_mean=False) == pytest.approx(18.4030, abs=1e-4)
    assert si_sdr(s, e, zero_mean=True) == pytest.approx(15.0918, abs=1e-4)


@pytest.mark.parametrize("zero_mean", [True, False])
def test_agrees_with_torchmetrics(rng, zero_mean):
    ref = rng.standard_normal((8, 3000))
    est = ref + rng.standard_normal((8, 3000)) * rng.uniform(0.05, 2.0, (8, 1)) + 0.3
    ours = si_sdr(ref, est, zero_mean=zero_mean)
    theirs = tm_si_sdr(torch.from_numpy(est), torch.from_numpy(ref), zero_mean=zero_mean).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_gain_invariant_and_positive_sign(rng):
    ref = rng.standard_normal(4000)
    est = ref + 0.1 * rng.standard_normal(4000)
    base = si_sdr(ref, est)
    assert base == pytest.approx(si_sdr(ref, 0.01 * est), abs=1e-9) == pytest.approx(si_sdr(ref, 37 * est), abs=1e-9)
    assert base == pytest.approx(20, abs=0.5)  # noise 20 dB below the signal


def test_metric_wrapper_per_channel_mean_and_silent_reference(rng):
    ref = rng.standard_normal((2, 8000)).astype(np.float32) * 0.1
    deg = ref + np.stack([0.01, 0.001])[:, None].astype(np.float32) * rng.standard_normal((2, 8000)).astype(np.float32)
    result = score_pair(Reference(ref, 8000), deg, 8000, [get_metric("si_sdr")])[0]
    assert result.value == pytest.approx(np.mean(si_sdr(ref, deg)), abs=1e-4)
    assert result.preparation.channels == "per-channel"
    silent = score_pair(Reference(np.zeros((1, 8000), np.float32), 8000), deg[:1], 8000, [get_metric("si_sdr")])[0]
    assert np.isnan(silent.value) and "silent" in silent.reason
