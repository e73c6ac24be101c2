"""``evalkit reproduce NAME``: the shared driver that runs a recipe end to end and writes its page.

:func:`reproduce` checks the arguments, runs the recipe's ``build(out, scale=..., offline=...)`` (its run,
figures, tables and listening test folders, each run resumable into the same folder) and writes
``out/index.html`` (:mod:`evalkit.recipes.page`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import UserError
from evalkit.recipes import RECIPES
from evalkit.recipes.base import Artifact, Scale

SCALES: tuple[Scale, ...] = ("full", "tiny")


class RecipeError(UserError, ValueError):
    """A recipe name, scale or output folder that cannot be used; the message names it."""


@dataclass(frozen=True)
class Reproduced:
    """What :func:`reproduce` made: the page and every artifact (``unavailable`` ones included)."""

    page: Path
    artifacts: list[Artifact]

    @property
    def unavailable(self) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == "unavailable"]


def default_out(name: str, scale: Scale) -> Path:
    """``runs/papers/NAME`` (``NAME-tiny`` at tiny scale), relative to the working folder."""
    return Path("runs") / "papers" / (name if scale == "full" else f"{name}-tiny")


def check_arguments(name: str | None, scale: str, out: Path | None) -> tuple[str, Scale, Path]:
    """The recipe name, scale and output folder, checked.

    Raises:
        RecipeError: no or an unknown recipe, an unknown scale, or an output path that is a file.
    """
    known = ", ".join(sorted(RECIPES))
    if not name:
        raise RecipeError(f"reproduce: name a recipe: {known}")
    if name not in RECIPES:
        raise RecipeError(f"reproduce: unknown recipe {name!r}; known: {known}")
    if scale not in SCALES:
        raise RecipeError(f"reproduce --scale {scale}: expected {' or '.join(SCALES)}")
    folder = Path(out) if out is not None else default_out(name, scale)  # type: ignore[arg-type]
    if folder.exists() and not folder.is_dir():
        raise RecipeError(f"reproduce --out {folder}: is a file, not a folder")
    return name, scale, folder  # type: ignore[return-value]


def reproduce(name: str | None, out: Path | None = None, *, scale: str = "full",
              offline: bool | None = None) -> Reproduced:
    """Run recipe ``name`` into ``out`` (default :func:`default_out`) and write its page.

    Raises:
        RecipeError: bad arguments (:func:`check_arguments`); the recipe's own user errors pass through.
    """
    from evalkit.recipes.page import write_page

    name, scale_, folder = check_arguments(name, scale, out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecipeError(f"reproduce --out {folder}: cannot create it ({exc.strerror or exc})") from None
    module = importlib.import_module(RECIPES[name])
    artifacts = module.build(folder, scale=scale_, offline=offline)
    return Reproduced(write_page(name, artifacts, scale_, folder), artifacts)
