"""What every recipe does the same way: run a config (dropping the variants that cannot run, fetching missing
pretrained weights at full scale), cut tiny clips, write figures and tables, and report unavailable variants.

A variant is *unavailable* when its grid is refused before the run (e.g. ``qincodec-irvq`` on a checkpoint
without iRVQ codebooks) or when none of its units ran (e.g. no pretrained weights offline): each is logged as one
line and becomes an ``unavailable`` artifact, which the recipe page lists; figures simply omit it.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.recipes.base import Artifact, Scale

RANDOM_FLAG = " (random weights: NOT the pretrained models)"
_GRID_PROBLEM = re.compile(r"^codecs\.(\d+)(?:\.[\w.]+)?: (.*)$", re.S)


def flag(scale: Scale) -> str:
    """The label every title carries at ``tiny`` scale (random weights), empty at ``full``."""
    return RANDOM_FLAG if scale == "tiny" else ""


def slug(text: str) -> str:
    """``text`` as a file-name and key part: lower case, runs of other characters as ``-``.

    >>> slug("EnCodec 24 kHz")
    'encodec-24-khz'
    """
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def tiny_clips(folder: Path, out: Path, count: int, seconds: float) -> Path:
    """The first ``seconds`` of the first ``count`` audio files of ``folder`` (sorted by name), mixed to mono (the
    models are mono: the measured bitrates are the nominal ones), as WAV files in ``out``. A clip already there
    with the same samples is left as it is: a float WAV's header carries a time stamp, and new bytes would make a
    rerun recode every unit of the clip."""
    import numpy as np

    from evalkit import audio as audio_lib

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in audio_lib.AUDIO_EXTENSIONS)[:count]
    for path in files:
        clip = audio_lib.load(path, channel_policy="mono")
        samples, target = clip.samples[:, : int(seconds * clip.sample_rate)], out / f"{path.stem}.wav"
        if target.is_file():
            old = audio_lib.load(target, allow_silent=True)
            if old.sample_rate == clip.sample_rate and np.array_equal(old.samples, samples):
                continue
        audio_lib.save(target, samples, clip.sample_rate)
    return out


def html_table(table: pd.DataFrame, title: str) -> str:
    """``table`` as one HTML ``<table>`` (every cell escaped), ``title`` as its caption."""
    cells = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return (f"<table><caption>{html.escape(title)}</caption><thead><tr>{cells}</tr></thead>"
            f"<tbody>{rows}</tbody></table>\n")


def write_table(table: pd.DataFrame, stem: Path, title: str) -> list[Path]:
    """``table`` as ``stem``.csv, .md and .html (``title`` as the HTML caption)."""
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".html")]
    stem.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(paths[0], index=False)
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    paths[1].write_text("\n".join([f"**{title}**", "", header, rule, *body, ""]), encoding="utf-8")
    paths[2].write_text(html_table(table, title), encoding="utf-8")
    return paths


PAGE_WIDTH_IN = 5.0  # figures are read on a page, not in a journal column: room for long legend labels


def save(fig, path: Path, min_width_in: float = PAGE_WIDTH_IN) -> Path | None:
    """Write ``fig`` (None: nothing to plot, nothing written) to ``path``, at least ``min_width_in`` wide;
    returns the path or None."""
    if fig is None:
        return None
    from evalkit.reports.plots.options import FigureOptions, apply_options
    from evalkit.reports.plots.output import save_figure

    width, height = fig.get_size_inches()
    if width < min_width_in:
        apply_options(fig, FigureOptions(size_in=(min_width_in, height)))

    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path


def skipped_variants(data, recipe: str) -> dict[str, str]:
    """Codec spec → the reason of a variant of the run ``data`` none of whose units ran (e.g. no pretrained
    weights), each logged as one line."""
    units = data.units
    if units.empty:
        return {}
    log = logging.getLogger(f"evalkit.recipes.{recipe}")
    out = {}
    for spec, group in units.groupby("codec_spec"):
        if not (group["status"] == "ok").any():
            reasons = group["reason"].dropna()
            out[spec] = str(reasons.iloc[0]) if not reasons.empty else str(group["status"].iloc[0])
            log.warning("%s recipe: %s skipped: %s", recipe, spec, out[spec])
    return out


def runnable_config(raw: dict, base_dir: Path, source: str, recipe: str) -> tuple[Any, list, dict[str, str]]:
    """Validate the run config ``raw``; a codec grid the checks refuse (a variant that cannot run here) is dropped
    and reported, once per grid, with the first reason.

    Returns:
        (run config, codec specs, dropped: ``family?params`` of each dropped grid → its reason).

    Raises:
        ConfigError: a problem outside the codec grids, or no grid left.
    """
    from evalkit.runner import ConfigError, validate_config

    dropped: dict[str, str] = {}
    grids = list(raw["codecs"])
    while True:
        try:
            config, specs = validate_config({**raw, "codecs": grids}, base_dir, source)
            return config, specs, dropped
        except ConfigError as exc:
            bad: dict[int, str] = {}
            for problem in exc.problems:
                match = _GRID_PROBLEM.match(problem)
                if match is None:
                    raise
                bad.setdefault(int(match.group(1)), match.group(2))
            if len(bad) == len(grids):
                raise
            log = logging.getLogger(f"evalkit.recipes.{recipe}")
            for i, reason in bad.items():
                name = grid_name(grids[i])
                dropped[name] = reason
                log.warning("%s recipe: %s unavailable: %s", recipe, name, reason)
            grids = [g for i, g in enumerate(grids) if i not in bad]


def grid_name(grid: dict) -> str:
    """A codec grid as one readable line: ``qincodec-irvq?bitrate_kbps=16``.

    >>> grid_name({"family": "dac-44khz", "params": {"n_codebooks": [9, 18], "weights": "random"}})
    'dac-44khz?n_codebooks=9|18&weights=random'
    """
    params = grid.get("params") or {}
    text = "&".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in params.items())
    return grid["family"] + (f"?{text}" if text else "")


def run(raw: dict, base_dir: Path, source: str, recipe: str, scale: Scale, offline: bool | None = None):
    """Validate ``raw`` (dropping what cannot run), fetch missing pretrained weights at ``full`` scale (never when
    ``offline``; ``None``: ``$EVALKIT_OFFLINE``), run it (a rerun into the same folder reuses every finished
    unit), and load the run.

    Returns:
        (the run's :class:`~evalkit.reports.rundata.RunData`, unavailable: variant → reason, for dropped grids
        and for variants none of whose units ran).
    """
    from evalkit.reports.rundata import load_run
    from evalkit.runner import run_evaluation

    config, specs, dropped = runnable_config(raw, base_dir, source, recipe)
    if scale == "full":
        from evalkit.codecs.weights_fetch import fetch_missing

        fetch_missing(specs, offline=offline)
    run_evaluation(config, specs)
    data = load_run(config.output)
    return data, {**dropped, **skipped_variants(data, recipe)}


def unavailable_artifacts(unavailable: dict[str, str], where: Path) -> list[Artifact]:
    """One ``unavailable`` artifact per variant (key ``unavailable:<variant>``, the reason as its note)."""
    return [Artifact(f"unavailable:{name}", "unavailable", name, where, reason)
            for name, reason in unavailable.items()]


def prepare_listening(run_dir: Path, folder: Path, options):
    """The listening test of ``options`` in ``folder``: prepared from ``run_dir``, or, when ``folder`` already holds
    a test of the same design and conditions (a rerun of the recipe), that test as it is, with its answers.

    Raises:
        ListenError: the run cannot give the test, or ``folder`` holds another test.
    """
    from evalkit.listening.errors import ListenError
    from evalkit.listening.model import DEFINITION_FILE, load_definition
    from evalkit.listening.prepare.design import prepare_test

    if (folder / DEFINITION_FILE).is_file():
        definition = load_definition(folder, check_files=False)
        wanted = set(options.conditions)
        if str(definition.design) == str(options.design) and wanted <= set(definition.conditions):
            return definition
        raise ListenError(f"{folder}: holds another listening test; move it away or choose another --out")
    return prepare_test(run_dir, folder, options)
