"""The ``klt`` codec family: an RVQ codec whose quantizer runs in a KLT-truncated latent space.

Same codes format and bitrate as the base codec; storage and search cost change (:mod:`.accounting`).
The family wraps other families: :func:`families` is handed the registry it resolves and builds base codecs
with (this package never imports :mod:`evalkit.codecs` itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalkit._lazy import torch
from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.dac import DacCodec
from evalkit.codecs.klt.accounting import KltAccounting, QuantizerKind
from evalkit.codecs.klt.calibration import calibration_clips, gather
from evalkit.codecs.klt.quantizers import EuclideanKlt, ProjectedKlt
from evalkit.codecs.klt.transform import KltStatistics, KltTransform, from_codebooks, from_data
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param, SpecError, split_spec

ESTIMATORS = ("codebook", "usage", "data")
RVQ_BASES = ("encodec-24khz", "encodec-48khz", "dac-44khz", "dac-24khz", "dac-16khz", "dac-44khz-16kbps",
             "qincodec-rvq")


class FamilyLookup(Protocol):
    """What the ``klt`` family needs of the codec registry: the families it wraps, and building one."""

    def __getitem__(self, name: str) -> CodecFamily: ...

    def __contains__(self, name: object) -> bool: ...

    def build(self, spec: CodecSpec, device: Any = "auto") -> Codec: ...


class KltRankError(SpecError):
    """``dim`` above the rank of the covariance estimate: the extra directions would be arbitrary."""


def rank_problem(dim: int, rank: int, full_dim: int, estimator: str, n_cov: int, why: str = "") -> str | None:
    """The one-line refusal of ``rank < dim < D`` (``None`` when ``dim`` fits; ``dim = D`` keeps the whole
    space, an exact rotation, whatever the rank).

    >>> rank_problem(32, 16, 1024, "codebook", 2).split(":")[1]
    ' dim=32 exceeds the rank 16 of the covariance estimate (estimator codebook, n_cov=2)'
    >>> rank_problem(16, 16, 1024, "codebook", 2), rank_problem(1024, 16, 1024, "codebook", 2)
    (None, None)
    """
    if dim <= rank or dim >= full_dim:
        return None
    detail = f"estimator {estimator}, n_cov={n_cov}" + (f"; {why}" if why else "")
    more = "a larger n_cov" if estimator != "data" else "more calibration audio"
    return (f"klt: dim={dim} exceeds the rank {rank} of the covariance estimate ({detail}): its directions beyond "
            f"{rank} would be arbitrary; use dim <= {rank}, dim={full_dim} (no truncation) or {more}")


class KltCodec(Codec):
    """An RVQ codec whose quantizer runs in a KLT-truncated latent space; same codes format and bitrate."""

    def __init__(self, spec: CodecSpec, base: Codec, device: str | torch.device = "auto"):
        """``base``: the (unloaded) base codec of :func:`base_spec` ``(spec)``."""
        super().__init__(spec, device)
        own = {k: spec.params[k] for k in OWN_NAMES}
        self.base: Codec = base
        self.dim_param, self.n_cov, self.estimator = own["dim"], int(own["n_cov"]), own["estimator"]
        self.calibration, self.calibration_s = own["calibration"], float(own["calibration_s"])
        self.weights_label = self.base.weights_label
        self.transform: KltTransform | None = None
        self._quantizer: EuclideanKlt | ProjectedKlt | None = None

    sample_rate = property(lambda self: self.base.sample_rate)
    channels = property(lambda self: self.base.channels)
    frame_rate = property(lambda self: self.base.frame_rate)
    num_codebooks = property(lambda self: self.base.num_codebooks)
    cardinality = property(lambda self: self.base.cardinality)
    side_info_bps = property(lambda self: self.base.side_info_bps)
    arch = property(lambda self: self.base.arch)  # the base model's architecture (weights name, ...)
    chunking = property(lambda self: self.base.chunking)  # windows the base model codes alike whatever quantizes

    def weights_identity(self) -> str | None:
        return self.base.weights_identity()

    @property
    def kind(self) -> QuantizerKind:
        """Projected (DAC) or Euclidean (EnCodec) quantizer."""
        return QuantizerKind.PROJECTED if isinstance(self.base, DacCodec) else QuantizerKind.EUCLIDEAN

    @property
    def projected(self) -> bool:
        return self.kind is QuantizerKind.PROJECTED

    @property
    def needs_calibration(self) -> bool:
        """Whether the estimator reads the calibration folder."""
        return self.estimator != "codebook"

    @property
    def full_dim(self) -> int:
        """Latent dimension D of the base codec."""
        return self.base.latent_dim

    @property
    def code_dim(self) -> int:
        """Dimension of the stored codewords: 8 for DAC, D for EnCodec."""
        return self.base.arch.codebook_dim if self.projected else self.full_dim

    @property
    def dim(self) -> int:
        """Kept dimensions d̃ (``dim=full``: D, or the rank of R for DAC, which needs the model)."""
        if self.dim_param != "full":
            return int(self.dim_param)
        return self.load().transform.rank if self.projected else self.full_dim

    def statistics(self) -> KltStatistics:
        """Mean, covariance and per-stage residual means from the chosen estimator.

        Raises:
            CalibrationError: ``usage``/``data`` with a calibration folder that yields no usable audio.
        """
        base = self.base.load()
        books = base.latent_codebooks(base.stored_codebooks).cpu()
        if self.estimator == "codebook":
            return from_codebooks(books, self.n_cov, base.num_codebooks)
        clips = calibration_clips(self.calibration, base.sample_rate, base.channels, self.calibration_s,
                                  base.min_samples)
        if self.estimator == "data":
            codes, latents = gather(clips, base.encode_with, base.quantize, base.num_codebooks, with_latents=True)
            return from_data(latents, codes, books)
        codes, _ = gather(clips, base.encode_with, base.quantize, self.n_cov, with_latents=False)
        counts = torch.stack([torch.bincount(row, minlength=books.shape[1]).double() for row in codes])
        return from_codebooks(books, self.n_cov, base.num_codebooks, counts + 1e-12)  # unused: negligible weight

    def load(self) -> KltCodec:
        if self._quantizer is not None:
            return self
        base = self.base.load()
        stats = self.statistics()
        transform = KltTransform.from_statistics(stats.mean, stats.cov, self.full_dim)
        if self.dim_param != "full":
            dim = int(self.dim_param)
            problem = rank_problem(dim, transform.rank, self.full_dim, self.estimator, self.n_cov)
            if problem:
                raise KltRankError(problem)
        else:
            dim = transform.rank if self.projected else self.full_dim
        self.transform = transform.with_dim(dim)
        if self.projected:
            quantizer = ProjectedKlt(self.transform, stats.residual_means, base.projections(),
                                     base.codebooks().cpu())
        else:
            quantizer = EuclideanKlt(self.transform, base.latent_codebooks().cpu())
        self._quantizer = quantizer.to(base.device)
        return self

    @property
    def quantizer(self) -> EuclideanKlt | ProjectedKlt:
        """The truncated quantizer (loads the model)."""
        return self.load()._quantizer

    def encode(self, wav: torch.Tensor) -> Encoded:
        return self.base.encode_with(wav, self.quantizer.quantize)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        return self.base.decode_with(encoded, self.quantizer.dequantize)

    def codebooks(self) -> torch.Tensor:
        """Codebooks in use: DAC's unchanged 8-d ones, or EnCodec's reduced ``[n, K, d̃]`` ones."""
        return self.base.codebooks() if self.projected else self.quantizer.books

    def accounting(self) -> KltAccounting:
        """What the base quantizer and this variant store and multiply (no model needed unless ``dim=full``
        on DAC)."""
        return KltAccounting(self.kind, self.base.stored_codebooks, self.num_codebooks, self.cardinality,
                             self.full_dim, self.dim, self.code_dim)

    def info(self) -> dict:
        self.load()
        return {"klt": {"dim": self.dim, "full_dim": self.full_dim, "n_cov": self.n_cov, "estimator": self.estimator,
                        "rank": self.transform.rank, "variance_kept": self.transform.variance_kept(),
                        "eigenvalues": self.transform.eigenvalues.tolist(), **self.accounting().as_dict()}}


def base_spec(spec: CodecSpec) -> CodecSpec:
    """The base codec's spec inside a resolved ``klt`` spec (every parameter that is not KLT's own)."""
    params = {k: v for k, v in spec.params.items() if k not in OWN_NAMES}
    return CodecSpec(spec.params["base"], params)


def check_calibration(codec: Codec) -> None:
    """Config-time check: raise :class:`CalibrationError` when ``codec`` is a KLT variant whose estimator needs
    calibration audio and its folder has none usable. Other codecs pass. Unusable files are warned about.

    Reads files only until the first usable one.
    """
    if not isinstance(codec, KltCodec) or not codec.needs_calibration:
        return
    base = codec.base
    next(calibration_clips(codec.calibration, base.sample_rate, base.channels, codec.calibration_s,
                           base.min_samples))


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
OWN_NAMES = tuple(p.name for p in OWN_PARAMS)


@dataclass(frozen=True)
class KltFamily(CodecFamily):
    """The ``klt`` family: its own parameters plus those of its base codec, validated against the base."""

    families: FamilyLookup | None = field(default=None, compare=False, repr=False)  # holds the base families

    def resolve(self, raw) -> CodecSpec:
        families = self.families
        raw = dict(raw)
        base_name = raw.pop("base", OWN_PARAMS[0].default)
        if base_name not in RVQ_BASES:
            kind = "has no quantizer" if base_name in families else "is not a codec family"
            raise SpecError(f"klt: base {base_name!r} {kind}; KLT needs an RVQ codec: {', '.join(RVQ_BASES)}")
        own = {p.name: p.parse(raw.pop(p.name), "klt") if p.name in raw else p.default for p in OWN_PARAMS[1:]}
        base_spec = families[base_name].resolve(raw)  # unknown parameters are reported by the base family
        base = families.build(base_spec, device="cpu")
        full_dim = base.latent_dim
        if own["dim"] != "full":
            try:
                own["dim"] = int(own["dim"])
            except ValueError:
                raise SpecError(f"klt: dim={own['dim']!r} is not an integer or 'full'") from None
            if not 1 <= own["dim"] <= full_dim:
                raise SpecError(f"klt: dim={own['dim']} is outside 1..{full_dim} (the latent dimension D of "
                                f"{base_name})")
        if own["dim"] != "full" and isinstance(base, DacCodec) and own["estimator"] != "data":
            # R sums n_cov covariances of out-projected c-dimensional codewords: rank <= c * n_cov
            bound = min(full_dim, base.arch.codebook_dim * own["n_cov"])
            problem = rank_problem(own["dim"], bound, full_dim, own["estimator"], own["n_cov"],
                                   f"{base_name}: rank <= {base.arch.codebook_dim} x n_cov")
            if problem:
                raise KltRankError(problem)
        if int(base_spec.params.get("beam", 1)) != 1:
            raise SpecError(f"klt: base {base_name} with beam={base_spec.params['beam']}: the truncated quantizer "
                            f"searches greedily; use beam=1")
        if own["n_cov"] > base.num_codebooks:
            raise SpecError(f"klt: n_cov={own['n_cov']} exceeds the {base.num_codebooks} codebooks in use by "
                            f"{base_spec.short(families[base_name].defaults)}")
        if own["estimator"] != "codebook" and not own["calibration"]:
            raise SpecError(f"klt: estimator={own['estimator']} needs calibration=FOLDER")
        if own["calibration"] and not Path(own["calibration"]).is_dir():
            raise SpecError(f"klt: calibration folder {own['calibration']} not found")
        return CodecSpec(self.name, {"base": base_name, **base_spec.params, **own})


def families(registry: FamilyLookup) -> tuple[CodecFamily, ...]:
    """The ``klt`` family, resolving and building its base codecs with ``registry``."""

    def build(spec: CodecSpec, device: str | torch.device = "auto") -> KltCodec:
        return KltCodec(spec, registry.build(base_spec(spec), device), device)

    return (KltFamily("klt", "KLT-truncated latent of an RVQ codec (post-training dimension reduction); bitrate "
                             "of its base; e.g. klt?base=encodec-24khz&bandwidth=6&dim=72&n_cov=2",
                      OWN_PARAMS, build, families=registry),)


def klt_spec_from_base(base_spec: str, **own) -> str:
    """``klt?base=...`` spec text from a base spec string and KLT parameters.

    >>> klt_spec_from_base("dac-44khz?n_codebooks=9", dim=72, n_cov=None)
    'klt?base=dac-44khz&n_codebooks=9&dim=72'
    """
    family, raw = split_spec(base_spec)
    raw.update({k: str(v) for k, v in own.items() if v is not None})
    query = "&".join(f"{k}={v}" for k, v in raw.items())
    return f"klt?base={family}" + (f"&{query}" if query else "")
