"""``evalkit reproduce``: argument errors are one line with exit 2; a recipe runs through the shared driver and
its page path is printed."""

from __future__ import annotations

import sys
import types

import pytest

from evalkit.cli import main
from evalkit.recipes import RECIPES
from evalkit.recipes.base import Artifact


@pytest.mark.parametrize(("argv", "expected"), [
    (["reproduce"], "evalkit: error: reproduce: name a recipe: klt, qincodec\n"),
    (["reproduce", "encodec"], "evalkit: error: reproduce: unknown recipe 'encodec'; known: klt, qincodec\n"),
    (["reproduce", "klt", "--scale", "huge"], "evalkit: error: reproduce --scale huge: expected full or tiny\n"),
])
def test_argument_errors_are_one_line_and_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == expected


def test_an_output_path_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    target = tmp_path / "page.html"
    target.write_text("x")
    assert main(["reproduce", "qincodec", "--out", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"evalkit: error: reproduce --out {target}: is a file, not a folder\n"


@pytest.fixture
def fake_recipe(monkeypatch, tmp_path_factory):
    """A recipe named ``fake`` whose build records its arguments and returns one figure and one unavailable
    variant."""
    calls = []
    module = types.ModuleType("fake_recipe_for_tests")

    def build(out, *, scale, offline):
        calls.append((out, scale, offline))
        (out / "f.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        return [Artifact("fig", "figure", "Fig (random weights: NOT the pretrained models)", out / "f.png"),
                Artifact("listen", "listening", "AB", out / "ab"),
                Artifact("unavailable:z", "unavailable", "z", out, "no weights")]

    module.build = build
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(RECIPES, "fake", module.__name__)
    paper_data = tmp_path_factory.mktemp("paper_data")
    (paper_data / "fake.json").write_text('{"paper": {"title": "A fake paper"}, "claims": {}}')
    monkeypatch.setattr("evalkit.recipes.base.PAPER_DATA", paper_data)
    return calls


def test_a_recipe_runs_through_the_driver_and_the_page_path_is_printed(fake_recipe, tmp_path, capsys):
    out = tmp_path / "deep" / "out"
    assert main(["reproduce", "fake", "--out", str(out), "--scale", "tiny", "--offline"]) == 0
    stdout, err = capsys.readouterr()
    assert fake_recipe == [(out, "tiny", True)]
    assert stdout == f"{out / 'index.html'}\n"
    assert f"listening test listen: evalkit listen serve {out / 'ab'}" in err
    assert "2 outputs, 1 unavailable variant (listed on the page); page:" in err
    html = (out / "index.html").read_text()
    assert "A fake paper" in html and "no weights" in html


def test_the_default_output_folder_is_per_recipe_and_scale(fake_recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "fake"]) == 0
    assert main(["reproduce", "fake", "--scale", "tiny"]) == 0
    capsys.readouterr()
    from pathlib import Path

    assert [(str(o), s, off) for o, s, off in fake_recipe] == [("runs/papers/fake", "full", None),
                                                              ("runs/papers/fake-tiny", "tiny", None)]
    assert (tmp_path / "runs/papers/fake/index.html").is_file() and Path("runs/papers/fake-tiny/index.html").is_file()
