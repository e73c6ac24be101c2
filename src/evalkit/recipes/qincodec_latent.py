"""Fig. 4 of the QinCodec recipe: quality against bitrate at several latent dimensions of the autoencoder.

One run over several checkpoints (the ``checkpoint=`` parameter of ``qincodec``), each at several numbers of
QINCo2 steps, gives one rate–quality curve per checkpoint, labelled with its latent dimension (read from the
checkpoint's configuration). At ``full`` scale the checkpoints are the shipped one (``small``, D = 64) and those
trained with ``evalkit qincodec train --config small --latent-dim D`` into :data:`FULL_CHECKPOINTS`; a missing
one is reported unavailable with that command. At ``tiny`` scale the recipe trains ``tiny`` checkpoints at
:data:`TINY_DIMS` itself (seconds each).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from evalkit.recipes import shared
from evalkit.recipes.base import Artifact, Scale

log = logging.getLogger("evalkit.recipes.qincodec")

ROOT = Path(__file__).resolve().parents[3]
#: latent dimension → checkpoint at full scale (``shipped``: the package's, the ``small`` recipe at D = 64)
FULL_CHECKPOINTS: dict[int, str] = {32: "runs/papers/qincodec-latent/d32/qincodec.pt", 64: "shipped",
                                    128: "runs/papers/qincodec-latent/d128/qincodec.pt"}
FULL_STEPS = (2, 4, 8, 12, 16)  # QINCo2 steps at full scale: 2 to 16 kbps for the small recipe (100 Hz, K = 1024)
TINY_DIMS = (4, 8, 16)
TINY_STEPS = (1, 2, 3, 4)  # every step of the tiny recipe (0.4 to 1.6 kbps)
TRAIN_DATA = "data/train"  # the small recipe's training corpus (scripts/build_demo_corpus.py --train)
TINY_FLAG = " (tiny checkpoints trained in seconds: NOT the paper's models)"


def train_command(dim: int, path: str) -> str:
    """The command that trains the ``small`` recipe at latent dimension ``dim`` into ``path``'s folder."""
    return (f"evalkit qincodec train --data {TRAIN_DATA} --out {Path(path).parent} --config small "
            f"--latent-dim {dim}")


def full_checkpoints(root: Path = ROOT) -> tuple[dict[int, str], dict[str, str]]:
    """(latent dimension → checkpoint that exists, unavailable: ``latent dimension D`` → why and the command that
    trains it) for :data:`FULL_CHECKPOINTS` (relative paths from ``root``)."""
    found, missing = {}, {}
    for dim, path in FULL_CHECKPOINTS.items():
        if path == "shipped" or (root / path).is_file():
            found[dim] = path if path == "shipped" else str(root / path)
        else:
            missing[f"Fig. 4 latent dimension {dim}"] = (f"no checkpoint at {path}; train it with "
                                                         f"`{train_command(dim, path)}`")
    return found, missing


def train_tiny(data: Path, out: Path, dims: Sequence[int] = TINY_DIMS) -> dict[int, str]:
    """Train the ``tiny`` recipe at each latent dimension of ``dims`` on the audio of ``data`` into
    ``out/d<D>/`` (a rerun finds them done); latent dimension → packaged checkpoint."""
    import torch

    from evalkit.training.qincodec.recipes import get_config
    from evalkit.training.qincodec.train import Context, run_training

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors gain nothing from more threads, and lose on a busy machine
    try:
        found = {}
        for dim in dims:
            folder = out / f"d{dim}"
            if not (folder / "qincodec.pt").is_file():
                ctx = Context(get_config("tiny", latent_dim=dim), data, folder, torch.device("cpu"), progress=False)
                run_training(ctx)
            found[dim] = str(folder / "qincodec.pt")
        return found
    finally:
        torch.set_num_threads(threads)


def run_config(base: Mapping, checkpoints: Mapping[int, str], steps: Sequence[int], out: Path) -> dict:
    """The Fig. 4 run config: ``base``'s dataset, metrics and settings, one ``qincodec`` grid per checkpoint at
    every number of ``steps``, output ``out``."""
    codecs = [{"family": "qincodec", "params": {"checkpoint": path, "n_steps": list(steps)}}
              for _, path in sorted(checkpoints.items())]
    return {**base, "codecs": codecs, "output": str(out)}


def latent_dims(data) -> dict[str, int]:
    """Rate–quality curve → the latent dimension of its checkpoint (from the checkpoint's configuration)."""
    from evalkit.codecs.qincodec.checkpoint import read_header
    from evalkit.codecs.spec import split_spec

    out = {}
    for spec in data.summary["codec_spec"].unique() if not data.summary.empty else []:
        checkpoint = split_spec(spec)[1].get("checkpoint", "shipped")
        out.setdefault(data.record(spec).curve, int(read_header(checkpoint)["config"]["model"]["latent_dim"]))
    return out


