"""KLT-truncated RVQ: post-training latent dimension reduction (Muller, Ragot, Philippe, Scalart).

The latent vectors an RVQ codec quantizes have strongly correlated elements. A Karhunen–Loève transform
estimated from the pretrained codebooks decorrelates them, and the dimensions with the smallest eigenvalues
are dropped. Per codebook k, codewords E_k have mean m_k and covariance Σ_k; with the first N_cov codebooks,
``μ = Σ m_k`` and ``R = Σ Σ_k`` (covariance of a sum of independent stages), ``R = U Λ Uᵀ`` (descending), ``U_d``
its first d̃ columns. Estimators: ``codebook`` (uniform codeword weights), ``usage`` (codeword weights from code
counts on a calibration set) and ``data`` (mean/covariance of encoder latents on a calibration set).

* Euclidean RVQ (EnCodec): ``C̃_1 = (C_1 − μ) U_d``, ``C̃_k = C_k U_d``; encode ``z̃ = U_dᵀ (z − μ)`` then the
  ordinary greedy RVQ with the C̃_k; decode ``ẑ = U_d Σ_k C̃_k[i_k] + μ`` into the original decoder.
* Projected cosine RVQ (DAC): work in the latent with the out-projected codewords ``E_k = W_out,k c + b_out,k``.
  Encoder: reduced in-projections ``W_in,k U_d`` (stage 1's bias absorbs ``W_in,1 μ``), search unchanged in the
  8-d code space; decoder: ``U_dᵀ W_out,k`` (stage 1's bias also removes μ). R has rank ≤ 8·N_cov. With
  N_cov = number of codebooks in use and d̃ = rank the decoder input is reproduced exactly; the encoder side
  is exact only for latents inside ``μ + span(U_d)``, since DAC's in-projections also see the rest.

The bitrate does not change; storage and search cost do (:class:`KltAccounting`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param, SpecError, split_spec

ESTIMATORS = ("codebook", "usage", "data")
RVQ_BASES = ("encodec-24khz", "encodec-48khz", "dac-44khz", "dac-24khz", "dac-16khz", "dac-44khz-16kbps")


# --- estimation ----------------------------------------------------------------------------------

def codebook_statistics(books: torch.Tensor, n_cov: int, weights: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-stage means ``m_k`` ``[n_cov, D]`` and ``R = Σ_k Σ_k`` over the first ``n_cov`` codebooks
    ``[N, K, D]`` (float64); ``μ = Σ_k m_k`` is ``means.sum(0)``.

    ``weights`` ``[N, K]`` (e.g. code counts) weight the codewords; uniform when ``None``.
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
    """Mean and (biased) covariance of latent frames ``[frames, D]``."""
    x = latents.double()
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / len(x)


@dataclass(frozen=True)
class KltTransform:
    """Mean ``[D]``, orthonormal eigenvectors ``[D, D]`` (columns, descending eigenvalues) and kept ``dim``."""

    mean: torch.Tensor
    basis: torch.Tensor
    eigenvalues: torch.Tensor
    dim: int

    @classmethod
    def from_statistics(cls, mean: torch.Tensor, cov: torch.Tensor, dim: int) -> KltTransform:
        values, vectors = torch.linalg.eigh(cov.double())
        order = torch.argsort(values, descending=True)
        return cls(mean.double(), vectors[:, order], values[order].clamp(min=0.0), dim)

    @property
    def full_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def projection(self) -> torch.Tensor:
        """``U_d`` ``[D, d]``."""
        return self.basis[:, : self.dim]

    @property
    def rank(self) -> int:
        tol = float(self.eigenvalues.max()) * self.full_dim * torch.finfo(torch.float64).eps
        return int((self.eigenvalues > tol).sum())

    def variance_kept(self, dim: int | None = None) -> float:
        total = float(self.eigenvalues.sum())
        return float(self.eigenvalues[: dim or self.dim].sum()) / total if total > 0 else 1.0

    def dim_for_variance(self, share: float) -> int:
        cumulative = torch.cumsum(self.eigenvalues, 0) / self.eigenvalues.sum()
        return int(torch.searchsorted(cumulative, torch.tensor(share, dtype=torch.float64)).item()) + 1


# --- quantizers in the reduced space -------------------------------------------------------------

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

    def __init__(self, transform: KltTransform, books: torch.Tensor, dtype: torch.dtype = torch.float32):
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
        self.books, self.u, self.mean = self.books.to(device), self.u.to(device), self.mean.to(device)
        self._prepare()
        return self

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        batch, dim, frames = latent.shape
        rows = latent.to(self.u.dtype).transpose(1, 2).reshape(-1, dim)
        reduced = torch.addmm(self.neg_mean_u, rows, self.u)  # [B*T, d], contiguous: the search's residual
        return self.search.search_rows(reduced).view(-1, batch, frames).transpose(0, 1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        summed = sum(self.books[k][codes[:, k]] for k in range(codes.shape[1]))  # [B, T, d]
        return (summed @ self.u.T).transpose(1, 2) + self.mean[:, None]


class ProjectedKlt:
    """KLT-truncated DAC quantizer: reduced in/out projections, cosine search in the 8-d code spaces.

    Stage k's in-projection sees ``U_d r̃``, i.e. the residual without its component outside ``span(U_d)``.
    For latents in ``μ + span(U_d)`` that component is the constant ``(I − P) Σ_{j=k}^{N_cov} m_j``
    (P = U_d U_dᵀ), which the stage's bias absorbs (for k = 1 this is the ``W_in,1 μ`` term); so with
    N_cov = stages in use and d̃ = rank, such latents get exactly the original codes.
    """

    def __init__(self, transform: KltTransform, stage_means: torch.Tensor, projections, code_books: torch.Tensor,
                 dtype: torch.dtype = torch.float32):
        u, mu = transform.projection, transform.mean
        outside = torch.eye(len(mu), dtype=torch.float64) - u @ u.T
        self.u, self.mean = u.to(dtype), mu.to(dtype)
        self.w_in, self.b_in, self.w_out, self.b_out = [], [], [], []
        for k, (proj_in, proj_out) in enumerate(projections):
            w_in, b_in = proj_in.weight.double(), proj_in.bias.double()
            w_out, b_out = proj_out.weight.double(), proj_out.bias.double()
            offset = mu if k == 0 else outside @ stage_means[k:].sum(0)
            self.w_in.append((w_in @ u).to(dtype))
            self.b_in.append((b_in + w_in @ offset).to(dtype))
            self.w_out.append((u.T @ w_out).to(dtype))
            self.b_out.append((u.T @ (b_out - (mu if k == 0 else 0))).to(dtype))
        self.code_books = code_books.to(dtype)

    def to(self, device: torch.device) -> ProjectedKlt:
        self.u, self.mean, self.code_books = self.u.to(device), self.mean.to(device), self.code_books.to(device)
        for name in ("w_in", "b_in", "w_out", "b_out"):
            setattr(self, name, [t.to(device) for t in getattr(self, name)])
        return self

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        residual = torch.einsum("dk,bdt->bkt", self.u, latent.to(self.u.dtype) - self.mean[:, None])
        codes = []
        for k, book in enumerate(self.code_books):
            enc = torch.einsum("ek,bkt->bet", self.w_in[k], residual) + self.b_in[k][:, None]
            enc = torch.nn.functional.normalize(enc.transpose(1, 2).reshape(-1, enc.shape[1]))
            normed = torch.nn.functional.normalize(book)
            dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ normed.T + normed.pow(2).sum(1, keepdim=True).T
            idx = (-dist).max(1)[1].view(latent.shape[0], -1)  # DAC's own formula, for identical tie-breaking
            residual = residual - self._stage(k, idx)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def _stage(self, k: int, idx: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ke,bte->bkt", self.w_out[k], self.code_books[k][idx]) + self.b_out[k][:, None]

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        summed = sum(self._stage(k, codes[:, k]) for k in range(codes.shape[1]))
        return torch.einsum("dk,bkt->bdt", self.u, summed) + self.mean[:, None]


# --- accounting ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KltAccounting:
    """Storage (floats) and search cost (multiply-adds per frame) before and after truncation.

    Storage counts every codebook the model stores (``stored_codebooks``); search counts those in use.
    ``saving_total = 1 − (N·K·d̃ + s_U + s_μ) / (N·K·D)`` with ``s_U = D²`` (the transform, as the paper
    counts it) and ``s_μ = D``; ``saving_codebooks`` counts codebooks only.
    """

    stored_codebooks: int
    used_codebooks: int
    cardinality: int
    full_dim: int
    dim: int

    @property
    def codebook_floats_full(self) -> int:
        return self.stored_codebooks * self.cardinality * self.full_dim

    @property
    def codebook_floats(self) -> int:
        return self.stored_codebooks * self.cardinality * self.dim

    @property
    def transform_floats(self) -> int:
        return self.full_dim * self.full_dim

    @property
    def mean_floats(self) -> int:
        return self.full_dim

    @property
    def search_macs_full(self) -> int:
        return self.used_codebooks * self.cardinality * self.full_dim

    @property
    def search_macs(self) -> int:
        return self.full_dim * self.dim + self.used_codebooks * self.cardinality * self.dim

    @property
    def saving_codebooks(self) -> float:
        return 1 - self.codebook_floats / self.codebook_floats_full

    @property
    def saving_total(self) -> float:
        return 1 - (self.codebook_floats + self.transform_floats + self.mean_floats) / self.codebook_floats_full

    @property
    def saving_search(self) -> float:
        return 1 - self.search_macs / self.search_macs_full

    def as_dict(self) -> dict:
        props = ("codebook_floats_full", "codebook_floats", "transform_floats", "mean_floats", "search_macs_full",
                 "search_macs", "saving_codebooks", "saving_total", "saving_search")
        return {**asdict(self), **{p: getattr(self, p) for p in props}}


# --- the codec -----------------------------------------------------------------------------------

class KltCodec(Codec):
    """An RVQ codec whose quantizer runs in a KLT-truncated latent space; same codes format and bitrate."""

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        from evalkit.codecs import build_codec

        super().__init__(spec, device)
        params = dict(spec.params)
        own = {k: params.pop(k) for k in ("base", "dim", "n_cov", "estimator", "calibration", "calibration_s")}
        self.base: Codec = build_codec(CodecSpec(own["base"], params), device)
        self.dim_param, self.n_cov, self.estimator = own["dim"], int(own["n_cov"]), own["estimator"]
        self.calibration, self.calibration_s = own["calibration"], float(own["calibration_s"])
        self.weights_label = self.base.weights_label
        self.transform: KltTransform | None = None
        self._quantizer = None

    sample_rate = property(lambda self: self.base.sample_rate)
    channels = property(lambda self: self.base.channels)
    frame_rate = property(lambda self: self.base.frame_rate)
    num_codebooks = property(lambda self: self.base.num_codebooks)
    cardinality = property(lambda self: self.base.cardinality)
    side_info_bps = property(lambda self: self.base.side_info_bps)
    arch = property(lambda self: self.base.arch)  # the base model's architecture (weights name, ...)

    @property
    def projected(self) -> bool:
        return self.spec.params["base"].startswith("dac")

    @property
    def full_dim(self) -> int:
        return self.base.latent_dim

    @property
    def dim(self) -> int:
        if self.dim_param != "full":
            return int(self.dim_param)
        return self.load().transform.rank if self.projected else self.full_dim

    def latent_books(self) -> torch.Tensor:
        """All of the base model's codebooks in latent space ``[N_model, K, D]`` (float32, CPU)."""
        base = self.base.load()
        if self.projected:
            full = type(base)(CodecSpec(base.spec.family, {**base.spec.params,
                                                           "n_codebooks": base.arch.n_codebooks}), "cpu")
            full._model = base.model
            return full.latent_codebooks().cpu()
        layers = base.model.quantizer.vq.layers
        return torch.stack([layer._codebook.embed.detach() for layer in layers]).cpu()

    def load(self) -> KltCodec:
        if self._quantizer is not None:
            return self
        base = self.base.load()
        books = self.latent_books()
        weights = self._calibration_counts(books.shape[1]) if self.estimator == "usage" else None
        stage_means, cov = codebook_statistics(books, self.n_cov, weights)
        mean = stage_means.sum(0)
        if self.estimator == "data":
            mean, cov = latent_statistics(self._calibration_latents())
        transform = KltTransform.from_statistics(mean, cov, self.full_dim)
        dim = transform.rank if self.dim_param == "full" and self.projected else (
            self.full_dim if self.dim_param == "full" else int(self.dim_param))
        self.transform = KltTransform(transform.mean, transform.basis, transform.eigenvalues, dim)
        if self.projected:
            quantizer = ProjectedKlt(self.transform, stage_means, base.projections(), base.codebooks().cpu())
        else:
            quantizer = EuclideanKlt(self.transform, books[: base.num_codebooks])
        self._quantizer = quantizer.to(base.device)
        return self

    @property
    def quantizer(self):
        return self.load()._quantizer

    def encode(self, wav: torch.Tensor) -> Encoded:
        return self.base.encode_with(wav, self.quantizer.quantize)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        return self.base.decode_with(encoded, self.quantizer.dequantize)

    def codebooks(self) -> torch.Tensor:
        return self.base.codebooks() if self.projected else self.quantizer.books

    def accounting(self) -> KltAccounting:
        stored = self.base.arch.n_codebooks if self.projected else len(self.base.model.quantizer.vq.layers)
        return KltAccounting(stored, self.num_codebooks, self.cardinality, self.full_dim, self.dim)

    def info(self) -> dict:
        self.load()
        return {"klt": {"dim": self.dim, "full_dim": self.full_dim, "n_cov": self.n_cov, "estimator": self.estimator,
                        "rank": self.transform.rank, "variance_kept": self.transform.variance_kept(),
                        "eigenvalues": self.transform.eigenvalues.tolist(), **self.accounting().as_dict()}}

    # calibration (usage / data estimators)
    def _calibration_audio(self):
        from evalkit import audio as audio_lib

        files = sorted(p for p in Path(self.calibration).rglob("*") if p.suffix.lower() in {".wav", ".flac"})
        budget = self.calibration_s
        for path in files:
            if budget <= 0:
                return
            clip = audio_lib.load(path, channel_policy="mono" if self.channels == 1 else "per_channel")
            x = audio_lib.resample(clip.samples, clip.sample_rate, self.sample_rate)
            x = x[:, : int(budget * self.sample_rate)]
            if self.channels == 2 and x.shape[0] == 1:
                x = np.repeat(x, 2, axis=0)
            budget -= x.shape[1] / self.sample_rate
            yield torch.from_numpy(np.ascontiguousarray(x[: self.channels]))[None]

    def _calibration_latents(self) -> torch.Tensor:
        frames = []

        def capture(latent):
            frames.append(latent.detach().transpose(1, 2).reshape(-1, latent.shape[1]).cpu())
            return self.base.quantize(latent)

        with torch.inference_mode():
            for wav in self._calibration_audio():
                self.base.encode_with(wav, capture)
        return torch.cat(frames)

    def _calibration_counts(self, cardinality: int) -> torch.Tensor:
        counts = torch.zeros(self.n_cov, cardinality, dtype=torch.float64)
        with torch.inference_mode():
            for wav in self._calibration_audio():
                codes = self.base.encode(wav).codes[:, : self.n_cov].cpu()
                for k in range(self.n_cov):
                    counts[k] += torch.bincount(codes[:, k].reshape(-1), minlength=cardinality).double()
        return counts + 1e-12  # unused codewords keep a negligible weight


