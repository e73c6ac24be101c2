"""What a recipe produces: artifacts (figures, tables, listening folders) and the paper's claims beside them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: ``full``: the paper's configuration (pretrained weights when present); ``tiny``: the same pipeline at test scale
#: (random weights, tiny checkpoints, a few clips), every output labelled as such.
Scale = Literal["full", "tiny"]
#: ``unavailable``: a variant the recipe could not run here (title: the variant, note: why); figures omit it.
ArtifactKind = Literal["figure", "table", "listening", "run", "unavailable"]
PAPER_DATA = Path(__file__).parent / "paper_data"


@dataclass(frozen=True)
class PaperClaim:
    """What the paper reports for one artifact, with where it says so.

    ``values`` holds only numbers transcribed from the paper (empty when none were transcribed); ``source`` names
    the paper, its arXiv id or DOI, and the figure, table or section.
    """

    text: str
    source: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """One output of a recipe: ``key`` matches the paper data's key; ``path`` is the file (a PNG or SVG figure,
    an HTML/CSV/Markdown table) or the folder (a run, a listening test; an unavailable variant's run folder)."""

    key: str
    kind: ArtifactKind
    title: str
    path: Path
    note: str = ""
    paper: PaperClaim | None = None


def paper_claims(recipe: str) -> dict[str, PaperClaim]:
    """The paper's claims for ``recipe``, keyed by artifact key (``paper_data/<recipe>.json``)."""
    path = PAPER_DATA / f"{recipe}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {key: PaperClaim(text=entry["text"], source=entry["source"], values=entry.get("values", {}))
            for key, entry in raw["claims"].items()}


def paper_info(recipe: str) -> dict[str, str]:
    """The paper a recipe reproduces: ``title``, ``authors``, ``source`` (arXiv id or where it is named) and a
    ``note`` on what could be read of it (``paper_data/<recipe>.json``; empty fields when absent)."""
    raw = json.loads((PAPER_DATA / f"{recipe}.json").read_text(encoding="utf-8")).get("paper", {})
    return {key: str(raw.get(key, "")) for key in ("title", "authors", "source", "note")}
