"""``evalkit qincodec train|info``: argument parsing and printing only; the work is in
:mod:`evalkit.training.qincodec.train`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from evalkit.cli._base import EXIT_INTERRUPTED, EXIT_STOPPED
from evalkit.errors import UserError


def add_parsers(sub) -> None:
    """Register ``qincodec train|info`` on an argparse subparsers object."""
    qin = sub.add_parser("qincodec", help="train and inspect QinCodec").add_subparsers(dest="action", required=True)
    train = qin.add_parser("train", help="train QinCodec (autoencoder, latents, QINCo2 + RVQ, decoder finetuning)")
    train.add_argument("--data", required=True, type=Path, help="folder of training audio (searched recursively)")
    train.add_argument("--out", required=True, type=Path, help="run folder (checkpoints; rerun to resume)")
    train.add_argument("--config", default="small", help="small (2 CPU cores), paper (GPU) or tiny (tests)")
    train.add_argument("--latent-dim", type=int, metavar="N",
                       help="latent channels of the autoencoder (default: the config's; QINCo2 works in the same "
                            "dimension); e.g. to compare latent sizes at equal bitrate")
    train.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    train.add_argument("--stage", action="append", choices=["ae", "latents", "quantizer", "finetune"],
                       help="run only this stage (repeatable; earlier stages must be done); default: all")
    train.add_argument("--init", type=Path, help="start the autoencoder from this packaged checkpoint's encoder "
                       "and decoder ('shipped': the package's); recorded in the provenance")
    train.add_argument("--keep-autoencoder", action="store_true",
                       help="with --init: keep its encoder and decoder as the autoencoder stage (no autoencoder "
                       "training; --stage ae need not be named); the latents, quantizer and finetune stages run "
                       "on them")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    train.add_argument("--max-minutes", type=float, help="stop (resumably) after this many minutes")
    train.set_defaults(func=train_command)
    info = qin.add_parser("info", help="configuration and provenance of a QinCodec checkpoint")
    info.add_argument("checkpoint", nargs="?", default="shipped", help="path, or 'shipped' (default)")
    info.set_defaults(func=info_command)


def _file_log(out: Path) -> logging.Handler:
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("evalkit.qincodec")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the log file, not the terminal under the progress bars
    return handler


def train_command(args: argparse.Namespace) -> int:
    import torch

    from evalkit.codecs.base import resolve_device
    from evalkit.training.qincodec.recipes import get_config
    from evalkit.training.qincodec.schedule import StageStopped
    from evalkit.training.qincodec.train import STAGES, Context, run_training

    try:
        config = get_config(args.config, latent_dim=args.latent_dim)
        device = resolve_device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is available")
        if not args.data.is_dir():
            raise ValueError(f"--data {args.data}: no such folder")
        init = None
        if args.init is not None:
            from evalkit.codecs.qincodec.checkpoint import read_header, resolve_path

            init = resolve_path(str(args.init))
            theirs = json.loads(json.dumps(read_header(str(init))["config"]["model"]))  # tuples → lists
            if theirs != json.loads(json.dumps(config.as_dict()["model"])):
                raise ValueError(f"--init {args.init}: its autoencoder is not the one of config {config.name!r}")
        if args.keep_autoencoder and init is None:
            raise ValueError("--keep-autoencoder needs --init CHECKPOINT (the autoencoder to keep)")
    except UserError:
        raise
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    _file_log(args.out)
    stages = tuple(args.stage) if args.stage else STAGES
    ctx = Context(config, args.data, args.out, device,
                  budget_s=args.max_minutes * 60 if args.max_minutes else None, progress=sys.stderr.isatty(),
                  init=init, keep_autoencoder=args.keep_autoencoder)
    print(f"qincodec: training config {config.name!r} on {device} into {args.out} (log: {args.out / 'train.log'})",
          file=sys.stderr)
    try:
        packaged = run_training(ctx, stages)
    except StageStopped as exc:
        print(f"qincodec: {exc}; rerun the same command to continue", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print(f"qincodec: interrupted; rerun the same command to continue from the last checkpoint "
              f"(saved every {config.train.checkpoint_every_s:.0f} s)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if packaged is not None:
        print(packaged)
        q, frame_rate = config.quantizer, config.model.frame_rate
        rates = ", ".join(f"{q.bitrate_kbps(frame_rate, m):g}" for m in range(1, q.steps + 1))
        print(f"use it as qincodec?checkpoint={packaged}&bitrate_kbps=R (or qincodec-rvq?..., qincodec-irvq?...), "
              f"R in kbps: {rates}", file=sys.stderr)
    return 0


def info_command(args: argparse.Namespace) -> int:
    from evalkit.codecs.qincodec.checkpoint import load_checkpoint

    bundle = load_checkpoint(args.checkpoint)
    prov = {k: v for k, v in bundle["provenance"].items() if k != "history_tail"}
    print(json.dumps({"sha256": bundle["sha256"], "config": bundle["config"], "provenance": prov}, indent=1))
    return 0
