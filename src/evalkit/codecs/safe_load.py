"""Reading weights files without running code from them.

A weights file is opened only by ``torch.load(weights_only=True)``, whose unpickler builds tensors, numbers,
strings and plain containers and refuses every other class or function. Before that, the file's zip layout is
read: a ``torch.package`` archive (Python modules plus ``.data/version``, ``.data/extern_modules``) or a
TorchScript archive (``code/``, ``constants.pkl``) carries code and is refused by name, never handed to a loader
that could import it (``dac``'s own ``DAC.load`` tries ``torch.package.PackageImporter`` first, which runs the
archive's modules). Architectures are built from evalkit's own tables, never from a file.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit._lazy import torch
from evalkit.errors import UserError

PACKAGE_ENTRIES = (".data/version", ".data/extern_modules", ".data/python_version")  # torch.package's own
TORCHSCRIPT_ENTRIES = ("constants.pkl",)
ZIP_MAGIC = b"PK\x03\x04"
SHOWN_KEYS = 3  # keys named in a mismatch message


class WeightsFileError(UserError, ValueError):
    """A weights file evalkit will not load (code archive, objects other than tensors and plain data,
    unreadable, or not the expected architecture); the one-line message names the file and why."""


def refused_global(exc: Exception) -> str:
    """The line of a ``weights_only`` refusal that names the blocked global (else the exception's type)."""
    return next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line),
                type(exc).__name__)


def code_archive_kind(path: Path) -> str | None:
    """``"a torch.package archive"`` or ``"a TorchScript archive"`` when the zip at ``path`` carries code.

    ``None`` for a ``torch.save`` zip and for a file that is no readable zip (the legacy format, or a damaged
    file that :func:`load_plain` then reports). Only the zip's directory is read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    inner = [name.split("/", 1)[-1] for name in names]  # torch writes every entry under one top folder
    if any(name in TORCHSCRIPT_ENTRIES or name.startswith("code/") for name in inner):
        return "a TorchScript archive"
    if any(name in PACKAGE_ENTRIES or name.endswith(".py") for name in inner):
        return "a torch.package archive"
    return None


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0].split('. ')[0]}" if text else type(exc).__name__


def load_plain(path: Path, *, mmap: bool = False) -> Any:
    """The contents of a ``torch.save`` file holding only tensors and plain data, loaded on the CPU.

    Args:
        path: the weights file.
        mmap: map the tensors' storage instead of reading it (zip format only; a legacy file is read).

    Raises:
        WeightsFileError: a code archive, a pickle of other objects, or an unreadable file (one line naming it).
    """
    path = Path(path)
    if (kind := code_archive_kind(path)) is not None:
        raise WeightsFileError(f"{path} is {kind}: it carries Python code, which evalkit never runs; give a plain "
                               f"state dict (torch.save(model.state_dict(), FILE))")
    try:
        with open(path, "rb") as fh:
            is_zip = fh.read(4) == ZIP_MAGIC
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as exc:  # weights_only refused a class, a function or an opcode: never run it
        if "GLOBAL" in (reason := refused_global(exc)):
            raise WeightsFileError(f"{path}: refused: it holds objects other than tensors and plain data, which "
                                   f"loading could run ({reason})") from None
        raise WeightsFileError(f"{path} is unreadable as a torch.save file ({reason})") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises anything from KeyError to RuntimeError on bad bytes
        raise WeightsFileError(f"{path} is unreadable as a torch.save file ({_first_sentence(exc)})") from None


def as_state_dict(value: Any, path: Path) -> Mapping[str, Any]:
    """``value`` when it is a state dict (names to tensors), else :class:`WeightsFileError` naming ``path``."""
    if not isinstance(value, Mapping) or not value:
        raise WeightsFileError(f"{path}: expected a state dict (parameter names to tensors), got "
                               f"{'an empty mapping' if isinstance(value, Mapping) else type(value).__name__}")
    bad = [str(k) for k, v in value.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsFileError(f"{path}: expected a state dict (parameter names to tensors); {len(bad)} entries are "
                               f"not tensors ({', '.join(bad[:SHOWN_KEYS])})")
    return value


def _listed(label: str, keys: list[str]) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOWN_KEYS else ""
    return f"{label} {', '.join(keys[:SHOWN_KEYS])}{more}"


def fit_problem(expected: Mapping[str, Any], state: Mapping[str, Any]) -> str | None:
    """What keeps ``state`` from loading strictly into a model whose state dict is ``expected``, or ``None``.

    Missing keys, unexpected keys and shape mismatches, the first few of each, on one line.

    >>> import torch
    >>> fit_problem({"w": torch.zeros(2), "b": torch.zeros(1)}, {"w": torch.zeros(3), "v": torch.zeros(1)})
    'missing keys: b; unexpected keys: v; shape mismatches: w [3] (model [2])'
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {list(state[k].shape)} (model {list(v.shape)})" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = [_listed(label, keys) for label, keys in (("missing keys:", missing), ("unexpected keys:", unexpected),
                                                      ("shape mismatches:", shapes)) if keys]
    return "; ".join(parts) or None


def require_fit(expected: Mapping[str, Any], state: Mapping[str, Any], path: Path, architecture: str) -> None:
    """Raise :class:`WeightsFileError` (naming ``path`` and ``architecture``) unless ``state`` fits ``expected``."""
    if (problem := fit_problem(expected, state)) is not None:
        raise WeightsFileError(f"{path} does not fit {architecture}: {problem}")


def load_checked(model, state: Mapping[str, Any], path: Path, architecture: str) -> None:
    """``model.load_state_dict(state, strict=True)``, after a one-line refusal of any mismatch.

    Raises:
        WeightsFileError: missing or unexpected keys, or shapes that differ (naming ``path`` and ``architecture``).
    """
    require_fit(model.state_dict(), state, path, architecture)
    model.load_state_dict(state, strict=True)
