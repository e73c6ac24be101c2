"""Storage (floats) and encoder search cost (multiply-adds per frame) of an RVQ before and after KLT truncation.

What each quantizer family really stores and multiplies (N = codebooks the model stores, n = codebooks in use,
K = cardinality, D = latent dimension, d̃ = kept dimensions, c = codeword dimension):

* Euclidean RVQ (EnCodec, c = D): N codebooks ``K × D``, no projections. KLT stores ``K × d̃`` codebooks.
  Search: ``n·K·D`` → ``D·d̃ + n·K·d̃``.
* Projected RVQ (DAC, c = 8): N codebooks ``K × c`` plus, per stage, a weight-normed 1×1 conv D → c (stored as
  ``v [c, D]``, gain ``g [c]``, bias ``[c]``) and c → D (``v [D, c]``, ``g [D]``, bias ``[D]``):
  ``2cD + 2c + 2D`` floats per stage. KLT leaves the codebooks as they are and stores the reduced projections
  with the weight norm folded in: in ``[c, d̃]`` + bias ``[c]``, out ``[d̃, c]`` + bias ``[d̃]``, i.e.
  ``2c·d̃ + c + d̃`` per stage. Search per stage: in-projection ``c·D``, codeword scores ``K·c``, out-projection
  for the residual ``D·c``; KLT: ``D·d̃`` once, then ``c·d̃ + K·c + d̃·c`` per stage.

Both add the transform and the mean ``μ`` (D floats). The transform is shown as the paper counts it, the full
``D × D`` matrix (``transform_floats``), and as stored, ``U_d`` with ``D × d̃`` floats (``transform_floats_stored``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class QuantizerKind(enum.StrEnum):
    """How an RVQ codec's quantizer relates to its latent."""

    EUCLIDEAN = "euclidean"  # nearest codeword in the latent itself (EnCodec)
    PROJECTED = "projected"  # cosine search in a low-dimensional projection of the latent (DAC)


