"""Adding iRVQ codebooks to a packaged checkpoint that predates them, leaving every other tensor as it is.

The codebooks are trained exactly as the quantizer stage trains them (:func:`.quantizer_stage.train_irvq`), on the
sample that stage draws from a ``latents.npz`` (:func:`.quantizer_stage.training_latents`): given the latents the
checkpoint's quantizers were trained on (``evalkit qincodec train --data DATA --out RUN --config NAME --init
CHECKPOINT --keep-autoencoder --stage latents`` recomputes them from the same corpus), iRVQ sees the same vectors
as its RVQ and QINCo2. The encoder, decoder, RVQ and QINCo2 values are copied unchanged (still float16); the
provenance records how the iRVQ codebooks were made, and the file's SHA-256 (the cache key) changes.
"""

from __future__ import annotations

import time
from pathlib import Path

from evalkit.codecs.qincodec.checkpoint import CheckpointError, read_header, resolve_path
from evalkit.codecs.qincodec.config import QinConfig
from evalkit.hashing import file_sha256
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.quantizer_stage import train_irvq, training_latents


def add_irvq(checkpoint: str, latents: Path, out: Path) -> Path:
    """Write ``out``: ``checkpoint`` plus iRVQ codebooks trained on ``latents`` (a ``latents.npz`` of its encoder).

    Raises:
        CheckpointError: the checkpoint is missing, unreadable, or already holds iRVQ codebooks.
        FileNotFoundError: ``latents`` does not exist.
    """
    header = read_header(checkpoint)  # refuses code archives and other formats before torch.load sees the file
    if "irvq" in header["parts"]:
        raise CheckpointError(f"{checkpoint} already holds iRVQ codebooks")
    latents = Path(latents)
    if not latents.is_file():
        raise FileNotFoundError(f"latents file {latents} not found")
    bundle = schedule.load(resolve_path(checkpoint))
    config = QinConfig.from_dict(bundle["config"])
    x, val = training_latents(latents, config.train)
    irvq, mse, wall = train_irvq(x, val, config.quantizer, config.train)
    state = {k: v.half() if v.is_floating_point() else v for k, v in irvq.state_dict().items()}
    provenance = {
        **bundle.get("provenance", {}), "quantizer_val_mse_irvq": mse, "irvq_train_beam": config.quantizer.beam,
        "irvq_added": {"from_checkpoint_sha256": header["sha256"], "latents": str(latents),
                       "latents_sha256": file_sha256(latents), "vectors": len(x), "val_vectors": len(val),
                       "kmeans_iters": config.train.kmeans_iters, "seed": config.train.seed,
                       "wall_s": round(wall, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    schedule.save_atomic({**bundle, "irvq": state, "provenance": provenance}, out)
    return out
