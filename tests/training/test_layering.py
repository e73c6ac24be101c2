"""Training apart from inference: ``codecs`` imports neither ``training`` nor ``metrics``, ``training`` imports
only ``codecs``, ``metrics`` and the leaf modules, and QinCodec's modules form no import cycle (every import counts,
lazy ones too: measured from the source by ``scripts/import_graph.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import evalkit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = Path(evalkit.__file__).resolve().parent  # the package under test, wherever it is imported from
    paths = {module.module_name(p, src): p for p in sorted(src.rglob("*.py"))}
    edges = {m: module.imports_of(p, m, set(paths)) for m, p in paths.items()}
    return module, edges


def test_codecs_import_neither_training_nor_metrics(graph):
    _, edges = graph
    arrows = [(a, b) for a, targets in edges.items() if a.startswith("evalkit.codecs")
              for b in targets if b.startswith(("evalkit.training", "evalkit.metrics"))]
    assert arrows == []


def test_training_imports_only_codecs_metrics_itself_and_leaf_modules(graph):
    module, edges = graph
    training = {m: targets for m, targets in edges.items() if m.startswith("evalkit.training")}
    assert "evalkit.training.qincodec.train" in training
    assert module.wrong_way(training) == []


def test_qincodec_inference_and_training_have_no_import_cycle(graph):
    module, edges = graph
    ours = [c for c in module.cycles(edges)
            if any(m.startswith(("evalkit.codecs.qincodec", "evalkit.training")) for m in c)]
    assert ours == []
