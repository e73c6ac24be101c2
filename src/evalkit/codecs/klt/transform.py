"""The Karhunen–Loève transform and the statistics it is estimated from (pure functions over tensors).

Per codebook k, latent codewords ``E_k`` have mean ``m_k`` and covariance ``Σ_k``; with the first ``N_cov``
codebooks ``μ = Σ m_k`` and ``R = Σ Σ_k`` (the covariance of a sum of independent stages). Alternatively
``μ`` and ``R`` are the mean and covariance of encoder latents. ``R = U Λ Uᵀ`` with descending eigenvalues;
the transform keeps ``U_d``, the first d̃ columns.

Besides ``μ`` and ``R``, a quantizer that searches a projected residual (DAC) needs the mean of the residual
that enters each stage (:attr:`KltStatistics.residual_means`), estimated from the same source as ``μ``.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalkit._lazy import torch


def codebook_statistics(books: torch.Tensor, n_cov: int, weights: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-stage codeword means and the summed per-stage covariance of the first ``n_cov`` codebooks.

    Args:
        books: latent codebooks ``[N, K, D]``.
        n_cov: how many leading codebooks to use.
        weights: ``[N, K]`` codeword weights (e.g. code counts), normalised per codebook; uniform when ``None``.

    Returns:
        ``means`` ``[n_cov, D]`` (``m_k``; ``μ = means.sum(0)``) and ``R = Σ_k Σ_k`` ``[D, D]``, float64.

    >>> means, cov = codebook_statistics(torch.tensor([[[0.0], [2.0]], [[1.0], [1.0]]]), n_cov=2)
    >>> means.flatten().tolist(), cov.item()
    ([1.0, 1.0], 1.0)
    """
    books = books[:n_cov].double()
    if weights is None:
        weights = torch.ones(books.shape[:2], dtype=torch.float64)
    w = weights[:n_cov].double()
    w = w / w.sum(dim=1, keepdim=True)
    means = torch.einsum("nk,nkd->nd", w, books)
    centred = books - means[:, None, :]
    covs = torch.einsum("nk,nkd,nke->nde", w, centred, centred)
    return means, covs.sum(0)


