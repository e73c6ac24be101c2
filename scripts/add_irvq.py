#!/usr/bin/env python3
"""Add iRVQ codebooks to a QinCodec checkpoint written before they existed (every other tensor unchanged).

    evalkit qincodec train --data data/train --out RUN --config small --init CHECKPOINT --keep-autoencoder \\
        --stage latents                       # the latents the checkpoint's quantizers were trained on
    python scripts/add_irvq.py CHECKPOINT --latents RUN/latents.npz --out NEW.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalkit.errors import UserError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="packaged checkpoint ('shipped': the package's)")
    parser.add_argument("--latents", required=True, type=Path, help="latents.npz of that checkpoint's encoder")
    parser.add_argument("--out", required=True, type=Path, help="where to write the checkpoint with iRVQ")
    parser.add_argument("--threads", type=int, help="CPU threads for faiss and torch (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        import faiss
        import torch

        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    from evalkit.training.qincodec.irvq import add_irvq

    try:
        out = add_irvq(args.checkpoint, args.latents, args.out)
    except (UserError, FileNotFoundError) as exc:
        print(f"add_irvq: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
