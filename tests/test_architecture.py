"""evalkit's structure, measured by ``scripts/import_graph.py``: reports and listening never import codecs/,
the runner has no import cycle, and code outside codecs/ learns what a variant is from its record, not from
family names (the count may only go down)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Lines outside codecs/ whose string literals name a family (klt, lowpass, decoded, cutoff_hz) left after the
#: variant records: CLI help text, message wording, an SVG id, the listening anchors' specs, the cache folder's
#: name and the runner's config validation of KLT calibration.
MAX_FAMILY_TEST_LINES = 14


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def graph(import_graph) -> dict:
    import evalkit

    return import_graph.measure(Path(evalkit.__file__).parent)  # the evalkit under test


@pytest.mark.parametrize("reader", ["reports", "listening", "labels", "analysis"])
def test_readers_never_import_codecs(graph, reader):
    arrows = [a for a in graph["wrong_way"] if a.startswith(f"evalkit.{reader}") and " -> evalkit.codecs" in a]
    assert arrows == []


def test_the_runner_has_no_import_cycle(graph):
    assert [c for c in graph["cycles"] if any(m.startswith("evalkit.runner") for m in c)] == []


def test_family_names_are_tested_only_in_codecs(graph):
    assert graph["family_test_lines"] <= MAX_FAMILY_TEST_LINES, graph["family_tests"]
    readers = ("reports/rundata.py", "reports/scoreboard.py", "reports/tables.py", "reports/comparisons.py",
               "reports/html.py", "reports/audio_examples.py", "reports/plots/style.py", "listening/design.py",
               "labels.py", "analysis/")
    assert not [f for f in graph["family_tests"] if f.startswith(readers)], graph["family_tests"]


def test_listening_has_no_import_cycle(graph):
    assert [c for c in graph["cycles"] if any(m.startswith("evalkit.listening") for m in c)] == []


def test_listening_follows_the_layering(graph):
    """Only the web shell (``listening.web``) may import the report; the rest of listening never imports the
    shell."""
    assert [a for a in graph["wrong_way"] if a.startswith("evalkit.listening")] == []


def test_the_web_shell_is_a_room_of_its_own(import_graph):
    module = import_graph
    assert module.room("evalkit.listening.web.admin_view") == "listening.web"
    assert module.room("evalkit.listening.analysis.report") == "listening"
    graph = {"evalkit.listening.analysis.report": {"evalkit.listening.web.app"},
             "evalkit.listening.web.admin_view": {"evalkit.reports.listening_section"}}
    assert module.wrong_way(graph) == [("evalkit.listening.analysis.report", "evalkit.listening.web.app")]