def latent_figures(data, figures: Path, flag: str) -> list[Artifact]:
    """Per metric: quality against bitrate, one curve per latent dimension (``D = …`` in the legend)."""
    from evalkit.reports.plots import metric_name, rate_quality_figure

    dims = latent_dims(data)
    labels = {f"family:{curve}": f"latent D = {dim}" for curve, dim in dims.items()}
    out = []
    for metric in data.metrics:
        fig = rate_quality_figure(data, metric)
        if fig is None:
            continue
        _relabel(fig, labels)
        path = shared.save(fig, figures / f"fig4_latent_{metric}.png")
        title = f"Fig. 4: {metric_name(metric)} against bitrate, one curve per latent dimension{flag}"
        out.append(Artifact(f"fig4_latent_{metric}", "figure", title, path,
                            "curves: " + "; ".join(f"D = {d}" for d in sorted(set(dims.values())))))
    return out


def _relabel(fig, labels: Mapping[str, str]) -> None:
    """Rename the curves whose gid is in ``labels`` (a random-weights suffix is kept), give each its own colour
    (they are one family, drawn in one colour by default) and order the legend by latent dimension."""
    import re

    from evalkit.reports.plots import OKABE_ITO

    palette = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky_blue", "black")]
    names = {}
    for ax in fig.axes:
        curves = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("family:")]
        bars = ax.containers  # one error-bar container per curve, drawn just before it
        for i, line in enumerate(curves):
            gid = line.get_gid()
            key = gid.removesuffix("+random")
            if key not in labels:
                continue
            colour = palette[i % len(palette)]
            names[line.get_label()] = labels[key] + (" (random weights)" if gid.endswith("+random") else "")
            line.set_label(names[line.get_label()])
            line.set_color(colour)
            line.set_markeredgecolor(colour)
            if line.get_markerfacecolor() != "white":
                line.set_markerfacecolor(colour)
            if len(bars) == len(curves):
                for artist in bars[i].get_children():  # the bars, and the caps (markers: their edge colour)
                    artist.set_color(colour)
                    if hasattr(artist, "set_markeredgecolor"):
                        artist.set_markeredgecolor(colour)
    if not fig.legends:
        return
    import matplotlib

    from evalkit.reports.plots import STYLE

    for legend in list(fig.legends):
        legend.remove()
    handles, texts = fig.axes[0].get_legend_handles_labels()  # the recoloured lines themselves
    entries = sorted(zip(texts, handles, strict=True),
                     key=lambda e: int(m.group(1)) if (m := re.search(r"D = (\d+)", e[0])) else 0)
    with matplotlib.rc_context(STYLE):  # the figures' own legend look (8 pt, no frame)
        fig.legend([h for _, h in entries], [t for t, _ in entries], loc="outside lower center")


def build(base: Mapping, base_dir: Path, source: str, out: Path, scale: Scale, train_data: Path,
          offline: bool | None = None) -> list[Artifact]:
    """Fig. 4 end to end: the checkpoints (trained at ``tiny``; found at ``full``), their run into
    ``out/run-latent``, one figure per metric, and an ``unavailable`` artifact per missing checkpoint."""
    flag = TINY_FLAG if scale == "tiny" else ""
    if scale == "tiny":
        checkpoints, missing = train_tiny(train_data, out / "checkpoints"), {}
        steps = TINY_STEPS
    else:
        checkpoints, missing = full_checkpoints()
        steps = FULL_STEPS
    for name, why in missing.items():
        log.warning("qincodec recipe: %s unavailable: %s", name, why)
    data, unavailable = shared.run(run_config(base, checkpoints, steps, out / "run-latent"), base_dir, source,
                                   "qincodec", scale, offline)
    dims = ", ".join(str(d) for d in sorted(checkpoints))
    trained = f"tiny checkpoints trained on {train_data.resolve()} (seconds each)" if scale == "tiny" else "checkpoints"
    artifacts = [Artifact("fig4_run", "run", f"evalkit run of Fig. 4: latent dimensions {dims}{flag}", data.run_dir,
                          f"{trained}: {'; '.join(f'D = {d}: {p}' for d, p in sorted(checkpoints.items()))}")]
    artifacts += latent_figures(data, out / "figures", flag)
    return artifacts + shared.unavailable_artifacts({**missing, **unavailable}, data.run_dir)
