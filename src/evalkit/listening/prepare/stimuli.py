"""Signal steps of test preparation as pure functions: excerpt choice, fades, loudness gains, balanced orders."""

from __future__ import annotations

import math

import numpy as np

FRAME_S = 0.02  # energy frames for finding quiet cut points
FADE_S = 0.02  # raised-cosine fade at each cut


def choose_excerpt(reference: np.ndarray, sample_rate: int, target_s: float = 10.0,
                   max_s: float = 12.0) -> tuple[int, int]:
    """Start and end sample of an excerpt of about ``target_s`` (at most ``max_s``) cut at quiet points.

    Items no longer than ``max_s`` are kept whole. Otherwise the start is the quietest 20 ms frame in the first
    ``max_s − target_s`` seconds and the end the quietest frame between ``start + 0.8·target_s`` and
    ``start + max_s``; "quiet" is the frame RMS over channels.

    >>> x = np.ones((1, 20 * 100), dtype=np.float32); x[0, 1000:1002] = 0  # 100 Hz, 20 s, a gap at 10 s
    >>> choose_excerpt(x, 100)
    (0, 1000)
    """
    n = reference.shape[-1]
    if n <= int(round(max_s * sample_rate)):
        return 0, n
    hop = max(1, int(FRAME_S * sample_rate))
    frames = n // hop
    energy = np.sqrt(np.mean(reference[:, : frames * hop].reshape(reference.shape[0], frames, hop) ** 2, axis=(0, 2)))
    slack = int((max_s - target_s) * sample_rate / hop)
    start_frame = int(np.argmin(energy[: max(1, slack)]))
    lo = start_frame + int(0.8 * target_s * sample_rate / hop)
    hi = min(frames, start_frame + int(max_s * sample_rate / hop))
    end_frame = lo + int(np.argmin(energy[lo:hi])) if hi > lo else hi
    return start_frame * hop, min(n, end_frame * hop)


def apply_fades(x: np.ndarray, sample_rate: int, fade_s: float = FADE_S) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``fade_s`` (shortened to a quarter of the signal if needed).

    >>> apply_fades(np.ones((1, 8), dtype=np.float32), 100, 0.04).round(3).tolist()  # 2-sample fades
    [[0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0]]
    """
    n = x.shape[-1]
    k = min(int(round(fade_s * sample_rate)), n // 4)
    if k < 1:
        return x.copy()
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)).astype(x.dtype)
    y = x.copy()
    y[..., :k] *= ramp
    y[..., n - k:] *= ramp[::-1]
    return y


def loudness_gains_db(loudness_lufs: dict[str, float], peaks: dict[str, float], target_lufs: float,
                      max_peak: float = 0.98) -> tuple[dict[str, float], float]:
    """Gains (dB) bringing every stimulus to one loudness; the common target is lowered just enough that no
    stimulus peaks above ``max_peak`` after its gain. Stimuli below the BS.1770 gate (``-inf``) get 0 dB.

    Returns:
        ``({stimulus: gain_db}, target actually used in LUFS)``.

    >>> gains, target = loudness_gains_db({"a": -20.0, "b": -30.0}, {"a": 0.5, "b": 0.5}, -23.0)
    >>> target, gains  # b needs +7 dB: peak 0.5·10^(7/20) = 1.12; 20·log10(0.98/0.5) = 5.845 dB fit
    (-24.16, {'a': -4.16, 'b': 5.84})
    """
    finite = {k: v for k, v in loudness_lufs.items() if math.isfinite(v)}
    headroom = min((20 * math.log10(max_peak / peaks[k]) - (target_lufs - v) for k, v in finite.items()
                    if peaks[k] > 0), default=0.0)
    target = math.floor(100 * (target_lufs + min(0.0, headroom))) / 100  # rounded down: never above max_peak
    gains = {k: round(target - finite[k], 2) if k in finite else 0.0 for k in loudness_lufs}
    return gains, target


def williams_square(n: int) -> list[list[int]]:
    """A Williams-type balanced Latin square: row r is ``(base + r) mod n`` with base 0, 1, n−1, 2, n−2, …; every
    symbol takes every position once and, for even n, every ordered succession occurs once.

    >>> williams_square(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    base, lo, hi = [0], 1, n - 1
    for k in range(1, n):
        if k % 2 == 1:
            base.append(lo)
            lo += 1
        else:
            base.append(hi)
            hi -= 1
    return [[(b + r) % n for b in base] for r in range(n)]


def balanced_orders(n: int, rows: int, rng: np.random.Generator) -> list[list[int]]:
    """``rows`` orders of ``range(n)``: the rows of :func:`williams_square` (cycled) with labels shuffled by
    ``rng``, so positions are balanced over every n consecutive listeners."""
    perm = rng.permutation(n)
    square = williams_square(n)
    return [[int(perm[i]) for i in square[r % n]] for r in range(rows)]


def limiting_stimulus(loudness_lufs: dict[str, float], peaks: dict[str, float],
                      target_lufs: float) -> tuple[str, float]:
    """The stimulus that would peak highest once brought to ``target_lufs``, and that peak (linear): the one that
    forced :func:`loudness_gains_db` to lower the target.

    >>> limiting_stimulus({"a": -20.0, "b": -30.0}, {"a": 0.5, "b": 0.5}, -23.0)  # b: 0.5·10^(7/20)
    ('b', 1.1194)
    """
    after = {k: peaks[k] * 10 ** ((target_lufs - v) / 20) for k, v in loudness_lufs.items() if math.isfinite(v)}
    key = max(after, key=after.get)
    return key, round(after[key], 4)