def latent_statistics(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[D]`` and biased covariance ``[D, D]`` (float64) of latent frames ``[frames, D]``.

    >>> mean, cov = latent_statistics(torch.tensor([[1.0], [3.0]]))
    >>> mean.item(), cov.item()
    (2.0, 1.0)
    """
    x = latents.double()
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / len(x)


@dataclass(frozen=True)
class KltStatistics:
    """What a KLT variant is estimated from.

    Attributes:
        mean: ``μ`` ``[D]``, the mean of the latent.
        cov: ``R`` ``[D, D]``.
        residual_means: ``[n_used, D]``: row k is the expected residual entering stage k (row 0 is ``μ``).
    """

    mean: torch.Tensor
    cov: torch.Tensor
    residual_means: torch.Tensor


def from_codebooks(books: torch.Tensor, n_cov: int, n_used: int, weights: torch.Tensor | None = None
                   ) -> KltStatistics:
    """Statistics of the ``codebook`` (uniform ``weights``) and ``usage`` (code counts) estimators.

    The latent is modelled as the sum of the first ``n_cov`` stages, so the residual entering stage k has
    mean ``Σ_{k ≤ j < n_cov} m_j`` (zero from stage ``n_cov`` on).

    Args:
        books: latent codebooks ``[N, K, D]``, at least ``max(n_cov, n_used)`` of them.
        n_cov: codebooks in the statistics.
        n_used: stages the quantizer runs.
        weights: ``[N, K]`` codeword weights, or ``None``.
    """
    means, cov = codebook_statistics(books, n_cov, weights)
    tail = torch.flip(torch.cumsum(torch.flip(means, [0]), 0), [0])  # tail[k] = Σ_{j ≥ k} m_j
    residual = torch.zeros(n_used, books.shape[-1], dtype=torch.float64)
    rows = min(n_used, n_cov)
    residual[:rows] = tail[:rows]
    return KltStatistics(means.sum(0), cov, residual)


def from_data(latents: torch.Tensor, codes: torch.Tensor, books: torch.Tensor) -> KltStatistics:
    """Statistics of the ``data`` estimator: everything from the same calibration frames.

    Args:
        latents: encoder latents ``[frames, D]``.
        codes: the base quantizer's codes of those frames ``[n_used, frames]``.
        books: latent codebooks ``[N ≥ n_used, K, D]`` (for DAC, the out-projected codewords).

    Returns:
        ``μ`` and ``R`` of the latents, and residual means ``μ − Σ_{j<k} mean_t E_j[i_j(t)]``: the mean of
        the actual residual entering stage k.
    """
    mean, cov = latent_statistics(latents)
    stage_outputs = torch.stack([books[k].double()[codes[k]].mean(0) for k in range(codes.shape[0])])
    before = torch.cumsum(stage_outputs, 0) - stage_outputs  # Σ_{j<k}
    return KltStatistics(mean, cov, mean[None, :] - before)


@dataclass(frozen=True)
class KltTransform:
    """Mean ``[D]``, orthonormal eigenvectors ``[D, D]`` (columns, descending eigenvalues) and kept ``dim``."""

    mean: torch.Tensor
    basis: torch.Tensor
    eigenvalues: torch.Tensor
    dim: int

    @classmethod
    def from_statistics(cls, mean: torch.Tensor, cov: torch.Tensor, dim: int) -> KltTransform:
        """Eigen-decompose ``cov`` (float64); negative round-off eigenvalues are clamped to 0."""
        values, vectors = torch.linalg.eigh(cov.double())
        order = torch.argsort(values, descending=True)
        return cls(mean.double(), vectors[:, order], values[order].clamp(min=0.0), dim)

    def with_dim(self, dim: int) -> KltTransform:
        """The same transform keeping ``dim`` dimensions."""
        return KltTransform(self.mean, self.basis, self.eigenvalues, dim)

    @property
    def full_dim(self) -> int:
        """Latent dimension D."""
        return int(self.mean.shape[0])

    @property
    def projection(self) -> torch.Tensor:
        """``U_d`` ``[D, d]``."""
        return self.basis[:, : self.dim]

    @property
    def rank(self) -> int:
        """Numerical rank of ``R`` (eigenvalues above ``λ_max · D · eps``)."""
        tol = float(self.eigenvalues.max()) * self.full_dim * torch.finfo(torch.float64).eps
        return int((self.eigenvalues > tol).sum())

    def variance_kept(self, dim: int | None = None) -> float:
        """Share of ``trace R`` in the first ``dim`` (default: the kept) dimensions, in [0, 1]."""
        total = float(self.eigenvalues.sum())
        kept = self.dim if dim is None else dim
        return float(self.eigenvalues[:kept].sum()) / total if total > 0 else 1.0

    def dim_for_variance(self, share: float) -> int:
        """Fewest dimensions that keep at least ``share`` (in (0, 1]) of the variance; between 1 and D.

        Shares are compared with a tolerance of ``D · eps`` so that ``share = 1.0`` gives the number of
        non-zero eigenvalues despite round-off in the cumulative sum.

        >>> t = KltTransform.from_statistics(torch.zeros(4), torch.diag(torch.tensor([3.0, 1.0, 0, 0])), 4)
        >>> t.dim_for_variance(0.75), t.dim_for_variance(0.76), t.dim_for_variance(1.0)
        (1, 2, 2)
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        total = self.eigenvalues.sum()
        if total <= 0:
            return 1
        cumulative = torch.cumsum(self.eigenvalues, 0) / total
        tol = self.full_dim * torch.finfo(torch.float64).eps
        return min(self.full_dim, int((cumulative < share - tol).sum()) + 1)
