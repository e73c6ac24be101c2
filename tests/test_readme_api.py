"""The docs' "Python API" examples (docs/getting-started.md) run as doctests, and the "How to add a codec" plugin
(docs/guides/evaluate-your-codec.md) works as written."""

import doctest
import re
from pathlib import Path

import pytest
import yaml

from evalkit.cli import main
from tests.plugin_fixtures import install_entry_point
from tests.runner.conftest import export_values

ROOT = Path(__file__).resolve().parents[1]
#: The page that holds each section whose code blocks the tests run.
SECTION_PAGES = {"Python API": "docs/getting-started.md", "How to add a codec": "docs/guides/evaluate-your-codec.md",
                 "How to add a metric": "docs/guides/add-a-metric.md"}


def section(title: str) -> str:
    text = (ROOT / SECTION_PAGES[title]).read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    """Fenced blocks of ``language``, de-indented (blocks inside list items are indented)."""
    blocks = []
    for indent, body in re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.S | re.M):
        blocks.append("".join(line[len(indent):] + "\n" for line in body.splitlines()))
    return blocks


@pytest.mark.slow  # runs every example of the README's Python API section
def test_python_api_section_examples_pass_as_doctests(tmp_path, monkeypatch):
    blocks = code_blocks(section("Python API"), "python")
    assert len(blocks) >= 3 and all(">>>" in b for b in blocks)
    (tmp_path / "data").symlink_to(ROOT / "data")  # "from the repository's root", without writing into it
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "Python API", SECTION_PAGES["Python API"], 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0 and test.examples, "".join(failures)



def test_the_readme_quick_start_passes_as_a_doctest():
    text = (ROOT / "README.md").read_text()
    [block] = code_blocks(text[text.index("\n## Quick start\n"):], "python")[:1]
    test = doctest.DocTestParser().get_doctest(block, {}, "README.md: Quick start", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0 and len(test.examples) >= 5, "".join(failures)

@pytest.fixture
def readme_plugin(tmp_path):
    [source] = code_blocks(section("How to add a codec"), "python")
    path = tmp_path / "plugin" / "my_codec.py"
    path.parent.mkdir()
    path.write_text(source)
    return path


@pytest.fixture
def two_items(tmp_path, rng):
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "items"
    folder.mkdir()
    t = np.arange(4800) / 16000
    for i in range(2):
        x = 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"item{i}.wav", x.astype(np.float32), 16000, subtype="FLOAT")
    return folder


def test_the_readme_codec_lists_and_runs_as_a_plugin_file(clean_families, readme_plugin, tmp_path, capsys,
                                                          two_items):
    assert main(["codecs", "list", "--plugin", str(readme_plugin)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("pcm8k:"):]
    assert f"source: file {readme_plugin}" in block and "bitrates (kbps): 16, 24, 32, 40, 48, 56, 64" in block
    raw = {"dataset": {"folder": str(two_items), "glob": "item*.wav"}, "plugins": ["plugin/my_codec.py"],
           "codecs": [{"family": "pcm8k", "params": {"bits": [4, 8]}}], "metrics": ["si_sdr"],
           "output": "out", "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "run.yaml")]) == 0
    from evalkit.runner import load_config, run_evaluation

    rows = export_values(run_evaluation(*load_config(tmp_path / "run.yaml"), progress=False))
    by_bits = {bits: [r[3] for r in rows if r[1] == f"pcm8k?bits={bits}"] for bits in (4, 8)}
    assert all(r[4] is None for r in rows) and len(rows) == 4
    assert min(by_bits[8]) > max(by_bits[4])  # 4 more bits: less quantisation noise
    import evalkit

    assert set(evalkit.load_run(tmp_path / "out").summary["label"]) == {"PCM 8 kHz 32 kbps", "PCM 8 kHz 64 kbps"}


def test_the_readme_entry_point_form_finds_the_codec(clean_families, readme_plugin, tmp_path, monkeypatch):
    [toml] = code_blocks(section("How to add a codec"), "toml")
    target = re.search(r'pcm8k = "(.+)"', toml).group(1)
    install_entry_point(tmp_path / "site", monkeypatch, target=target, module_source=readme_plugin.read_text(),
                        dist="my-codec")
    import evalkit

    codec = evalkit.build_codec("pcm8k?bits=6")
    assert codec.bitrate_bps == 48000 and clean_families.source("pcm8k").describe() == "entry point toy (my-codec " \
                                                                                       "0.1.0)"
