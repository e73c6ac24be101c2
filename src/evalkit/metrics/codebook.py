"""Codebook usage over a whole evaluation set (not per file).

Per codebook q with counts n_j over N frames (padding frames excluded): entropy ``H_q = −Σ p_j log2 p_j`` bits,
perplexity ``2^H_q`` (K for uniform use, 1 for a single code), utilisation (share of the K codes used at least
once), normalised entropy ``H_q / log2 K``, the Miller–Madow corrected entropy ``H_q + (m − 1) / (2 N ln 2)``
(m = codes used), and the entropy-coding bound on bitrate ``frame_rate × Σ_q H_q`` bit/s. ``by_num_codebooks``
gives the same as a function of the number of codebooks used (RVQ's first n codebooks), for
perplexity-vs-codebooks plots.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from evalkit.metrics.registry import ChannelMode, MetricInfo, MetricKind

INFO = MetricInfo(
    name="codebook_usage", variant="per codebook over the evaluation set", kind=MetricKind.CORPUS,
    unit="bits / perplexity", higher_is_better=True, sample_rate=None, min_duration_s=0.0,
    channels=ChannelMode.PER_CHANNEL, library="evalkit", paper="Miller (1955) bias correction",
    description="entropy, perplexity, utilisation and entropy-coding bitrate bound of each codebook",
    display_name="Codebook usage")


@dataclass(frozen=True)
class CodebookStats:
    codebook: int
    frames: int
    codes_used: int
    entropy_bits: float
    entropy_mm_bits: float
    perplexity: float
    utilisation: float
    normalised_entropy: float


@dataclass(frozen=True)
class UsageAtDepth:
    """Statistics of the first ``num_codebooks`` codebooks."""

    num_codebooks: int
    mean_perplexity: float
    entropy_bits: float  # Σ over the first n codebooks, per frame
    bitrate_bound_bps: float
    nominal_bitrate_bps: float


@dataclass(frozen=True)
class CodebookUsage:
    cardinality: int
    frame_rate: float
    per_codebook: tuple[CodebookStats, ...]

    @property
    def bitrate_bound_bps(self) -> float:
        return self.frame_rate * sum(s.entropy_bits for s in self.per_codebook)

    def by_num_codebooks(self) -> list[UsageAtDepth]:
        rows, total = [], 0.0
        for n, stats in enumerate(self.per_codebook, start=1):
            total += stats.entropy_bits
            rows.append(UsageAtDepth(
                n, float(np.mean([s.perplexity for s in self.per_codebook[:n]])), total, self.frame_rate * total,
                self.frame_rate * n * math.log2(self.cardinality)))
        return rows


def count_codes(codes: Iterable[np.ndarray], cardinality: int) -> np.ndarray:
    """Counts ``[n_codebooks, cardinality]`` over items given as ``[n_codebooks, frames]`` (or ``[B, K, T]``)."""
    counts = None
    for c in codes:
        c = np.asarray(c)
        c = c.reshape(-1, c.shape[-2], c.shape[-1]).transpose(1, 0, 2).reshape(c.shape[-2], -1)
        if c.size and (c.min() < 0 or c.max() >= cardinality):
            raise ValueError(f"code index outside [0, {cardinality})")
        item = np.stack([np.bincount(row, minlength=cardinality) for row in c])
        if counts is None:
            counts = item
        elif counts.shape[0] != item.shape[0]:
            raise ValueError(f"items have different numbers of codebooks ({counts.shape[0]} vs {item.shape[0]})")
        else:
            counts = counts + item
    if counts is None:
        raise ValueError("no codes given")
    return counts


def usage_from_counts(counts: np.ndarray, frame_rate: float) -> CodebookUsage:
    counts = np.asarray(counts, dtype=np.int64)
    cardinality = counts.shape[1]
    stats = []
    for q, row in enumerate(counts):
        n = int(row.sum())
        p = row[row > 0] / n
        h = float(-(p * np.log2(p)).sum()) + 0.0
        used = int(np.count_nonzero(row))
        stats.append(CodebookStats(
            codebook=q, frames=n, codes_used=used, entropy_bits=h,
            entropy_mm_bits=h + (used - 1) / (2 * n * math.log(2)), perplexity=2.0**h,
            utilisation=used / cardinality, normalised_entropy=h / math.log2(cardinality)))
    return CodebookUsage(cardinality, frame_rate, tuple(stats))


def codebook_usage(codes: Iterable[np.ndarray], cardinality: int, frame_rate: float) -> CodebookUsage:
    """Usage statistics of codes from a whole set; pass only valid (non-padding) frames.

    >>> u = codebook_usage([np.array([[0, 1, 2, 3], [5, 5, 5, 5]])], cardinality=4 * 2, frame_rate=75.0)
    >>> u.per_codebook[0].perplexity, u.per_codebook[1].perplexity, u.bitrate_bound_bps
    (4.0, 1.0, 150.0)
    """
    return usage_from_counts(count_codes(codes, cardinality), frame_rate)


def valid_frames(num_samples: int, hop_length: int) -> int:
    """Frames that hold signal: those starting before the input's end (the rest cover only padding)."""
    return math.ceil(num_samples / hop_length)
