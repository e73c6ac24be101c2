"""A finished run sent to the experiment trackers researchers already use: ``evalkit run CONFIG --log
tensorboard|wandb`` (or ``log: [tensorboard]`` in the config).

What is sent, for both: every variant's mean of every metric (``summary.csv``'s ``mean``, over the variant's own
items) as a scalar tagged ``summary/METRIC/LABEL``; the scoreboard as a table (means over the items every
variant scored, ``mean_shared``, as ``evalkit summary`` prints them, with 95 % CIs; TensorBoard gets the Markdown
of :mod:`evalkit.reports.paper_table`, best in bold); one rate–quality figure per metric with bitrates.
TensorBoard also gets each rate–quality curve as scalars ``rate_quality/METRIC/FAMILY`` whose step is the
measured bitrate in bit/s.

TensorBoard event files go to ``RUN_DIR/tensorboard`` (``torch.utils.tensorboard.SummaryWriter``); W&B writes
where its own settings say (``WANDB_MODE=offline``: ``RUN_DIR/wandb``, sync later with ``wandb sync``). Both
packages are optional extras, imported only here; a missing one is one line naming the extra to install.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit.errors import UserError
from evalkit.reports.rundata import RunData

TENSORBOARD_DIR = "tensorboard"


class Tracker(enum.Enum):
    TENSORBOARD = "tensorboard"
    WANDB = "wandb"


#: The module each tracker needs and the extra of evalkit that installs it
_NEEDS = {Tracker.TENSORBOARD: ("tensorboard", "tensorboard"), Tracker.WANDB: ("wandb", "wandb")}


class TrackerUnavailable(UserError, ImportError):
    """A tracker whose package is not installed; the message names the extra to install."""


@dataclass(frozen=True)
class Scalar:
    """One logged number: ``tag`` (``summary/si_sdr/Opus 12 kbps``), ``value``, ``step``."""

    tag: str
    value: float
    step: int = 0


def check_available(trackers: Iterable[Tracker | str]) -> list[Tracker]:
    """The trackers as :class:`Tracker`, each checked to be importable (before a run starts, not after).

    Raises:
        TrackerUnavailable: a tracker's package is missing ("install the `wandb` extra ...").
        ValueError: an unknown tracker name.
    """
    out = []
    for tracker in dict.fromkeys(Tracker(t) for t in trackers):
        module, extra = _NEEDS[tracker]
        if not _installed(module):
            raise TrackerUnavailable(f"--log {tracker.value}: the `{module}` package is not installed; install "
                                     f"the `{extra}` extra: pip install 'codec-evalkit[{extra}]'")
        out.append(tracker)
    return out


def _installed(module: str) -> bool:
    if module in sys.modules:  # imported already (or blocked: None)
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def summary_scalars(run: RunData) -> list[Scalar]:
    """Each variant's mean of each metric (summary.csv ``mean``), NaN means left out."""
    if run.summary.empty:
        return []
    labels = run.labels()
    return [Scalar(f"summary/{r.metric}/{labels.get(r.codec_spec, r.codec_spec)}", float(r.mean))
            for r in run.summary.itertuples() if not math.isnan(r.mean)]


def rate_quality_scalars(run: RunData) -> list[Scalar]:
    """Each rate–quality point as ``rate_quality/METRIC/FAMILY`` at step = measured bitrate in bit/s."""
    rq = run.rate_quality
    if rq.empty:
        return []
    rq = rq[(rq["bitrate_kbps"] > 0) & rq["mean"].notna()]
    return [Scalar(f"rate_quality/{r.metric}/{r.family}", float(r.mean), int(round(r.bitrate_kbps * 1000)))
            for r in rq.itertuples()]


def summary_markdown(run: RunData) -> str:
    """The scoreboard of every metric as a Markdown table (:func:`evalkit.reports.paper_table.to_markdown`)."""
    from evalkit.reports.paper_table import to_markdown
    from evalkit.reports.scoreboard import scoreboard

    return to_markdown(scoreboard(run, run.metrics))


