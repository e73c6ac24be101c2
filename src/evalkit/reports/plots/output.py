"""Writers of a figure: PNG (200 dpi), SVG (text as glyph paths or as ``<text>``), PDF (fonts embedded), inline
SVG text and a PNG data URI; no timestamp or software name in any of them, so one figure gives the same bytes."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from evalkit.reports.plots.style import STYLE

PNG_DPI = 200
FIGURE_FORMATS = (".png", ".svg", ".pdf")

_METADATA = {"svg": {"Creator": None, "Date": None, "Type": None, "Format": None},  # no URL, no timestamp
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}, "png": {"Software": None}}


def _save(fig: Figure, target, fmt: str, text_as_paths: bool = True) -> None:
    rc = {**STYLE, "svg.fonttype": "path" if text_as_paths else "none"}
    with matplotlib.rc_context(rc):
        fig.savefig(target, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])


def figure_svg(fig: Figure, text_as_paths: bool = True) -> str:
    """The figure as inline SVG text (``<svg ...>...</svg>``, no XML declaration or DOCTYPE), with no external
    reference: text is drawn as glyph paths (the default: looks the same without DejaVu installed) or, with
    ``text_as_paths=False``, kept as ``<text>`` in DejaVu Sans (searchable, smaller)."""
    buf = io.BytesIO()
    _save(fig, buf, "svg", text_as_paths)
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg"):]


def figure_png_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (200 dpi)."""
    buf = io.BytesIO()
    _save(fig, buf, "png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` in the format its extension names: ``.png`` (200 dpi), ``.svg`` (text as paths) or
    ``.pdf`` (fonts embedded). Returns the path.

    Raises:
        ValueError: another extension (the message names the path and the valid ones).
        OSError: the file cannot be written.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FIGURE_FORMATS:
        raise ValueError(f"{path}: unsupported figure format {ext or '(no extension)'}; "
                         f"expected {', '.join(FIGURE_FORMATS)}")
    if ext == ".svg":
        path.write_text('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + figure_svg(fig),
                        encoding="utf-8")
    else:
        _save(fig, path, ext[1:])
    return path
