"""Headphone screening by Huggins pitch (Milne et al. 2021, after Woods et al. 2017), as pure functions.

Each trial is one file of three 1 s noise bursts 0.5 s apart. Two are diotic (the same noise in both ears); in
the third, the noise in the right ear has a narrow band (600 Hz ± 6 %) phase-inverted. Over headphones that band
is heard as a faint tone in the noise; over loudspeakers the two ears' signals mix in the air and the tone is
lost. The participant says which burst holds the tone; the test is passed with at least 5 of 6 correct (Milne et
al.'s criterion; guessing passes with probability 13/729 ≈ 1.8 %). Every participant gets a sequence of its own
(noise and correct bursts drawn from a per-participant seed, :func:`sequence`); the answers stay on the server.
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
class HeadphoneCheck:
    """What ``test.json`` keeps about the screening: the method, the pass mark and the number of trials (the
    sounds and answers are drawn per participant)."""

    method: str
    pass_correct: int
    n_trials: int = N_TRIALS


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
    """Three bursts with ``GAP_S`` silence between them; burst ``answer`` (1-3; 0: none) holds the Huggins
    pitch."""
    gap = np.zeros((2, int(GAP_S * rate)))
    parts = []
    for k in (1, 2, 3):
        parts += [noise_burst(rng, k == answer, rate)] + ([gap] if k < 3 else [])
    return np.concatenate(parts, axis=1)


def calibration_signal(rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Three diotic bursts at the test's level, timed like a trial, for setting the volume."""
    return trial_signal(rng, 0, rate)


def balanced_answers(rng: np.random.Generator, n: int = N_TRIALS) -> list[int]:
    """Correct intervals for ``n`` trials: each of 1, 2, 3 equally often (n divisible by 3), shuffled.

    >>> sorted(balanced_answers(np.random.default_rng(0)))
    [1, 1, 2, 2, 3, 3]
    """
    answers = [1 + k % 3 for k in range(n)]
    return [answers[i] for i in rng.permutation(n)]


def answers_for(seed: int, n: int = N_TRIALS) -> list[int]:
    """The correct bursts of the sequence drawn from ``seed`` (the first draws of :func:`sequence`)."""
    return balanced_answers(np.random.default_rng(seed), n)


def sequence(seed: int, n: int = N_TRIALS) -> tuple[list[int], list[np.ndarray]]:
    """One participant's screening from its ``seed``: the correct bursts and the ``[2, samples]`` signals (the
    calibration noise first, then the ``n`` trials), all of one length.

    >>> answers, signals = sequence(1, 3); answers == answers_for(1, 3), len(signals), signals[0].shape
    (True, 4, (2, 176400))
    """
    rng = np.random.default_rng(seed)
    answers = balanced_answers(rng, n)
    return answers, [calibration_signal(rng), *(trial_signal(rng, a) for a in answers)]


def score(answers: list[int], responses: list[int], pass_correct: int) -> tuple[int, bool]:
    """Correct answers (``responses[k]``: the burst chosen in trial k) and whether the check is passed.

    >>> score([1, 3], [1, 2], 2), score([1, 3], [1, 3], 2)
    ((1, False), (2, True))
    """
    correct = sum(r == a for r, a in zip(responses, answers, strict=True))
    return correct, correct >= pass_correct
