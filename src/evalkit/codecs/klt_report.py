"""``evalkit klt analyze``: eigen-spectrum, kept dimensions and the storage/complexity table of a KLT variant."""

from __future__ import annotations

from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.klt import KltCodec, klt_spec_from_base


def analyze(spec: str, dim: int | None = None, n_cov: int | None = None) -> dict:
    """Analyse ``spec`` (a ``klt?...`` spec or a base RVQ spec); ``dim``/``n_cov`` override the spec's."""
    parsed = parse_spec(spec)
    if parsed.family != "klt":
        spec = klt_spec_from_base(spec, dim=dim, n_cov=n_cov)
    else:
        params = {k: v for k, v in parsed.params.items() if k != "base"}
        params.update({k: v for k, v in (("dim", dim), ("n_cov", n_cov)) if v is not None})
        spec = klt_spec_from_base(parsed.params["base"], **params)
    codec = build_codec(spec, device="cpu")
    assert isinstance(codec, KltCodec)
    info = codec.info()["klt"]
    eig = codec.transform.eigenvalues
    cumulative = (eig.cumsum(0) / eig.sum()).tolist()
    return {"spec": str(codec.spec), "weights": codec.weights_label, **info,
            "cumulative_variance": cumulative,
            "dim_for_99pct": codec.transform.dim_for_variance(0.99),
            "dim_for_999pct": codec.transform.dim_for_variance(0.999)}


def format_analysis(result: dict, show: int = 16) -> str:
    eig, cum = result["eigenvalues"], result["cumulative_variance"]
    lines = [f"{result['spec']}", f"weights: {result['weights']}",
             f"estimator {result['estimator']}, n_cov {result['n_cov']}, latent D = {result['full_dim']}, "
             f"rank {result['rank']}",
             f"kept d = {result['dim']}: {100 * result['variance_kept']:.2f} % of the variance "
             f"(99 % needs {result['dim_for_99pct']}, 99.9 % needs {result['dim_for_999pct']})",
             "", f"{'i':>4} {'eigenvalue':>12} {'cumulative':>10}"]
    step = max(1, len(eig) // show)
    for i in list(range(0, len(eig), step)) + ([len(eig) - 1] if (len(eig) - 1) % step else []):
        mark = "  <- d" if i == result["dim"] - 1 else ""
        lines.append(f"{i + 1:>4} {eig[i]:>12.5g} {100 * cum[i]:>9.2f}%{mark}")
    lines += ["", f"{'':<28} {'original':>12} {'truncated':>12}",
              f"{'codebook floats':<28} {result['codebook_floats_full']:>12,} {result['codebook_floats']:>12,}",
              f"{'transform floats (D x D)':<28} {0:>12,} {result['transform_floats']:>12,}",
              f"{'mean floats':<28} {0:>12,} {result['mean_floats']:>12,}",
              f"{'search MACs per frame':<28} {result['search_macs_full']:>12,} {result['search_macs']:>12,}",
              "", f"saving, codebooks only: {100 * result['saving_codebooks']:.2f} %",
              f"saving, with transform and mean: {100 * result['saving_total']:.2f} %",
              f"search saving per frame: {100 * result['saving_search']:.2f} %"]
    return "\n".join(lines)
