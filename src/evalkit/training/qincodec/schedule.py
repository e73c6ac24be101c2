"""Small training utilities shared by the stages: LR schedule, atomic checkpoints, time budget, a stage log."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch

from evalkit.errors import UserError

log = logging.getLogger("evalkit.qincodec")


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.01) -> float:
    """LR factor: linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` at ``total``.

    >>> warmup_cosine(0, 100, 10), warmup_cosine(10, 100, 10), round(warmup_cosine(100, 100, 10), 3)
    (0.1, 1.0, 0.01)
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, rename: a kill never leaves a torn checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class TrainingStateError(UserError, ValueError):
    """A stage file (``ae.pt``, ``*_last.pt``, ...) that cannot be loaded safely; the message names the file."""


def load(path: Path):
    """A stage file written by :func:`save_atomic`, loaded with ``weights_only=True``: tensors, numbers, strings
    and plain containers only, so a planted object (a pickle ``__reduce__`` that runs code) is refused, not run.

    Raises:
        TrainingStateError: the file holds anything else, or is unreadable (one line naming it).
    """
    import pickle

    from evalkit.codecs.safe_load import refused_global

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise TrainingStateError(f"{path}: refused: it holds objects other than tensors and plain data, which "
                                 f"loading would run ({refused_global(exc)}); delete it to redo the stage") from None
    except (OSError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingStateError(f"{path}: unreadable training state ({first}); delete it to redo the stage"
                                 ) from None


class StageStopped(Exception):
    """The time budget ran out; the stage saved its state and continues on the next call."""


class Timer:
    """Checkpoint every ``every_s`` seconds; stop once ``budget_s`` (if any) is spent."""

    def __init__(self, every_s: float, budget_s: float | None):
        self.start = self.last = time.monotonic()
        self.every_s, self.budget_s = every_s, budget_s

    def checkpoint_due(self) -> bool:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            return True
        return False

    def out_of_time(self) -> bool:
        return self.budget_s is not None and time.monotonic() - self.start >= self.budget_s

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def append_history(out: Path, record: dict) -> None:
    """One JSON line per event in ``out/history.jsonl`` (validation scores, stage ends)."""
    with open(out / "history.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
