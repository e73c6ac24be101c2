"""The packaged QinCodec checkpoint: one file with the config, encoder, decoder, quantizers and provenance.

Every checkpoint holds the encoder, decoder, RVQ baseline and QINCo2 (:data:`PARTS`); the iRVQ codebooks
(:data:`OPTIONAL_PARTS`) came later, so older checkpoints lack them and only ``qincodec-irvq`` needs them.

Weights are stored as float16 (loaded as float32), so the shipped file stays small; everything the codec
computes is defined by the stored values, and re-saving a loaded checkpoint changes nothing. This module reads
checkpoints; training writes them (``evalkit.training.qincodec.packaging``).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

from evalkit._lazy import torch
from evalkit.codecs.safe_load import code_archive_kind, refused_global
from evalkit.errors import UserError
from evalkit.hashing import file_sha256

FORMAT = "evalkit-qincodec/1"
SHIPPED = Path(__file__).parent / "weights" / "qincodec-small.pt"
PARTS = ("encoder", "decoder", "rvq", "qinco2")
OPTIONAL_PARTS = ("irvq",)


class CheckpointError(UserError, ValueError):
    """A missing or unreadable QinCodec checkpoint; the message names the file."""


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def resolve_path(checkpoint: str) -> Path:
    """``shipped`` names the checkpoint inside the package; anything else is a path."""
    path = SHIPPED if checkpoint == "shipped" else Path(checkpoint).expanduser()
    if not path.is_file():
        raise CheckpointError(f"QinCodec checkpoint {path} not found"
                              + (" (the package ships none: train one with `evalkit qincodec train`)"
                                 if checkpoint == "shipped" else ""))
    return path


def _refuse_code_archive(path: str) -> None:
    if (kind := code_archive_kind(Path(path))) is not None:  # never handed to a loader that could import it
        raise CheckpointError(f"QinCodec checkpoint {path} is {kind}: it carries Python code, which evalkit never "
                              f"runs")


@lru_cache(maxsize=4)
def _load(path: str, size: int, mtime_ns: int) -> dict:
    _refuse_code_archive(path)
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused a class or function: never run it
        raise CheckpointError(f"QinCodec checkpoint {path} refused: it holds objects other than tensors and plain "
                              f"data, which loading would run ({refused_global(exc)})") from None
    except Exception as exc:  # any unreadable file: one clear line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"QinCodec checkpoint {path} is unreadable: {type(exc).__name__}: {first}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a QinCodec checkpoint (expected format {FORMAT})")
    out = {k: _float(bundle[k]) for k in (*PARTS, *OPTIONAL_PARTS) if k in bundle}
    out.update(format=bundle["format"], config=bundle["config"], provenance=bundle.get("provenance", {}),
               sha256=file_sha256(Path(path)))
    return out


class _HeaderUnpickler(pickle.Unpickler):
    """Reads a ``torch.save`` pickle without torch: tensors become ``None``, any other class is refused."""

    def find_class(self, module: str, name: str):
        if module.startswith("torch"):
            return lambda *args, **kwargs: None
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a checkpoint")

    def persistent_load(self, pid):
        return None


@lru_cache(maxsize=4)
def _header(path: str, size: int, mtime_ns: int) -> dict:
    _refuse_code_archive(path)
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            bundle = _HeaderUnpickler(archive.open(name)).load()
    except (OSError, zipfile.BadZipFile, StopIteration, pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointError(f"QinCodec checkpoint {path} is unreadable: {type(exc).__name__}: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a QinCodec checkpoint (expected format {FORMAT})")
    return dict(format=bundle["format"], config=bundle["config"], provenance=bundle.get("provenance", {}),
                parts=tuple(k for k in (*PARTS, *OPTIONAL_PARTS) if k in bundle), sha256=file_sha256(Path(path)))


def read_header(checkpoint: str) -> dict:
    """The checkpoint's format, config, provenance, stored ``parts`` and SHA-256, read without torch (no weights
    are loaded)."""
    path = resolve_path(checkpoint)
    stat = os.stat(path)
    return _header(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def load_checkpoint(checkpoint: str) -> dict:
    """The checkpoint's parts as float32 state dicts, its config, provenance and SHA-256 (cached per file state)."""
    path = resolve_path(checkpoint)
    stat = os.stat(path)
    return _load(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def no_irvq_message(checkpoint: str) -> str:
    """The one line for a checkpoint written before iRVQ existed: what it lacks and how to add it."""
    return (f"checkpoint {checkpoint} has no iRVQ codebooks; retrain the quantizer stage with `evalkit qincodec train "
            f"--data DATA --out RUN --init {checkpoint} --keep-autoencoder`, or add iRVQ alone, leaving every other "
            f"tensor as it is, with `python scripts/add_irvq.py {checkpoint} --latents RUN/latents.npz --out NEW.pt`")
