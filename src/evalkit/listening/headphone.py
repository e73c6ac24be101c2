"""Headphone screening by Huggins pitch (Milne et al. 2021, after Woods et al. 2017), as pure functions.

Each trial is one file of three 1 s noise bursts 0.5 s apart. Two are diotic (the same noise in both ears); in
the third, the noise in the right ear has a narrow band (600 Hz ± 6 %) phase-inverted. Over headphones that band
is heard as a faint tone in the noise; over loudspeakers the two ears' signals mix in the air and the tone is
lost. The participant says which burst holds the tone; the test is passed with at least 5 of 6 correct (Milne et
al.'s criterion; guessing passes with probability 13/729 ≈ 1.8 %). The answers stay on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HUGGINS_METHOD = "huggins-pitch (Milne et al. 2021)"
RATE = 44100
BURST_S, GAP_S, RAMP_S = 1.0, 0.5, 0.02
CENTER_HZ, HALF_WIDTH = 600.0, 0.06
N_TRIALS, PASS_CORRECT = 6, 5
NOISE_RMS = 0.05  # about −26 dBFS per ear; the participant sets the volume on the calibration noise first


@dataclass(frozen=True)
class HeadphoneTrial:
    stimulus_id: str
    answer: int  # 1, 2 or 3: the burst holding the Huggins pitch (never sent to the browser)


@dataclass(frozen=True)
class HeadphoneCheck:
    """What ``test.json`` keeps about the screening: the method, the pass mark and the trials."""

    method: str
    pass_correct: int
    calibration: str  # stimulus id of a diotic calibration noise
    trials: tuple[HeadphoneTrial, ...]


def _ramped(x: np.ndarray, rate: int) -> np.ndarray:
    k = int(RAMP_S * rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    y = x.copy()
    y[..., :k] *= ramp
    y[..., -k:] *= ramp[::-1]
    return y


def noise_burst(rng: np.random.Generator, huggins: bool, rate: int = RATE) -> np.ndarray:
    """One ``[2, samples]`` burst: diotic white noise, or with the 600 Hz ± 6 % band inverted in the right ear."""
    n = int(BURST_S * rate)
    left = rng.standard_normal(n)
    spectrum = np.fft.rfft(left)
    if huggins:
        f = np.fft.rfftfreq(n, 1 / rate)
        band = (f >= CENTER_HZ * (1 - HALF_WIDTH)) & (f <= CENTER_HZ * (1 + HALF_WIDTH))
        spectrum[band] *= -1
    right = np.fft.irfft(spectrum, n)
    x = np.stack([left, right])
    return _ramped(NOISE_RMS * x / np.sqrt(np.mean(left**2)), rate)


def trial_signal(rng: np.random.Generator, answer: int, rate: int = RATE) -> np.ndarray:
    """Three bursts with ``GAP_S`` silence between them; burst ``answer`` (1-3) holds the Huggins pitch."""
    gap = np.zeros((2, int(GAP_S * rate)))
    parts = []
    for k in (1, 2, 3):
        parts += [noise_burst(rng, k == answer, rate)] + ([gap] if k < 3 else [])
    return np.concatenate(parts, axis=1)


def calibration_signal(rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Three seconds of the diotic noise at the test's level, for setting the volume."""
    return np.concatenate([noise_burst(rng, False, rate) for _ in range(3)], axis=1)


def balanced_answers(rng: np.random.Generator, n: int = N_TRIALS) -> list[int]:
    """Correct intervals for ``n`` trials: each of 1, 2, 3 equally often (n divisible by 3), shuffled.

    >>> sorted(balanced_answers(np.random.default_rng(0)))
    [1, 1, 2, 2, 3, 3]
    """
    answers = [1 + k % 3 for k in range(n)]
    return [answers[i] for i in rng.permutation(n)]


def score(check: HeadphoneCheck, responses: dict[str, int]) -> tuple[int, bool]:
    """Correct answers (``responses``: stimulus id → chosen burst) and whether the check is passed.

    >>> check = HeadphoneCheck("m", 2, "c", (HeadphoneTrial("a", 1), HeadphoneTrial("b", 3)))
    >>> score(check, {"a": 1, "b": 2}), score(check, {"a": 1, "b": 3})
    ((1, False), (2, True))
    """
    correct = sum(responses.get(t.stimulus_id) == t.answer for t in check.trials)
    return correct, correct >= check.pass_correct
