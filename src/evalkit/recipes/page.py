"""The page of a reproduced paper: one self-contained HTML file that puts each output of a recipe beside what the
paper reports.

Figures are embedded as PNG data URIs (SVG inline), tables as the HTML the recipe wrote, CSS inline: the file
makes no request when opened. Each artifact is one row: the output on the left, the paper's claim (its text, any
transcribed numbers, and where the paper says so) on the right. Random-weight outputs carry a badge and, at
``tiny`` scale, a banner says the numbers test the pipeline and are not the paper's; the variants that could not
run are listed with their reasons.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path

import evalkit
from evalkit.recipes.base import Artifact, Scale, paper_info
from evalkit.recipes.shared import RANDOM_FLAG

TEMPLATE = "page.html.j2"
PAGE_NAME = "index.html"
KIND_LABEL = {"run": "run", "listening": "listening test", "figure": "figure", "table": "table"}


def _shown_path(path: Path, base: Path) -> str:
    """``path`` relative to the page's folder when inside it, else as it is."""
    try:
        return os.path.relpath(path, base) if Path(path).resolve().is_relative_to(base.resolve()) else str(path)
    except ValueError:  # another drive
        return str(path)


def _embed(artifact: Artifact) -> dict:
    """How the page shows an artifact's output: ``img`` (a data URI), ``html`` (inline SVG or a table), or
    nothing (a folder: its path)."""
    from markupsafe import Markup

    path = Path(artifact.path)
    if artifact.kind == "figure" and path.suffix.lower() == ".png" and path.is_file():
        return {"img": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")}
    if path.suffix.lower() in (".svg", ".html") and path.is_file():
        text = path.read_text(encoding="utf-8")
        return {"html": Markup(text[text.index("<svg"):] if path.suffix.lower() == ".svg" else text)}
    return {}


def _random(artifact: Artifact) -> bool:
    """Whether the artifact shows random-weight results (its title says so)."""
    return RANDOM_FLAG.strip() in artifact.title or "(random weights" in artifact.title


def page_context(recipe: str, artifacts: Sequence[Artifact], scale: Scale, folder: Path) -> dict:
    """The template's data: the paper, the scale, each artifact (in the recipe's order: the paper's) with its
    output and the paper's claim, and the unavailable variants."""
    paper = paper_info(recipe)
    rows = []
    for a in artifacts:
        if a.kind == "unavailable":
            continue
        claim = None
        if a.paper is not None:
            claim = {"text": a.paper.text, "source": a.paper.source,
                     "values": [{"name": k, "value": v} for k, v in a.paper.values.items()]}
        rows.append({"key": a.key, "kind": KIND_LABEL[a.kind], "title": a.title, "note": a.note,
                     "path": _shown_path(a.path, folder), "random": _random(a), "claim": claim, **_embed(a)})
    unavailable = [{"name": a.title, "reason": a.note} for a in artifacts if a.kind == "unavailable"]
    return {"recipe": recipe, "paper": paper, "scale": scale, "rows": rows,
            "unavailable": unavailable, "version": evalkit.__version__,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": f"evalkit reproduce {recipe} --scale {scale} --out {folder}"}


def render(ctx: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evalkit.recipes", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE).render(**ctx)


def write_page(recipe: str, artifacts: Sequence[Artifact], scale: Scale, folder: Path) -> Path:
    """Write ``folder/index.html`` for ``artifacts`` of ``recipe``; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / PAGE_NAME
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render(page_context(recipe, artifacts, scale, folder)), encoding="utf-8")
    tmp.replace(out)
    return out