def rate_quality_images(run: RunData) -> dict[str, np.ndarray]:
    """``rate_quality/METRIC`` -> the figure as an RGB ``uint8`` array ``[H, W, 3]`` (200 dpi), per metric with
    bitrates."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from evalkit.reports import plots

    rq = run.rate_quality
    metrics = sorted(rq.loc[rq["bitrate_kbps"] > 0, "metric"].unique()) if not rq.empty else []
    out = {}
    for metric in metrics:
        fig = plots.rate_quality_figure(run, metric)
        if fig is None:
            continue
        fig.set_dpi(plots.PNG_DPI)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        out[f"rate_quality/{metric}"] = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return out


def log_tensorboard(run: RunData, log_dir: Path | None = None) -> Path:
    """Write the run's scalars, table and figures as TensorBoard events under ``log_dir`` (default
    ``RUN_DIR/tensorboard``). Returns the folder."""
    from torch.utils.tensorboard import SummaryWriter

    log_dir = Path(log_dir) if log_dir is not None else run.run_dir / TENSORBOARD_DIR
    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for s in summary_scalars(run) + rate_quality_scalars(run):
            writer.add_scalar(s.tag, s.value, global_step=s.step)
        writer.add_text("summary", summary_markdown(run))
        for tag, image in rate_quality_images(run).items():
            writer.add_image(tag, image, dataformats="HWC")
    finally:
        writer.close()
    return log_dir


def log_wandb(run: RunData, project: str = "evalkit") -> str:
    """Log the run to Weights & Biases: ``wandb.init`` (name: the run folder's, config: ``run.json``'s), the
    summary scalars into ``run.summary``, the scoreboard as a ``wandb.Table`` and the rate–quality figures as
    ``wandb.Image``; W&B's own settings choose online or offline. Returns the W&B run's folder or id."""
    wandb = importlib.import_module("wandb")
    from evalkit.reports.scoreboard import scoreboard

    # silent: W&B's banner and summary would repeat what evalkit prints; its log stays in the run's logs/ folder
    tracked = wandb.init(project=project, name=run.run_dir.name, dir=str(run.run_dir),
                         config=(run.provenance.get("config") or {}), job_type="evaluation",
                         settings=wandb.Settings(silent=True))
    offline = tracked.settings.mode in ("offline", "dryrun")
    try:
        for s in summary_scalars(run):
            tracked.summary[s.tag] = s.value
        board = scoreboard(run, run.metrics)
        columns = ["variant", "kbps"] + [f"{c.name} {suffix}" for c in board.columns for suffix in
                                         ("mean", "ci_low", "ci_high", "n")]
        rows = []
        for r in board.rows:
            row: list = [r.label, None if math.isnan(r.kbps) else r.kbps]
            for c in board.columns:
                cell = r.cells.get(c.name)
                row += [None] * 4 if cell is None else [_or_none(cell.mean), _or_none(cell.ci_low),
                                                        _or_none(cell.ci_high), cell.n]
            rows.append(row)
        payload = {"summary_table": wandb.Table(columns=columns, data=rows)}
        payload.update({tag: wandb.Image(image) for tag, image in rate_quality_images(run).items()})
        tracked.log(payload)
    finally:
        tracked.finish()
    if offline:
        folder = Path(tracked.dir).parent.resolve()  # the run's folder (``dir`` is its files/ subfolder)
        return f"{folder} (offline; upload with: wandb sync {folder})"
    return str(getattr(tracked, "url", None) or tracked.id)


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def log_run(run_dir: str | Path, trackers: Iterable[Tracker | str]) -> list[str]:
    """Send a finished run folder to each tracker; returns where each wrote (one line per tracker)."""
    from evalkit.reports.rundata import load_run

    trackers = check_available(trackers)
    run = load_run(run_dir)
    done = []
    for tracker in trackers:
        if tracker is Tracker.TENSORBOARD:
            done.append(f"tensorboard: {log_tensorboard(run)}")
        else:
            done.append(f"wandb: {log_wandb(run)}")
    return done