# --- family ----------------------------------------------------------------------------------------

OWN_PARAMS = (
    Param("base", str, "encodec-24khz", "RVQ codec to wrap (its own parameters go in the same spec)",
          choices=RVQ_BASES),
    Param("dim", str, "full", "kept dimensions d̃: an integer, or 'full' (D; the rank for DAC)"),
    Param("n_cov", int, 2, "codebooks whose statistics estimate the mean and covariance", minimum=1),
    Param("estimator", str, "codebook", "codebook | usage | data (the last two need calibration)",
          choices=ESTIMATORS),
    Param("calibration", str, "", "folder of audio for the usage/data estimators"),
    Param("calibration_s", float, 60.0, "seconds of calibration audio to use", minimum=1.0),
)


class KltFamily(CodecFamily):
    """The ``klt`` family: its own parameters plus those of its base codec, validated against the base."""

    def resolve(self, raw) -> CodecSpec:
        from evalkit.codecs import FAMILIES, build_codec

        raw = dict(raw)
        base_name = raw.pop("base", OWN_PARAMS[0].default)
        if base_name not in RVQ_BASES:
            kind = "has no quantizer" if base_name in FAMILIES else "is not a codec family"
            raise SpecError(f"klt: base {base_name!r} {kind}; KLT needs an RVQ codec: {', '.join(RVQ_BASES)}")
        own = {p.name: p.parse(raw.pop(p.name), "klt") if p.name in raw else p.default for p in OWN_PARAMS[1:]}
        base_spec = FAMILIES[base_name].resolve(raw)  # unknown parameters are reported by the base family
        base = build_codec(base_spec, device="cpu")
        full_dim = base.latent_dim
        if own["dim"] != "full":
            try:
                own["dim"] = int(own["dim"])
            except ValueError:
                raise SpecError(f"klt: dim={own['dim']!r} is not an integer or 'full'") from None
            if not 1 <= own["dim"] <= full_dim:
                raise SpecError(f"klt: dim={own['dim']} is outside 1..{full_dim} (the latent dimension D of "
                                f"{base_name})")
        if own["n_cov"] > base.num_codebooks:
            raise SpecError(f"klt: n_cov={own['n_cov']} exceeds the {base.num_codebooks} codebooks in use by "
                            f"{base_spec.short(FAMILIES[base_name].defaults)}")
        if own["estimator"] != "codebook" and not own["calibration"]:
            raise SpecError(f"klt: estimator={own['estimator']} needs calibration=FOLDER")
        if own["calibration"] and not Path(own["calibration"]).is_dir():
            raise SpecError(f"klt: calibration folder {own['calibration']} not found")
        return CodecSpec(self.name, {"base": base_name, **base_spec.params, **own})


FAMILIES = (
    KltFamily("klt", "KLT-truncated latent of an RVQ codec (post-training dimension reduction); bitrate of its "
                     "base; e.g. klt?base=encodec-24khz&bandwidth=6&dim=72&n_cov=2",
              OWN_PARAMS, KltCodec),
)


def klt_spec_from_base(base_spec: str, **own) -> str:
    """``klt?base=...`` spec text from a base spec string and KLT parameters."""
    family, raw = split_spec(base_spec)
    raw.update({k: str(v) for k, v in own.items() if v is not None})
    query = "&".join(f"{k}={v}" for k, v in raw.items())
    return f"klt?base={family}" + (f"&{query}" if query else "")


__all__ = ["KltAccounting", "KltCodec", "KltTransform", "RvqSearch", "codebook_statistics", "greedy_rvq"]
