"""The output folder of a run: which folders a run may write into, and which files ``--fresh`` deletes.

A run writes into a folder that does not exist yet, an empty one, or one that holds evalkit's marker: the lock
file every run creates before it writes anything else (``.evalkit.lock``), or the ``run.json`` a finished run
leaves. A folder that is or contains the dataset folder, the manifest or a file it lists (the file-system root
always does), or the home folder is refused, and so is a folder of someone else's files: the exports and
``--fresh`` would overwrite or delete them. ``--fresh`` deletes only the files a run writes; anything else in
the folder stays.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.runner.config import ConfigError, RunConfig
from evalkit.runner.layout import CODES_CACHE, DECODED_CACHE, LISTING_CACHE, LOCK_NAME, PROVENANCE_NAME, STORE_NAME
from evalkit.runner.plan import manifest_files
from evalkit.runner.store import EXPORTED_PLAN_NAME

MARKERS = (LOCK_NAME, PROVENANCE_NAME)
#: Files of a run folder that ``--fresh`` deletes: the store (with SQLite's side files), the exports, the
#: provenance and the default report. ``run.log`` (this run appends to it) and the lock file (held) stay.
RUN_FILES = (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal",
             "results.parquet", "results.csv", "summary.csv", "summary.parquet", "summary.txt",
             "codebook_usage.csv", "codebook_usage_by_depth.csv", "klt_accounting.csv", "klt_spectra.csv",
             "rate_quality.csv", EXPORTED_PLAN_NAME, PROVENANCE_NAME, f"{PROVENANCE_NAME}.tmp", "report.html")
#: Cached files, by cache folder: a unit key (32 hex digits) and the extension, or a temporary name of one
#: (``.KEY.EXT.PID.tmp``) left by an interrupted write.
CACHE_FILES = {DECODED_CACHE: re.compile(r"\.?[0-9a-f]{32}\.wav(\.\d+\.tmp)?"),
               CODES_CACHE: re.compile(r"\.?[0-9a-f]{32}\.npy(\.\d+\.tmp)?")}
TEMPORARY_EXPORTED_PLAN = re.compile(rf"\.{re.escape(EXPORTED_PLAN_NAME)}\.\d+\.tmp")


def _contains(folder: Path, path: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _dataset_problem(output: Path, config: RunConfig) -> str | None:
    ds = config.dataset
    if ds.folder is not None:
        folder = ds.folder.resolve()
        if output == folder:
            return f"{output} is the dataset folder; choose a separate folder for the run"
        if _contains(output, folder):
            return f"{output} contains the dataset folder {folder}; choose a separate folder for the run"
        return None
    if ds.manifest is None:  # a scp, lhotse, hf or jsonl list: its items are read from it, or cut into the run
        listing = Path(str(getattr(ds, ds.source_field))).resolve()
        if (ds.hf is None or listing.is_dir()) and _contains(output, listing):
            return f"{output} contains the dataset's {ds.source_field} {listing}; choose a separate folder for the run"
        return None
    manifest = ds.manifest.resolve()
    if _contains(output, manifest):
        return f"{output} contains the dataset manifest {manifest}; choose a separate folder for the run"
    try:
        listed = manifest_files(ds)
    except ValueError as exc:
        raise ConfigError("dataset", [str(exc)]) from None
    for path in listed:
        if _contains(output, path.resolve()):
            return (f"{output} contains {path.resolve()}, a file of the dataset manifest {manifest}; choose a "
                    f"separate folder for the run")
    return None


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError):  # no home folder known
        return None


def _foreign_files(output: Path) -> list[Path]:
    """What an existing folder without evalkit's marker holds (``[]`` for a new, empty or marked folder)."""
    if not output.is_dir() or any((output / name).exists() for name in MARKERS):
        return []
    return sorted(output.iterdir())


def check_output(config: RunConfig) -> None:
    """Refuse an output folder a run must not write into, before anything is written or deleted.

    Raises:
        ConfigError: one line naming the output folder and the dataset path, home folder or file it
            conflicts with.
    """
    output = Path(config.output).resolve()
    if (problem := _dataset_problem(output, config)) is not None:
        raise ConfigError("output", [problem])
    home = _home()
    if home is not None and _contains(output, home):
        raise ConfigError("output", [f"{output} {'is' if output == home else 'contains'} the home folder {home}; "
                                     f"choose a folder for the run"])
    if foreign := _foreign_files(output):
        raise ConfigError("output", [
            f"{output} already holds files evalkit did not write (e.g. {foreign[0]}) and no evalkit marker "
            f"({' or '.join(MARKERS)}); choose a new or empty folder for the run"])


def discard_run_files(output: Path) -> list[Path]:
    """``--fresh``: delete the store, the cached audio and codes, the listing cache and the exports of the run
    folder ``output``, and nothing else (files evalkit does not write stay, and so do ``run.log`` and the lock file).

    Returns:
        The paths deleted.
    """
    output = Path(output)
    deleted = [output / name for name in RUN_FILES if (output / name).is_file()]
    if (listing := output.joinpath(*LISTING_CACHE)).is_file():
        deleted.append(listing)
    if output.is_dir():
        deleted += [p for p in output.iterdir() if TEMPORARY_EXPORTED_PLAN.fullmatch(p.name) and p.is_file()]
    for parts, pattern in CACHE_FILES.items():
        folder = output.joinpath(*parts)
        if folder.is_dir():
            deleted += [p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    for path in deleted:
        path.unlink(missing_ok=True)
    for folder in (*(output.joinpath(*parts) for parts in CACHE_FILES), output.joinpath(DECODED_CACHE[0])):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return deleted
