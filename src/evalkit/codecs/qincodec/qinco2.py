"""QINCo2 (Vallaeys et al., ICLR 2025): residual quantization with implicit neural codebooks, and plain RVQ.

Both quantize normalised latents ``(x − μ) / σ`` (per-dimension mean, one global scale) with M steps of K
codewords. QINCo2's step m adds ``f_m(C_m[i_m], x̂_{m−1})`` to the partial reconstruction: the codeword is
projected to width d_e, mixed with x̂_{m−1} by a linear layer (residual), refined by L residual MLP blocks
(width d_h) and projected back, with an outer residual to the codeword. The mixing, block-output and
out-projection layers start at zero, so an untrained QINCo2 is plain residual quantization with codebooks C_m.

Encoding is a beam search: per beam, a cheap per-step codebook G_m pre-selects the A codewords closest to the
residual; f_m is evaluated for those only; the best B beams are kept (one at the last step). Decoding the first
m codes gives lower bitrates from the same model.
"""

from __future__ import annotations

import torch
from torch import nn

from evalkit.codecs.qincodec.config import QuantizerConfig


class StepNetwork(nn.Module):
    """``f(c, x̂) = c + P_out(h_L)``, ``h_0 = e + W_mix [e; x̂]``, ``h_l = h_{l−1} + MLP_l(h_{l−1})``, ``e = P_in c``."""

    def __init__(self, dim: int, embed_dim: int, hidden_dim: int, blocks: int):
        super().__init__()
        self.proj_in = nn.Identity() if embed_dim == dim else nn.Linear(dim, embed_dim, bias=False)
        self.mix = nn.Linear(embed_dim + dim, embed_dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embed_dim))
            for _ in range(blocks))
        self.proj_out = nn.Linear(embed_dim, dim, bias=False)
        for layer in (self.mix, *(b[-1] for b in self.blocks)):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for block in self.blocks:
            nn.init.kaiming_uniform_(block[0].weight, nonlinearity="relu")
        # P_out = I when d_e = D (as the reference's identity projections): gradients reach the mixing and block
        # layers from the first step, and f(c, x̂) = 2c until they move (init_from_rq halves C_m to match).
        # With d_e ≠ D, P_out starts at zero: f(c, x̂) = c.
        if embed_dim == dim:
            nn.init.eye_(self.proj_out.weight)
        else:
            nn.init.zeros_(self.proj_out.weight)

    @property
    def initial_gain(self) -> float:
        """``f(c, x̂) = gain · c`` at initialisation (2 with identity projections, else 1)."""
        return 2.0 if isinstance(self.proj_in, nn.Identity) else 1.0

    def forward(self, codeword: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
        e = self.proj_in(codeword)
        partial = partial.expand(*e.shape[:-1], partial.shape[-1])
        h = e + self.mix(torch.cat([e, partial], dim=-1))
        for block in self.blocks:
            h = h + block(h)
        return codeword + self.proj_out(h)


class LatentNorm(nn.Module):
    """Per-dimension mean and one global scale, estimated once from training latents."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def fit(self, x: torch.Tensor) -> LatentNorm:
        self.mean.copy_(x.mean(0))
        self.scale.copy_((x - self.mean).pow(2).mean().sqrt().clamp(min=1e-8))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.mean


def _sq_dist(x: torch.Tensor, books: torch.Tensor) -> torch.Tensor:
    """``||x − b||²`` for ``x [..., D]`` against ``books [K, D]`` → ``[..., K]``."""
    return (x.pow(2).sum(-1, keepdim=True) - 2 * x @ books.T + books.pow(2).sum(-1)).clamp_(min=0)


class ResidualVQ(nn.Module):
    """Plain residual VQ (the baseline: residual k-means codebooks, same M and K), greedy or beam search."""

    def __init__(self, dim: int, steps: int, size: int):
        super().__init__()
        self.norm = LatentNorm(dim)
        self.codebooks = nn.Parameter(torch.zeros(steps, size, dim))

    @property
    def steps(self) -> int:
        return self.codebooks.shape[0]

    @torch.no_grad()
    def encode(self, x: torch.Tensor, steps: int | None = None, beam: int = 1) -> torch.Tensor:
        """Raw latents ``[N, D]`` → codes ``[N, steps]``; ``beam`` as QINCo2's B (1: greedy)."""
        return self.encode_normalized(self.norm(x), steps, beam)

    @torch.no_grad()
    def encode_normalized(self, x: torch.Tensor, steps: int | None = None, beam: int = 1) -> torch.Tensor:
        """Normalised ``[N, D]`` → codes ``[N, steps]``.

        Beam search with the semantics of :meth:`Qinco2.encode_normalized`: the B best partial sums are kept
        after every step (one at the last), each extended by all K codewords (no pre-selection: scoring a
        plain codeword costs one dot product).
        """
        steps = steps or self.steps
        if beam <= 1 or steps == 1:
            residual, codes = x.clone(), []
            for m in range(steps):
                idx = _sq_dist(residual, self.codebooks[m]).argmin(-1)
                residual -= self.codebooks[m][idx]
                codes.append(idx)
            return torch.stack(codes, dim=-1)
        n, size = x.shape[0], self.codebooks.shape[1]
        rows = torch.arange(n, device=x.device)[:, None]
        idx = _sq_dist(x, self.codebooks[0]).topk(min(beam, size), dim=-1, largest=False).indices
        codes, residual = idx.unsqueeze(-1), x[:, None] - self.codebooks[0][idx]  # [N, B, 1], [N, B, D]
        for m in range(1, steps):
            keep = 1 if m == steps - 1 else beam
            err = _sq_dist(residual, self.codebooks[m]).flatten(1)  # [N, B·K]
            best = err.topk(min(keep, err.shape[1]), dim=-1, largest=False).indices
            beam_of, word = best // size, best % size
            codes = torch.cat([codes[rows, beam_of], word.unsqueeze(-1)], dim=-1)
            residual = residual[rows, beam_of] - self.codebooks[m][word]
        return codes[:, 0]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, m]`` → raw latents ``[N, D]`` from the first m codebooks."""
        out = sum(self.codebooks[m][codes[:, m]] for m in range(codes.shape[-1]))
        return self.norm.inverse(out)

    def latent_codebooks(self) -> torch.Tensor:
        """Codebooks in raw latent space ``[M, K, D]``: their sum over one codeword each is the decoded latent."""
        books = self.codebooks.detach() * self.norm.scale
        books[0] = books[0] + self.norm.mean
        return books


class Qinco2(nn.Module):
    """QINCo2 with M steps of K codewords over D-dimensional latents."""

    def __init__(self, dim: int, cfg: QuantizerConfig):
        super().__init__()
        steps, size = cfg.steps, cfg.codebook_size
        self.norm = LatentNorm(dim)
        self.codebooks = nn.Parameter(torch.zeros(steps, size, dim))  # C_m (step 1: plain codebook)
        self.preselect = nn.Parameter(torch.zeros(steps, size, dim))  # G_m (unused at step 1)
        self.steps_nets = nn.ModuleList(StepNetwork(dim, cfg.embed_dim, cfg.hidden_dim, cfg.blocks)
                                        for _ in range(steps - 1))

    @property
    def steps(self) -> int:
        return self.codebooks.shape[0]

    @property
    def size(self) -> int:
        return self.codebooks.shape[1]

    @torch.no_grad()
    def init_from_rq(self, rq: ResidualVQ, noise: float = 0.0, generator: torch.Generator | None = None) -> None:
        """Start from residual k-means codebooks (plus Gaussian noise of ``noise`` × each codebook's std, as the
        reference's ``codebook_noise_init``); without noise the untrained model encodes exactly like plain RQ.

        Before training ``f_m(c, x̂) = gain · c`` (:attr:`StepNetwork.initial_gain`), so ``C_m = RQ_m / gain``
        (m ≥ 2) and the increments equal the RQ codewords; ``G_m`` pre-selects on the residual: ``G_m = RQ_m``.
        """
        self.norm.load_state_dict(rq.norm.state_dict())
        books = rq.codebooks.detach().clone()
        if noise:
            for m in range(self.steps):
                books[m] += torch.randn(books[m].shape, generator=generator) * books[m].std() * noise
        self.preselect.copy_(books)
        for m in range(1, self.steps):
            books[m] /= self.steps_nets[m - 1].initial_gain
        self.codebooks.copy_(books)

    def step(self, m: int, codeword: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
        """The increment of step ``m`` (0-based) for ``codeword`` given the partial reconstruction."""
        return codeword if m == 0 else self.steps_nets[m - 1](codeword, partial)

    @torch.no_grad()
    def encode_normalized(self, x: torch.Tensor, candidates: int, beam: int,
                          steps: int | None = None) -> torch.Tensor:
        """Normalised ``[N, D]`` → codes ``[N, steps]`` by beam search (A = ``candidates``, B = ``beam``)."""
        steps = steps or self.steps
        n, size = x.shape[0], self.size
        a = min(candidates, size)
        b = 1 if steps == 1 else min(beam, size)
        dist = _sq_dist(x, self.codebooks[0])  # step 1: plain codebook, exhaustive
        idx = dist.topk(b, dim=-1, largest=False).indices
        codes = idx.unsqueeze(-1)  # [N, B, 1]
        partial = self.codebooks[0][idx]  # [N, B, D]
        for m in range(1, steps):
            keep = 1 if m == steps - 1 else min(beam, size)
            if a >= size:
                cand = torch.arange(size, device=x.device).expand(n, partial.shape[1], size)
            else:
                cand = _sq_dist(x[:, None] - partial, self.preselect[m]).topk(a, dim=-1, largest=False).indices
            words = self.codebooks[m][cand]  # [N, B, A, D]
            new = partial.unsqueeze(2) + self.step(m, words, partial.unsqueeze(2))
            err = (x[:, None, None] - new).pow(2).sum(-1).flatten(1)  # [N, B·A]
            best = err.topk(min(keep, err.shape[1]), dim=-1, largest=False).indices
            beam_of, cand_of = best // cand.shape[-1], best % cand.shape[-1]
            rows = torch.arange(n, device=x.device)[:, None]
            chosen = cand[rows, beam_of, cand_of]
            codes = torch.cat([codes[rows, beam_of], chosen.unsqueeze(-1)], dim=-1)
            partial = new.flatten(1, 2)[rows, best]
        return codes[:, 0]

    def decode_normalized(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """Codes ``[N, m]`` → every prefix reconstruction ``[x̂_1, …, x̂_m]`` (normalised, differentiable)."""
        partial = self.codebooks[0][codes[:, 0]]
        out = [partial]
        for m in range(1, codes.shape[-1]):
            partial = partial + self.step(m, self.codebooks[m][codes[:, m]], partial)
            out.append(partial)
        return out

    @torch.no_grad()
    def encode(self, x: torch.Tensor, candidates: int, beam: int, steps: int | None = None) -> torch.Tensor:
        """Raw latents ``[N, D]`` → codes ``[N, steps]``."""
        return self.encode_normalized(self.norm(x), candidates, beam, steps)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, m]`` → raw latents ``[N, D]`` from the first m steps."""
        return self.norm.inverse(self.decode_normalized(codes)[-1])
