"""The recipe page: one self-contained file with each output beside the paper's claim and source, random-weight
outputs marked, unavailable variants listed, everything escaped."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from evalkit.recipes import page
from evalkit.recipes.base import Artifact, PaperClaim


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def written(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    png = tmp_path / "figures" / "f.png"
    png.parent.mkdir()
    fig.savefig(png)
    table = tmp_path / "tables" / "t.html"
    table.parent.mkdir()
    table.write_text("<table><caption>T</caption><tr><td>4.2 [3.9, 4.5]</td></tr></table>")
    claim = PaperClaim("QinCodec beats <b>DAC</b>", "arXiv:2503.19597, Fig. 2", {"qincodec_16kbps": 81.5})
    artifacts = [
        Artifact("run", "run", "evalkit run (random weights: NOT the pretrained models)", tmp_path / "run", "6 ran"),
        Artifact("fig", "figure", "A figure (random weights: NOT the pretrained models)", png, "lines: a; b", claim),
        Artifact("tab", "table", "A table", table, "n = 3", PaperClaim("words only", "the abstract")),
        Artifact("test", "listening", "MUSHRA <test>", tmp_path / "listening" / "m", "serve it"),
        Artifact("unavailable:x?y=1", "unavailable", "x?y=1", tmp_path / "run", "no weights offline"),
    ]
    path = page.write_page("qincodec", artifacts, "tiny", tmp_path)
    return path, path.read_text(encoding="utf-8"), png


def test_the_page_embeds_each_figure_and_table_and_requests_nothing(written):
    path, html, png = written
    assert path.name == "index.html"
    parser = _Tags()
    parser.feed(html)
    images = [a["src"] for t, a in parser.tags if t == "img"]
    assert images == ["data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")]
    assert "<td>4.2 [3.9, 4.5]</td>" in html  # the recipe's table as written
    urls = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("src", "href")]
    assert all(u.startswith(("data:", "#")) for u in urls), urls  # no file, http or CSS request
    assert "<link" not in html and "<script" not in html


def test_each_output_sits_beside_the_papers_claim_its_numbers_and_source(written):
    _, html, _ = written
    fig = html[html.index('id="fig"'):html.index('id="tab"')]
    assert "QinCodec beats &lt;b&gt;DAC&lt;/b&gt;" in fig and "arXiv:2503.19597, Fig. 2" in fig
    assert "<td>qincodec_16kbps</td><td>81.5</td>" in fig
    tab = html[html.index('id="tab"'):html.index('id="test"')]
    assert "words only" in tab and "No number transcribed" in tab and "the abstract" in tab
    run = html[html.index('id="run"'):html.index('id="fig"')]
    assert "Nothing in the paper to compare with" in run


def test_random_weight_outputs_are_marked_and_the_tiny_scale_has_a_banner(written):
    _, html, _ = written
    marked = re.findall(r'<article id="([^"]+)">.*?</article>', html, re.S)
    badges = {key: 'class="badge random"' in html[html.index(f'id="{key}"'):].split("</article>")[0]
              for key in marked}
    assert badges == {"run": True, "fig": True, "tab": False, "test": False}
    assert "Tiny scale: not the paper" in html


def test_unavailable_variants_are_listed_with_their_reason_and_escaped_titles(written):
    _, html, _ = written
    listed = html[html.index('id="unavailable"'):]
    assert "<code>x?y=1</code>: no weights offline" in listed
    assert "1 variant could not" in html
    assert "MUSHRA &lt;test&gt;" in html and "MUSHRA <test>" not in html
    assert "<code>listening/m</code>" in html  # paths inside the output folder relative to the page


def test_the_full_scale_page_has_no_tiny_banner(tmp_path):
    html = page.write_page("klt", [], "full", tmp_path).read_text()
    assert "Tiny scale" not in html and "Muller" in html  # the KLT paper's authors from its paper data
