"""Names of the files and folders of a run folder, for its writers and its reader (a leaf module)."""

import os
from pathlib import Path

STORE_NAME = "results.sqlite"
PROVENANCE_NAME = "run.json"
LOCK_NAME = ".evalkit.lock"
LOG_NAME = "run.log"
SUMMARY_CSV = "summary.csv"
DECODED_CACHE = ("cache", "decoded")  # cached decoded audio: <run>/cache/decoded/<unit key>.wav
CODES_CACHE = ("cache", "codes")  # cached codes: <run>/cache/codes/<unit key>.npy
LISTING_CACHE = ("cache", "listing.sqlite")  # each dataset file's header and hash, for the next listing
ITEMS_CACHE = ("cache", "items")  # dataset items cut or extracted from a list: <run>/cache/items/<hash>.wav
SLURM_LOGS = "slurm-logs"  # the Slurm worker jobs' own stdout and stderr (before their output goes to run.log)


def temporary_path(path: Path) -> Path:
    """The name a file is written under before it is renamed to ``path``: ``.NAME.PID.tmp`` beside it, the form
    a run sweeps when it starts and ``runner.output`` recognises as the run's own."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")
