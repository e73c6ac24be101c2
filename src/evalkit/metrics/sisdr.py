"""Scale-invariant signal-to-distortion ratio (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019).

``SI-SDR = 10 log10(‖α s‖² / ‖α s − ŝ‖²)`` with ``α = ⟨ŝ, s⟩ / ‖s‖²``, in dB, higher is better, positive sign
(some tools report its negative as a loss). With ``zero_mean`` both signals lose their mean first. Like
torchmetrics, numerator and denominator get ``eps`` (float64 machine epsilon) so identical signals give a large
finite value instead of ``inf``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.metrics.registry import ChannelMode, Metric, MetricFailure, MetricInfo, MetricKind

EPS = float(np.finfo(np.float64).eps)
# Shorter than 100 ms (a few pitch periods), the optimal scale fits the few samples there are: a 10-sample pair
# scored 140.8 dB. Shorter pairs get NaN with the reason instead.
MIN_DURATION_S = 0.1


def si_sdr(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = True) -> np.ndarray:
    """SI-SDR in dB over the last axis (one value per leading index).

    >>> round(float(si_sdr(np.array([3, -0.5, 2, 7.]), np.array([2.5, 0, 2, 8.]), zero_mean=False)), 4)
    18.403
    >>> round(float(si_sdr(np.array([3, -0.5, 2, 7.]), np.array([2.5, 0, 2, 8.]))), 4)
    15.0918
    """
    return _si_sdr_terms(reference, estimate, zero_mean)[2]


def _si_sdr_terms(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(‖s‖², ‖ŝ‖², SI-SDR) from three dot products: ‖ŝ − αs‖² = ‖ŝ‖² − 2α⟨ŝ, s⟩ + α²‖s‖²."""
    s = np.array(reference, dtype=np.float64)  # copies: centred in place below
    e = np.array(estimate, dtype=np.float64)
    if zero_mean:
        s -= s.mean(axis=-1, keepdims=True)
        e -= e.mean(axis=-1, keepdims=True)
    # row-wise dot products through BLAS (matmul on [..., 1, T] @ [..., T, 1])
    ss = (s[..., None, :] @ s[..., :, None])[..., 0, 0]
    se = (s[..., None, :] @ e[..., :, None])[..., 0, 0]
    ee = (e[..., None, :] @ e[..., :, None])[..., 0, 0]
    alpha = (se + EPS) / (ss + EPS)
    target = alpha**2 * ss
    noise = np.maximum(ee - 2 * alpha * se + target, 0.0)
    return ss, ee, 10 * np.log10((target + EPS) / (noise + EPS))


class SiSdr(Metric):
    info = MetricInfo(
        name="si_sdr", variant="zero-mean, per channel then averaged", kind=MetricKind.REFERENCE, unit="dB",
        higher_is_better=True, sample_rate=None, min_duration_s=MIN_DURATION_S, channels=ChannelMode.PER_CHANNEL,
        library="evalkit", paper="Le Roux et al., ICASSP 2019, doi:10.1109/ICASSP.2019.8683855",
        description="scale-invariant SDR at the reference's rate",
        display_name="SI-SDR",
        version="3")  # 2: NaN below MIN_DURATION_S (1 scored any length); 3: delay window grows, misaligned -> NaN

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        return self._value(*_si_sdr_terms(reference, degraded, zero_mean=True))

    def segment_terms(self, reference: np.ndarray, degraded: np.ndarray) -> np.ndarray:
        """Per channel ``[n, Σs, Σŝ, Σs², Σsŝ, Σŝ²]`` (float64), additive over consecutive segments."""
        s, e = np.asarray(reference, dtype=np.float64), np.asarray(degraded, dtype=np.float64)
        n = np.full(s.shape[0], float(s.shape[-1]))
        return np.stack([n, s.sum(-1), e.sum(-1), np.einsum("ct,ct->c", s, s), np.einsum("ct,ct->c", s, e),
                         np.einsum("ct,ct->c", e, e)], axis=-1)

    def from_segment_terms(self, terms: np.ndarray) -> float:
        """The zero-mean SI-SDR of the whole pair: centred sums ``Σ(s − s̄)(ŝ − ŝ̄) = Σsŝ − Σs Σŝ / n``."""
        n, s1, e1, ss, se, ee = np.moveaxis(np.asarray(terms, dtype=np.float64), -1, 0)
        ss, se, ee = ss - s1 * s1 / n, se - s1 * e1 / n, ee - e1 * e1 / n
        alpha = (se + EPS) / (ss + EPS)
        target = alpha**2 * ss
        noise = np.maximum(ee - 2 * alpha * se + target, 0.0)
        return self._value(ss, ee, 10 * np.log10((target + EPS) / (noise + EPS)))

    @staticmethod
    def _value(ref_energy: np.ndarray, deg_energy: np.ndarray, values: np.ndarray) -> float:
        used = ref_energy > 0
        if not np.any(used):
            raise MetricFailure("reference is silent (constant): SI-SDR is undefined")
        if not np.any(deg_energy[used] > 0):
            raise MetricFailure("degraded signal is silent: SI-SDR is undefined (0/0 scale)")
        return float(np.mean(values[used]))