@dataclass(frozen=True)
class KltAccounting:
    """Floats stored and search multiply-adds of one KLT variant and its base codec (see the module docstring).

    Storage counts every codebook the model stores (``stored_codebooks``); search counts those in use.

    >>> acc = KltAccounting(QuantizerKind.EUCLIDEAN, 32, 8, 1024, 128, 72, 128)
    >>> acc.codebook_floats_full, acc.codebook_floats, acc.transform_floats, acc.transform_floats_stored
    (4194304, 2359296, 16384, 9216)
    >>> round(100 * acc.saving_total, 2), round(100 * acc.saving_total_stored, 2)
    (43.36, 43.53)
    """

    kind: QuantizerKind
    stored_codebooks: int
    used_codebooks: int
    cardinality: int
    full_dim: int
    dim: int
    code_dim: int

    @property
    def codebook_floats_full(self) -> int:
        """Codebook floats the base model stores (``N·K·c``)."""
        return self.stored_codebooks * self.cardinality * self.code_dim

    @property
    def codebook_floats(self) -> int:
        """Codebook floats after truncation (``N·K·d̃`` Euclidean; unchanged ``N·K·c`` projected)."""
        per_codeword = self.dim if self.kind is QuantizerKind.EUCLIDEAN else self.code_dim
        return self.stored_codebooks * self.cardinality * per_codeword

    @property
    def projection_floats_full(self) -> int:
        """In/out projection floats the base model stores (weights, weight-norm gains, biases)."""
        if self.kind is QuantizerKind.EUCLIDEAN:
            return 0
        c, d = self.code_dim, self.full_dim
        return self.stored_codebooks * (2 * c * d + 2 * c + 2 * d)

    @property
    def projection_floats(self) -> int:
        """Reduced projection floats (weight norm folded): in ``c·d̃ + c``, out ``d̃·c + d̃`` per stage."""
        if self.kind is QuantizerKind.EUCLIDEAN:
            return 0
        c, d = self.code_dim, self.dim
        return self.stored_codebooks * (2 * c * d + c + d)

    @property
    def transform_floats(self) -> int:
        """The transform as the paper counts it: the full ``D × D`` matrix."""
        return self.full_dim * self.full_dim

    @property
    def transform_floats_stored(self) -> int:
        """The transform as stored: ``U_d``, ``D × d̃``."""
        return self.full_dim * self.dim

    @property
    def mean_floats(self) -> int:
        """The mean ``μ``: D floats."""
        return self.full_dim

    @property
    def total_floats_full(self) -> int:
        """Everything the base quantizer stores."""
        return self.codebook_floats_full + self.projection_floats_full

    @property
    def total_floats(self) -> int:
        """Everything the truncated quantizer stores, transform counted as the paper does (``D²``)."""
        return self.codebook_floats + self.projection_floats + self.transform_floats + self.mean_floats

    @property
    def total_floats_stored(self) -> int:
        """Everything the truncated quantizer stores, transform as stored (``D·d̃``)."""
        return self.codebook_floats + self.projection_floats + self.transform_floats_stored + self.mean_floats

    @property
    def search_macs_full(self) -> int:
        """Multiply-adds per frame of the base quantizer's encoder-side search."""
        n, k, c, d = self.used_codebooks, self.cardinality, self.code_dim, self.full_dim
        if self.kind is QuantizerKind.EUCLIDEAN:
            return n * k * d
        return n * (c * d + k * c + d * c)

    @property
    def search_macs(self) -> int:
        """Multiply-adds per frame of the truncated search, including the projection ``U_dᵀ (z − μ)``."""
        n, k, c, d = self.used_codebooks, self.cardinality, self.code_dim, self.dim
        if self.kind is QuantizerKind.EUCLIDEAN:
            return self.full_dim * d + n * k * d
        return self.full_dim * d + n * (c * d + k * c + d * c)

    @property
    def saving_codebooks(self) -> float:
        """Share of the codebook floats saved."""
        return 1 - self.codebook_floats / self.codebook_floats_full

    @property
    def saving_projections(self) -> float:
        """Share of the projection floats saved (0 when there are none)."""
        full = self.projection_floats_full
        return 1 - self.projection_floats / full if full else 0.0

    @property
    def saving_total(self) -> float:
        """Share of all quantizer floats saved, transform counted as ``D²`` (the paper); negative = costs more."""
        return 1 - self.total_floats / self.total_floats_full

    @property
    def saving_total_stored(self) -> float:
        """Share of all quantizer floats saved, transform as stored (``D·d̃``); negative = costs more."""
        return 1 - self.total_floats_stored / self.total_floats_full

    @property
    def saving_search(self) -> float:
        """Share of the search multiply-adds saved per frame."""
        return 1 - self.search_macs / self.search_macs_full

    def as_dict(self) -> dict:
        """Fields and every count/saving, JSON-ready (``kind`` as its string value)."""
        props = ("codebook_floats_full", "codebook_floats", "projection_floats_full", "projection_floats",
                 "transform_floats", "transform_floats_stored", "mean_floats", "total_floats_full",
                 "total_floats", "total_floats_stored", "search_macs_full", "search_macs", "saving_codebooks",
                 "saving_projections", "saving_total", "saving_total_stored", "saving_search")
        fields = {"kind": self.kind.value, "stored_codebooks": self.stored_codebooks,
                  "used_codebooks": self.used_codebooks, "cardinality": self.cardinality,
                  "full_dim": self.full_dim, "dim": self.dim, "code_dim": self.code_dim}
        return {**fields, **{p: getattr(self, p) for p in props}}


def findings(acc: dict) -> list[str]:
    """Plain statements about where the saving comes from, or that there is little or none.

    ``acc`` is :meth:`KltAccounting.as_dict` (as stored with a run or printed by ``klt analyze``).
    """
    lines = []
    if acc["kind"] == QuantizerKind.PROJECTED.value:
        lines.append(f"the codebooks are {acc['code_dim']}-dimensional and KLT does not shrink them "
                     f"({100 * acc['saving_codebooks']:.2f} %); only the in/out projections shrink "
                     f"({100 * acc['saving_projections']:.2f} %)")
    for key, how in (("saving_total", "with the transform as the paper counts it (D x D)"),
                     ("saving_total_stored", "with the transform as stored (D x d)")):
        if acc[key] <= 0:
            lines.append(f"KLT saves no storage {how}: it needs {-100 * acc[key]:.2f} % more floats than "
                         "the original quantizer")
        elif acc[key] < 0.1:
            lines.append(f"KLT saves little storage {how}: {100 * acc[key]:.2f} %")
    if acc["saving_search"] <= 0:
        lines.append(f"the truncated search costs {-100 * acc['saving_search']:.2f} % more multiply-adds per frame")
    return lines
