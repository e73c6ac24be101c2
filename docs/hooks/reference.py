"""mkdocs hook: the reference pages generated from evalkit itself at build time.

A page holds a marker line such as ``<!-- generated: cli -->``; :func:`on_page_markdown` replaces it with Markdown
made from the argparse parsers (``evalkit.cli.build_parser``), the pydantic run-config schema
(``evalkit.runner.config.RunConfig``) or the codec and metric registries (the records that ``evalkit codecs list
--json`` and ``evalkit metrics list --json`` print). A marker with no generator fails the build.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def _evalkit_on_path() -> None:
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))


def _cell(text: object) -> str:
    """One Markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    return f"`{text}`".replace("|", "\\|")


# ---------------------------------------------------------------------------------------------------- CLI


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each sub-command, in the order ``--help`` lists them."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            out += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return out


def _argument_row(action: argparse.Action) -> str:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            name += " " + (action.metavar or action.dest.upper())
    else:
        name = action.metavar or action.dest
    default = action.default
    shown_default = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else _code(default)
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        choices = ", ".join(_code(c) for c in action.choices)
    else:
        choices = ""
    required = "yes" if action.required or not action.option_strings else ""
    return f"| {_code(name)} | {_cell(action.help or '')} | {choices} | {shown_default} | {required} |"


def _command_section(path: str, help_text: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    subs = _subcommands(parser)
    lines = [f"{'#' * level} `{path}`", ""]
    if help_text:
        lines += [help_text[0].upper() + help_text[1:] + ".", ""]
    if not subs:
        parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=110)
        usage = parser.format_usage().removeprefix("usage: ").strip()
        lines += ["```text", usage, "```", ""]
        rows = [_argument_row(a) for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        if rows:
            lines += ["| argument | meaning | choices | default | required |", "|---|---|---|---|---|", *rows, ""]
    for name, sub_help, sub in subs:
        lines += _command_section(f"{path} {name}", sub_help, sub, min(level + 1, 4))
    return lines


def cli_reference() -> str:
    """Every command and sub-command of ``evalkit``: usage and a table of its arguments."""
    from evalkit.cli import build_parser

    parser = build_parser()
    lines = [f"`evalkit [-v] COMMAND ...`: {parser.description}", "",
             "| global option | meaning |", "|---|---|"]
    lines += [f"| {_code(', '.join(a.option_strings))} | {_cell(a.help)} |" for a in parser._actions
              if a.option_strings]
    lines.append("")
    for name, help_text, sub in _subcommands(parser):
        lines += _command_section(f"evalkit {name}", help_text, sub, 2)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- config


def _field_comments(model: type) -> dict[str, str]:
    """A field's attribute docstring, else the comment at the end of its line in the source."""
    source = textwrap.dedent("".join(inspect.getsourcelines(model)[0]))
    lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body[0].body
    notes: dict[str, str] = {}
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        following = body[i + 1] if i + 1 < len(body) else None
        if isinstance(following, ast.Expr) and isinstance(getattr(following, "value", None), ast.Constant) \
                and isinstance(following.value.value, str):
            notes[node.target.id] = " ".join(following.value.value.split())
            continue
        line = lines[node.end_lineno - 1]
        if "#" in line:
            notes[node.target.id] = line.split("#", 1)[1].strip()
    return notes


def _type_name(annotation: object) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")
    return re.sub(r"<class '([^']+)'>", r"\1", text).replace("evalkit.runner.config.", "")


def _constraints(field) -> str:
    parts = []
    for item in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "length ≥")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _key_role(dotted: str) -> str:
    from evalkit.runner import config

    if dotted in config.DECODE_FIELDS:
        return "unit and result keys (changes decoded audio)"
    if dotted in config.SCORE_FIELDS:
        return "result keys (changes metric values)"
    if dotted in config.PLAN_FIELDS or dotted.split(".")[0] in config.PLAN_FIELDS:
        return "none (what is planned or how it runs)"
    if any(name.startswith(dotted + ".") for name in (*config.DECODE_FIELDS, *config.PLAN_FIELDS)):
        return "per field (below)"
    return ""


