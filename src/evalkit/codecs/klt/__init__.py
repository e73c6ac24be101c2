"""KLT-truncated RVQ: post-training latent dimension reduction (Muller, Ragot, Philippe, Scalart).

The latent vectors an RVQ codec quantizes have strongly correlated elements. A Karhunen–Loève transform
estimated from the pretrained codebooks (``codebook``: uniform codeword weights; ``usage``: weights from code
counts on a calibration set) or from encoder latents on a calibration set (``data``) decorrelates them, and the
dimensions with the smallest eigenvalues are dropped. The bitrate does not change.

Modules: :mod:`.transform` (statistics and the transform), :mod:`.quantizers` (Euclidean and projected
truncated RVQ), :mod:`.calibration` (calibration audio), :mod:`.accounting`
(what is stored and multiplied), :mod:`.codec` (the ``klt`` family, :func:`check_calibration`).
"""

from evalkit.codecs.klt.accounting import KltAccounting, QuantizerKind, findings
from evalkit.codecs.klt.calibration import CalibrationError
from evalkit.codecs.klt.codec import (
    ESTIMATORS,
    RVQ_BASES,
    KltCodec,
    KltRankError,
    base_spec,
    check_calibration,
    families,
    klt_spec_from_base,
)
from evalkit.codecs.klt.quantizers import EuclideanKlt, ProjectedKlt, RvqSearch, greedy_rvq
from evalkit.codecs.klt.transform import (
    KltStatistics,
    KltTransform,
    codebook_statistics,
    from_codebooks,
    from_data,
    latent_statistics,
)

__all__ = ["ESTIMATORS", "RVQ_BASES", "CalibrationError", "EuclideanKlt", "KltAccounting", "KltCodec",
           "KltRankError", "base_spec", "families",
           "KltStatistics", "KltTransform", "ProjectedKlt", "QuantizerKind", "RvqSearch", "check_calibration",
           "codebook_statistics", "findings", "from_codebooks", "from_data", "greedy_rvq", "klt_spec_from_base",
           "latent_statistics"]
