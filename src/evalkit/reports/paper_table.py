"""The scoreboard as a table for a paper: ``evalkit summary RUN --format latex|markdown|csv``.

Each cell is a variant's mean of a metric over the column's shared items with its 95 % CI
(:mod:`evalkit.reports.scoreboard`: the same numbers ``evalkit summary`` prints). The best codec of a column is
bold in the metric's own direction (higher or lower is better; never an anchor, the reference, random weights or
a variant that failed on items others scored). The header carries each metric's unit and direction. The number
of items n is stated once when every cell has the same, else in every cell.
"""

from __future__ import annotations

import csv
import enum
import io
import math

from evalkit.reports.scoreboard import Cell, MetricColumn, Row, Scoreboard

DIGITS = 2  # decimals of means and CI bounds in every format
RANDOM_LABEL = " (random weights)"


class TableFormat(enum.Enum):
    LATEX = "latex"
    MARKDOWN = "markdown"
    CSV = "csv"


def _num(value: float, minus: str = "-") -> str:
    """``value`` with :data:`DIGITS` decimals (``-`` for NaN), its minus sign written as ``minus``.

    >>> _num(-1.074), _num(10.9312), _num(float("nan")), _num(-0.5, "$-$")
    ('-1.07', '10.93', '-', '$-$0.50')
    """
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:.{DIGITS}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]  # no "-0.00"
    return minus + text[1:] if text.startswith("-") else text


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "×": r"$\times$", "–": "--"}


def latex_escape(text: str) -> str:
    r"""Plain text as LaTeX source: the ten special characters escaped, arrows and a few symbols as math.

    >>> print(latex_escape("a_b & 50% {x} ↑"))
    a\_b \& 50\% \{x\} $\uparrow$
    """
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _markdown_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def column_header(column: MetricColumn) -> str:
    """``SI-SDR (dB) ↑``: display name, the full unit, direction."""
    unit = f" ({column.unit})" if column.unit else ""
    return f"{column.label}{unit} {column.arrow}".strip()


def row_label(row: Row) -> str:
    return row.label + (RANDOM_LABEL if row.random and RANDOM_LABEL.strip() not in row.label else "")


def _cells(board: Scoreboard) -> list[Cell]:
    return [c for r in board.rows for c in r.cells.values() if c is not None and not math.isnan(c.mean)]


def uniform_n(board: Scoreboard) -> int | None:
    """The n of every cell with a value when they all have the same, else None (each cell then shows its n)."""
    counts = {c.n for c in _cells(board)}
    return counts.pop() if len(counts) == 1 else None


def _kbps(row: Row) -> str:
    return "-" if math.isnan(row.kbps) else f"{row.kbps:.2f}"


def _note(board: Scoreboard) -> str:
    n = uniform_n(board)
    items = f"n = {n} items per cell" if n is not None else "n items per cell as given"
    return (f"Mean over the items every variant in the column scored, 95 % CI in brackets; {items}; bold: best "
            "codec per column (not anchors, the reference or random weights); ↑ higher, ↓ lower is better.")


def _cell_text(cell: Cell | None, show_n: bool, minus: str, bold, n_text) -> str:
    if cell is None or math.isnan(cell.mean):
        return "-"
    mean = _num(cell.mean, minus)
    text = f"{bold(mean) if cell.best else mean} [{_num(cell.ci_low, minus)}, {_num(cell.ci_high, minus)}]"
    return text + (n_text(cell.n) if show_n else "")


def to_markdown(board: Scoreboard) -> str:
    """A GitHub-flavoured Markdown table (bold with ``**``), the note below it."""
    show_n = uniform_n(board) is None
    head = ["Codec variant", "kbps", *(column_header(c) for c in board.columns)]
    lines = ["| " + " | ".join(_markdown_escape(h) for h in head) + " |",
             "|" + "|".join([":---", "---:"] + [":---:"] * len(board.columns)) + "|"]
    for row in board.rows:
        cells = [_cell_text(row.cells.get(c.name), show_n, "-", lambda t: f"**{t}**", lambda n: f" (n={n})")
                 for c in board.columns]
        lines.append("| " + " | ".join([_markdown_escape(row_label(row)), _kbps(row), *cells]) + " |")
    return "\n".join(lines) + "\n\n" + _markdown_escape(_note(board)) + "\n"


def to_latex(board: Scoreboard) -> str:
    """A booktabs ``table`` (``\\usepackage{booktabs}``): ``\\toprule``/``\\midrule``/``\\bottomrule``, bold
    best, the note as caption."""
    show_n = uniform_n(board) is None
    head = ["Codec variant", "kbps", *(column_header(c) for c in board.columns)]
    lines = ["\\begin{table}[t]", "\\centering", "\\begin{tabular}{lr" + "c" * len(board.columns) + "}",
             "\\toprule", " & ".join(latex_escape(h) for h in head) + " \\\\", "\\midrule"]
    for row in board.rows:
        cells = [_cell_text(row.cells.get(c.name), show_n, "$-$", lambda t: f"\\textbf{{{t}}}",
                            lambda n: f" ($n$={n})") for c in board.columns]
        lines.append(" & ".join([latex_escape(row_label(row)), _kbps(row), *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{latex_escape(_note(board))}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(board: Scoreboard) -> str:
    """One row per variant: label, spec, kbps, then per metric its mean, CI bounds, n and whether it is the
    column's best (full precision; empty for NaN); headers carry the unit."""
    def num(v: float) -> str:
        return "" if v is None or math.isnan(v) else f"{v:.9g}"

    head = ["codec variant", "codec_spec", "bitrate (kbps)"]
    for c in board.columns:
        name = column_header(c)
        head += [f"{name} mean", f"{name} CI low", f"{name} CI high", f"{c.label} n", f"{c.label} best"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for row in board.rows:
        values = [row_label(row), row.spec, num(row.kbps)]
        for c in board.columns:
            cell = row.cells.get(c.name)
            values += (["", "", "", "", ""] if cell is None else
                       [num(cell.mean), num(cell.ci_low), num(cell.ci_high), str(cell.n), str(cell.best).lower()])
        writer.writerow(values)
    return out.getvalue()


def paper_table(board: Scoreboard, fmt: TableFormat | str) -> str:
    """The scoreboard in ``fmt`` (``latex``, ``markdown`` or ``csv``)."""
    fmt = TableFormat(fmt)
    return {TableFormat.LATEX: to_latex, TableFormat.MARKDOWN: to_markdown, TableFormat.CSV: to_csv}[fmt](board)