def _model_table(model: type, prefix: str) -> list[str]:
    from pydantic_core import PydanticUndefined

    notes = _field_comments(model)
    rows = ["| field | type | default | constraint | stored-value keys | note |", "|---|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = _code(field.default_factory())
        else:
            default = _code(field.default) if field.default is not PydanticUndefined else ""
        role = ("the variant's spec (part of its unit key)" if prefix.startswith("codecs[]")
                else _key_role(f"{prefix}{name}"))
        rows.append(f"| {_code(prefix + name)} | {_code(_type_name(field.annotation))} | {default} | "
                    f"{_cell(_constraints(field))} | {role} | {_cell(notes.get(name, ''))} |")
    return rows


def config_reference() -> str:
    """The fields of a run config, section by section, from the pydantic models."""
    from evalkit.runner.config import CodecGrid, DatasetConfig, DecodedConfig, RunConfig

    sections = [("Top level", RunConfig, ""), ("`dataset`", DatasetConfig, "dataset."),
                ("`codecs` entries", CodecGrid, "codecs[]."), ("`codecs[].decoded`", DecodedConfig,
                                                                 "codecs[].decoded.")]
    lines: list[str] = []
    for title, model, prefix in sections:
        doc = inspect.getdoc(model) if model.__doc__ else ""
        lines += [f"### {title}", ""]
        if doc and not doc.startswith(("Usage docs", "A base class")):
            lines += [" ".join(doc.split()), ""]
        lines += [*_model_table(model, prefix), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- registries


def _range(param: dict) -> str:
    if param["choices"] is not None:
        return ", ".join(_code(c) for c in param["choices"])
    low, high = param["minimum"], param["maximum"]
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low} … {'' if high is None else high}".strip()


def codecs_reference() -> str:
    """One section per codec family (``evalkit codecs list --json``): parameters and computed bitrates."""
    from evalkit.codecs.catalog import catalog_records

    lines: list[str] = []
    for record in catalog_records():
        lines += [f"### `{record['name']}`", "", _cell(record["description"]) + ".", "",
                  f"Source: {record['source']}.", ""]
        lines += ["| parameter | type | default | values | meaning |", "|---|---|---|---|---|"]
        for p in record["params"]:
            name = p["name"] + (" (sweep)" if p["sweep"] else "")
            lines.append(f"| {_code(name)} | {p['type']} | {_code(p['default'])} | {_range(p)} | {_cell(p['help'])} |")
        lines.append("")
        if record.get("unavailable"):
            lines += [f"Unavailable with its defaults: {_cell(record['unavailable'])}", ""]
        variants = record["variants"]
        if variants:
            lines += ["| spec | bitrate (kbps) | of which side info (kbps) | codec rate (Hz) | frames/s | codebooks |",
                      "|---|---|---|---|---|---|"]
            for v in variants:
                cells = [v["bitrate_kbps"], v["side_info_kbps"] or "", v["sample_rate"], v["frame_rate"],
                         v["num_codebooks"]]
                lines.append(f"| {_code(v['spec'])} | " + " | ".join("–" if c is None else _cell(c) for c in cells)
                             + " |")
            lines.append("")
    return "\n".join(lines)


def _rates(info: dict) -> str:
    if info["sample_rate"] is None:
        return "reference's"
    rates = [info["sample_rate"], *info["fallback_rates"]]
    return " or ".join(f"{r / 1000:g} kHz" for r in rates)


def metrics_reference() -> str:
    """The metric registry (``evalkit metrics list --json``): one table, then one section per metric."""
    from dataclasses import asdict

    from evalkit.metrics import ALL_INFO

    records = [asdict(info) for info in ALL_INFO.values()]
    lines = ["| metric | kind | unit | better | rate | min. duration (s) | applies to | version |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        better = "higher ↑" if r["higher_is_better"] else "lower ↓"
        lines.append(f"| [{_code(r['name'])}](#{r['name']}) | {r['kind']} | {_cell(r['unit'])} | "
                     f"{better} | {_rates(r)} | {r['min_duration_s'] or ''} | {r['applies_to'] or 'all items'} | "
                     f"{r['version']} |")
    lines.append("")
    for r in records:
        lines += [f"### {r['name']}", "", f"**{_cell(r['display_name'])}**: {_cell(r['description'])}; "
                  f"{_cell(r['variant'])}.", ""]
        facts = [("channels", r["channels"]), ("library", r["library"]),
                 ("aligns internally", "yes" if r["aligns_internally"] else "no (evalkit aligns the pair)"),
                 ("range", "" if r["value_range"] == (None, None) else r["value_range"]),
                 ("needs the item's text", "yes" if r["needs_text"] else ""),
                 ("dependencies", ", ".join(r["dependencies"])), ("paper", r["paper"])]
        lines += [f"- {name}: {_cell(value)}" for name, value in facts if value not in ("", None, [], ())]
        lines.append("")
    return "\n".join(lines)


GENERATORS: dict[str, Callable[[], str]] = {"cli": cli_reference, "config": config_reference,
                                            "codecs": codecs_reference, "metrics": metrics_reference}


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- generated:" not in markdown:
        return markdown
    _evalkit_on_path()

    def generate(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: no generator for marker {name!r} (known: {', '.join(GENERATORS)})")
        return GENERATORS[name]()

    return MARKER.sub(generate, markdown)
