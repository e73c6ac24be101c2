"""Quantizers that run in a KLT-truncated latent space.

* Euclidean RVQ (EnCodec): ``C̃_1 = (C_1 − μ) U_d``, ``C̃_k = C_k U_d``; encode ``z̃ = U_dᵀ (z − μ)`` then the
  ordinary greedy RVQ with the C̃_k; decode ``ẑ = U_d Σ_k C̃_k[i_k] + μ`` into the original decoder.
* Projected cosine RVQ (DAC): work in the latent with the out-projected codewords ``E_k = W_out,k c + b_out,k``.
  Encoder: reduced in-projections ``W_in,k U_d`` whose biases absorb the expected out-of-span residual, search
  unchanged in the 8-d code space; decoder: ``U_dᵀ W_out,k`` (stage 1's bias also removes μ).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evalkit._lazy import torch
from evalkit.codecs.klt.transform import KltTransform


def _argmax_rows(scores: torch.Tensor) -> torch.Tensor:
    if scores.device.type == "cpu":  # numpy's SIMD argmax is ~5x faster than torch's on CPU; same tie rule
        return torch.from_numpy(np.argmax(scores.numpy(), axis=-1))
    return scores.argmax(dim=-1)


class RvqSearch:
    """Greedy nearest-neighbour residual VQ over fixed codebooks ``[N, K, d]``.

    ``argmin ‖r − c‖² = argmax (2 r·c − ‖c‖²)``: per stage one ``addmm`` into a reused score buffer and a
    row argmax; ``2 Cᵀ`` and ``−‖c‖²`` are precomputed once.
    """

    def __init__(self, books: torch.Tensor):
        self.books = books
        self.scaled_t = [(2 * b.T).contiguous() for b in books]
        self.neg_norms = [-b.pow(2).sum(1) for b in books]

    def search_rows(self, residual: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, M]`` of ``M`` row vectors ``[M, d]``; ``residual`` is overwritten with the residual."""
        scores = torch.empty(residual.shape[0], self.books.shape[1], dtype=residual.dtype, device=residual.device)
        codes = []
        for book, scaled_t, neg_norms in zip(self.books, self.scaled_t, self.neg_norms, strict=True):
            idx = _argmax_rows(torch.addmm(neg_norms, residual, scaled_t, out=scores))
            residual -= book[idx]
            codes.append(idx)
        return torch.stack(codes, dim=0)

    def __call__(self, latent: torch.Tensor, with_quantized: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """latent ``[B, d, T]`` → codes ``[B, N, T]`` (and the quantized latent ``[B, d, T]``)."""
        batch, dim, frames = latent.shape
        rows = latent.transpose(1, 2).reshape(-1, dim)
        residual = rows.clone()
        codes = self.search_rows(residual).view(-1, batch, frames).transpose(0, 1)
        if not with_quantized:
            return codes, None
        return codes, (rows - residual).view(batch, frames, dim).transpose(1, 2)


def greedy_rvq(latent: torch.Tensor, books: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour residual VQ: latent ``[B, d, T]``, codebooks ``[N, K, d]`` → codes ``[B, N, T]``
    and the quantized latent ``[B, d, T]``."""
    return RvqSearch(books)(latent, with_quantized=True)


class EuclideanKlt:
    """KLT-truncated greedy RVQ for codecs whose quantizer is Euclidean in the latent (EnCodec)."""

    def __init__(self, transform: KltTransform, books: torch.Tensor, dtype: torch.dtype | None = None):
        dtype = dtype or torch.float32  # (not a default argument: torch is imported lazily)
        u = transform.projection
        reduced = books.double() @ u
        reduced[0] = (books[0].double() - transform.mean) @ u
        self.books = reduced.to(dtype)
        self.u = u.to(dtype)
        self.mean = transform.mean.to(dtype)
        self._prepare()

    def _prepare(self) -> None:
        self.search = RvqSearch(self.books)
        self.neg_mean_u = -(self.mean @ self.u)  # (z − μ) U_d = z U_d − μ U_d, one fused addmm

    def to(self, device: torch.device) -> EuclideanKlt:
        """Move to ``device`` (in place) and return self."""
        self.books, self.u, self.mean = self.books.to(device), self.u.to(device), self.mean.to(device)
        self._prepare()
        return self

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, D, T]`` → codes ``[B, N, T]``."""
        batch, dim, frames = latent.shape
        rows = latent.to(self.u.dtype).transpose(1, 2).reshape(-1, dim)
        reduced = torch.addmm(self.neg_mean_u, rows, self.u)  # [B*T, d], contiguous: the search's residual
        return self.search.search_rows(reduced).view(-1, batch, frames).transpose(0, 1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, N, T]`` → latent ``[B, D, T]`` for the original decoder."""
        summed = sum(self.books[k][codes[:, k]] for k in range(codes.shape[1]))  # [B, T, d]
        return (summed @ self.u.T).transpose(1, 2) + self.mean[:, None]


class ProjectedKlt:
    """KLT-truncated DAC quantizer: reduced in/out projections, cosine search in the 8-d code spaces.

    Stage k's in-projection sees ``U_d r̃ = P r`` (``P = U_d U_dᵀ``), i.e. the residual without its component
    outside ``span(U_d)``. The stage's bias adds back the expected value of that component,
    ``W_in,k (I − P) r̄_k`` with ``r̄_k`` the mean residual entering stage k (``residual_means``); stage 1 sees
    ``P (z − μ)`` and its bias adds ``W_in,1 μ``. With the codebook estimator, ``n_cov`` = stages in use and
    d̃ = rank, latents in ``μ + span(U_d)`` get exactly the original codes.
    """

    def __init__(self, transform: KltTransform, residual_means: torch.Tensor, projections: Sequence,
                 code_books: torch.Tensor, dtype: torch.dtype | None = None):
        dtype = dtype or torch.float32  # (not a default argument: torch is imported lazily)
        u, mu = transform.projection, transform.mean
        outside = torch.eye(len(mu), dtype=torch.float64) - u @ u.T
        self.u, self.mean = u.to(dtype), mu.to(dtype)
        self.w_in, self.b_in, self.w_out, self.b_out = [], [], [], []
        for k, (proj_in, proj_out) in enumerate(projections):
            w_in, b_in = proj_in.weight.double(), proj_in.bias.double()
            w_out, b_out = proj_out.weight.double(), proj_out.bias.double()
            offset = mu if k == 0 else outside @ residual_means[k].double()
            self.w_in.append((w_in @ u).to(dtype))
            self.b_in.append((b_in + w_in @ offset).to(dtype))
            self.w_out.append((u.T @ w_out).to(dtype))
            self.b_out.append((u.T @ (b_out - (mu if k == 0 else 0))).to(dtype))
        self.code_books = code_books.to(dtype)
        self._prepare()

    def _prepare(self) -> None:
        self.normed = [torch.nn.functional.normalize(book) for book in self.code_books]  # cosine search
        self.normed_sq = [n.pow(2).sum(1, keepdim=True).T for n in self.normed]

    def to(self, device: torch.device) -> ProjectedKlt:
        """Move to ``device`` (in place) and return self."""
        self.u, self.mean, self.code_books = self.u.to(device), self.mean.to(device), self.code_books.to(device)
        for name in ("w_in", "b_in", "w_out", "b_out"):
            setattr(self, name, [t.to(device) for t in getattr(self, name)])
        self._prepare()
        return self

    def reduce(self, latent: torch.Tensor) -> torch.Tensor:
        """``z̃ = U_dᵀ (z − μ)``: latent ``[B, D, T]`` → ``[B, d, T]``."""
        return torch.einsum("dk,bdt->bkt", self.u, latent.to(self.u.dtype) - self.mean[:, None])

    def stage_input(self, k: int, residual: torch.Tensor) -> torch.Tensor:
        """Stage k's in-projection (before normalisation) of a reduced residual ``[B, d, T]`` → ``[B, 8, T]``."""
        return torch.einsum("ek,bkt->bet", self.w_in[k], residual) + self.b_in[k][:, None]

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, D, T]`` → codes ``[B, N, T]``."""
        residual = self.reduce(latent)
        codes = []
        for k, (normed, normed_sq) in enumerate(zip(self.normed, self.normed_sq, strict=True)):
            enc = self.stage_input(k, residual)
            enc = torch.nn.functional.normalize(enc.transpose(1, 2).reshape(-1, enc.shape[1]))
            dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ normed.T + normed_sq
            idx = (-dist).max(1)[1].view(latent.shape[0], -1)  # DAC's own formula, for identical tie-breaking
            residual = residual - self.stage_output(k, idx)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def stage_output(self, k: int, idx: torch.Tensor) -> torch.Tensor:
        """Stage k's reduced out-projected codewords for codes ``[B, T]`` → ``[B, d, T]``."""
        return torch.einsum("ke,bte->bkt", self.w_out[k], self.code_books[k][idx]) + self.b_out[k][:, None]

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, N, T]`` → latent ``[B, D, T]`` for the original decoder."""
        summed = sum(self.stage_output(k, codes[:, k]) for k in range(codes.shape[1]))
        return torch.einsum("dk,bkt->bdt", self.u, summed) + self.mean[:, None]
