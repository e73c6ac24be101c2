"""``evalkit klt analyze``: eigen-spectrum, kept dimensions and the storage/complexity table of a KLT variant."""

from __future__ import annotations

from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.klt import KltCodec, findings, klt_spec_from_base


def analyze(spec: str, dim: int | None = None, n_cov: int | None = None) -> dict:
    """Analyse ``spec`` (a ``klt?...`` spec or a base RVQ spec); ``dim``/``n_cov`` override the spec's.

    Returns:
        ``codec.info()["klt"]`` (spectrum and :meth:`KltAccounting.as_dict`) plus ``spec``, ``weights``,
        ``cumulative_variance``, ``dim_for_99pct``, ``dim_for_999pct`` and ``findings`` (lines of text).

    Raises:
        SpecError: a bad spec, or a base codec without a quantizer.
        CalibrationError: a calibration folder without usable audio.
    """
    parsed = parse_spec(spec)
    if parsed.family != "klt":
        spec = klt_spec_from_base(spec, dim=dim, n_cov=n_cov)
    else:
        params = {k: v for k, v in parsed.params.items() if k != "base"}
        params.update({k: v for k, v in (("dim", dim), ("n_cov", n_cov)) if v is not None})
        spec = klt_spec_from_base(parsed.params["base"], **params)
    codec = build_codec(spec, device="cpu")
    if not isinstance(codec, KltCodec):  # klt_spec_from_base always gives a klt spec
        raise TypeError(f"{spec} did not build a KLT variant")
    info = codec.info()["klt"]
    eig = codec.transform.eigenvalues
    cumulative = (eig.cumsum(0) / eig.sum()).tolist()
    return {"spec": str(codec.spec), "weights": codec.weights_label, **info,
            "cumulative_variance": cumulative,
            "dim_for_99pct": codec.transform.dim_for_variance(0.99),
            "dim_for_999pct": codec.transform.dim_for_variance(0.999),
            "findings": findings(info)}


def format_analysis(result: dict, show: int = 16) -> str:
    """The text report of :func:`analyze`: header, sampled spectrum, storage/search table, savings, findings."""
    eig, cum = result["eigenvalues"], result["cumulative_variance"]
    lines = [f"{result['spec']}", f"weights: {result['weights']}",
             f"estimator {result['estimator']}, n_cov {result['n_cov']}, latent D = {result['full_dim']}, "
             f"rank {result['rank']}, {result['kind']} quantizer ({result['stored_codebooks']} stored codebooks "
             f"of {result['cardinality']} x {result['code_dim']}, {result['used_codebooks']} in use)",
             f"kept d = {result['dim']}: {100 * result['variance_kept']:.2f} % of the variance "
             f"(99 % needs {result['dim_for_99pct']}, 99.9 % needs {result['dim_for_999pct']})",
             "", f"{'i':>4} {'eigenvalue':>12} {'cumulative':>10}"]
    step = max(1, len(eig) // show)
    for i in list(range(0, len(eig), step)) + ([len(eig) - 1] if (len(eig) - 1) % step else []):
        mark = "  <- d" if i == result["dim"] - 1 else ""
        lines.append(f"{i + 1:>4} {eig[i]:>12.5g} {100 * cum[i]:>9.2f}%{mark}")
    d, dd = result["full_dim"], result["dim"]
    rows = [("codebook floats", result["codebook_floats_full"], result["codebook_floats"]),
            ("projection floats", result["projection_floats_full"], result["projection_floats"]),
            (f"transform, paper ({d} x {d})", 0, result["transform_floats"]),
            (f"transform, stored ({d} x {dd})", 0, result["transform_floats_stored"]),
            ("mean floats", 0, result["mean_floats"]),
            ("total floats, paper", result["total_floats_full"], result["total_floats"]),
            ("total floats, stored", result["total_floats_full"], result["total_floats_stored"]),
            ("search MACs per frame", result["search_macs_full"], result["search_macs"])]
    lines += ["", f"{'':<30} {'original':>12} {'truncated':>12}"]
    lines += [f"{name:<30} {full:>12,} {trunc:>12,}" for name, full, trunc in rows]
    lines += ["", f"saving, codebooks only: {100 * result['saving_codebooks']:.2f} %",
              f"saving, projections only: {100 * result['saving_projections']:.2f} %",
              f"saving, with transform (paper, D x D) and mean: {100 * result['saving_total']:.2f} %",
              f"saving, with transform (stored, D x d) and mean: {100 * result['saving_total_stored']:.2f} %",
              f"search saving per frame: {100 * result['saving_search']:.2f} %"]
    lines += [f"finding: {line}" for line in result["findings"]]
    return "\n".join(lines)
