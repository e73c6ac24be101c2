"""The documentation site builds with ``mkdocs build --strict``, offline, with its generated reference pages."""

import argparse
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a strict mkdocs build of the whole site

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text()


def test_the_strict_build_fetches_and_references_no_external_font_script_or_stylesheet(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for html_file in pages:
        text = html_file.read_text()
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, html_file
        assert not re.search(r"<script[^>]+src=\"(https?:)?//", text), html_file
        assert not re.search(r"<link[^>]+href=\"(https?:)?//", text), html_file


def _leaf_commands(parser: argparse.ArgumentParser, path: str):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaf_commands(sub, f"{path} {name}")


def test_the_cli_reference_has_every_command_and_option_of_the_parsers(site):
    from evalkit.cli import build_parser

    text = page(site, "reference/cli")
    leaves = list(_leaf_commands(build_parser(), "evalkit"))
    assert len(leaves) > 15
    for path, parser in leaves:
        assert f"<code>{path}</code>" in text, path
        for action in parser._actions:
            for option in action.option_strings:
                assert option in text, (path, option)


def test_the_config_reference_lists_every_schema_field_with_its_default(site):
    from evalkit.runner.config import DatasetConfig, DecodedConfig, RunConfig

    text = page(site, "reference/config")
    for prefix, model in (("", RunConfig), ("dataset.", DatasetConfig), ("codecs[].decoded.", DecodedConfig)):
        for name in model.model_fields:
            assert f"<code>{prefix}{name}</code>" in text, prefix + name
    row = re.search(r"<code>max_delay_s</code>.*?</tr>", text, flags=re.S).group(0)
    assert "<code>0.05</code>" in row and "result keys" in row


def test_the_codec_and_metric_pages_hold_every_registered_family_and_metric(site):
    from evalkit.codecs.catalog import catalog_records
    from evalkit.metrics import ALL_INFO

    codecs, metrics = page(site, "reference/codecs"), page(site, "reference/metrics")
    for record in catalog_records():  # evalkit's own: plugins registered by earlier tests are not the site's
        if record["source"] != "evalkit":
            continue
        assert f'id="{record["name"]}"' in codecs, record["name"]
        for variant in record["variants"]:
            assert f"<code>{variant['spec']}</code>".replace("&", "&amp;") in codecs, variant["spec"]
    assert "<code>encodec-24khz?bandwidth=6</code></td>\n<td>6.0</td>" in codecs  # its bitrate, computed
    for name, info in ALL_INFO.items():
        if getattr(info, "source", ""):  # a plugin metric registered by an earlier test
            continue
        assert f'id="{name}"' in metrics and html.escape(info.description, quote=False) in metrics, name


def test_the_api_page_renders_the_public_functions_from_their_docstrings(site):
    text = page(site, "reference/api")
    for name in ("evalkit.api.score", "evalkit.api.run", "evalkit.api.load_run", "evalkit.codecs.Codec",
                 "evalkit.metrics.MetricPlugin", "evalkit.runner.reader.RunReader", "evalkit.stats.bootstrap.mean_ci"):
        assert f'id="{name}"' in text, name
    assert "Bjøntegaard delta quality" in text
