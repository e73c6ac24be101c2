"""One user-error base class, raised by every module and printed in one place (issue 28 point 6)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import evalkit
from evalkit.cli import main
from evalkit.errors import UserError

SRC = Path(evalkit.__file__).parent
USER_ERRORS = [("evalkit.audio", "AudioError"), ("evalkit.codecs.spec", "SpecError"),
               ("evalkit.codecs.weights", "WeightsNotFound"), ("evalkit.metrics.registry", "UnknownMetric"),
               ("evalkit.runner.config", "ConfigError"), ("evalkit.listening.errors", "ListenError"),
               ("evalkit.reports.rundata", "ReportError"), ("evalkit.codecs.plugins", "PluginError"),
               ("evalkit.api", "RunNotFound"), ("evalkit.runner.store", "StoreError"),
               ("evalkit.codecs.safe_load", "WeightsFileError"), ("evalkit.runner.executors", "DaskSchedulerError"),
               ("evalkit.codecs.qincodec.checkpoint", "CheckpointError")]


@pytest.mark.parametrize(("module", "name"), USER_ERRORS)
def test_every_user_error_is_a_user_error(module, name):
    assert issubclass(getattr(importlib.import_module(module), name), UserError)


def _sources():
    return [p for p in SRC.rglob("*.py")]


def test_one_place_prints_user_errors_and_one_exit_code_constant():
    printers, exit_codes = [], []
    for path in _sources():
        text = path.read_text()
        rel = path.relative_to(SRC).as_posix()
        if '"evalkit: error: ' in text or "f\"evalkit: error: " in text:
            printers.append(rel)
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXIT_BAD_INPUT"
                                                    for t in node.targets):
                exit_codes.append(rel)
    assert printers == ["cli/__init__.py"]
    assert exit_codes == ["cli/_base.py"]


def test_command_modules_raise_rather_than_return_the_bad_input_code():
    for path in (SRC / "cli").glob("*.py"):
        if path.name == "__init__.py":  # main(): the one place that turns a UserError into exit code 2
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
                assert node.value.id != "EXIT_BAD_INPUT", path.name


def test_a_user_error_from_any_command_is_one_line_and_exit_2(monkeypatch, capsys):
    import evalkit.cli.codecs as codecs_cli

    class MyError(UserError):
        pass

    def boom(args):
        raise MyError("widgets.yaml: field 'x': bad value \x1b[2J")

    monkeypatch.setattr(codecs_cli, "weights_status_command", boom)
    assert main(["weights", "status"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "evalkit: error: widgets.yaml: field 'x': bad value \\x1b[2J\n"


def test_a_programming_error_is_not_swallowed(monkeypatch):
    import evalkit.cli.codecs as codecs_cli

    def bug(args):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr(codecs_cli, "weights_status_command", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["weights", "status"])
