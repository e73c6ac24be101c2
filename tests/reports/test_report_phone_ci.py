"""Every confidence interval of the report reachable without hover on a 390 px-wide phone, in headless Debian
chromium: the scoreboard prints each cell's CI (the desktop shows it in the cell's tooltip only), a paired-matrix
cell shows its mean difference and CI after one tap, and the figures draw their error bars as strokes that fit
the screen (not only as hover text).

Skipped, with the reason, where chromium and chromium-driver are missing (`make test` installs them as root).
"""

from __future__ import annotations

import re

import pytest

from evalkit.reports.html import write_report
from tests.browser import needs_browser, start_chromium

pytestmark = [needs_browser, pytest.mark.slow]  # slow: a real Chromium

PHONE = (390, 844)
INTERVAL = re.compile(r"\[[-+]?[\d.]+, [-+]?[\d.]+\]")


@pytest.fixture(scope="module")
def page(report_run, tmp_path_factory):
    return write_report(report_run, out=tmp_path_factory.mktemp("phone") / "report.html", examples=0)


@pytest.fixture
def phone(page):
    width, height = PHONE
    d = start_chromium((f"--window-size={width},{height}",))
    d.set_window_size(width, height)
    d.get(page.resolve().as_uri())
    assert d.execute_script("return document.documentElement.clientWidth") <= width
    yield d
    d.quit()


def _interval(title: str) -> str:
    found = INTERVAL.search(title)
    assert found, title
    return found.group(0)


def test_scoreboard_prints_each_cells_ci_at_390px(phone):
    from selenium.webdriver.common.by import By

    cells = [c for c in phone.find_elements(By.CSS_SELECTOR, "#scoreboard-table tbody td[title]")
             if "CI" in (c.get_attribute("title") or "")]
    assert len(cells) >= 20  # 9 variants x 3 headline metrics, less the unscored ones
    for cell in cells:
        assert cell.is_displayed()
        assert _interval(cell.get_attribute("title")) in cell.text.split("\n"), cell.get_attribute("title")


def test_paired_matrix_cell_shows_its_ci_after_one_tap(phone):
    from selenium.webdriver.common.by import By

    matrices = phone.find_elements(By.CSS_SELECTOR, "#paired details.sub")
    assert matrices
    for matrix in matrices:
        matrix.find_element(By.CSS_SELECTOR, ":scope > summary").click()  # the section, collapsed by default
        cells = [c for c in matrix.find_elements(By.CSS_SELECTOR, "table.matrix td[title]")
                 if INTERVAL.search(c.get_attribute("title") or "")]
        assert cells
        # every cell whose tooltip has a CI carries the same text behind a tap target
        for cell in cells:
            hidden = cell.find_element(By.CSS_SELECTOR, "details > div").get_attribute("textContent")
            assert _interval(cell.get_attribute("title")) in hidden
        for cell in (cells[0], cells[-1]):
            detail = cell.find_element(By.CSS_SELECTOR, "details > div")
            assert not detail.is_displayed()
            phone.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", cell)
            cell.find_element(By.CSS_SELECTOR, "summary").click()
            assert detail.is_displayed()
            assert _interval(cell.get_attribute("title")) in detail.text


# Per figure SVG of a section: its rendered width, the viewport's, and each error bar (a path of a matplotlib
# LineCollection) as its rendered length in CSS px and its stroke width scaled to the screen.
ERROR_BARS = """
const width = document.documentElement.clientWidth;
return Array.from(document.querySelectorAll(arguments[0] + ' svg')).filter(s => s.closest('.panels')).map(svg => {
  const box = svg.getBoundingClientRect();
  const scale = box.width / svg.viewBox.baseVal.width;
  const bars = Array.from(svg.querySelectorAll('g[id^="LineCollection"] path')).map(p => {
    const r = p.getBoundingClientRect();
    return {length: Math.max(r.width, r.height), stroke: parseFloat(getComputedStyle(p).strokeWidth) * scale};
  });
  return {left: box.left, right: box.right, width: width, bars: bars};
});
"""


@pytest.mark.parametrize("section", ["#headline", "#rate-quality"])
def test_figures_draw_their_error_bars_within_390px(phone, section):
    panels = phone.execute_script(ERROR_BARS, section)
    assert panels
    for panel in panels:
        assert panel["left"] >= 0 and panel["right"] <= panel["width"], panel  # scaled down to fit
        drawn = [b for b in panel["bars"] if b["length"] >= 3]
        assert len(drawn) >= 3, panel  # CIs of the run's variants, drawn as lines, not hover text
        assert all(b["stroke"] >= 0.75 for b in drawn), panel  # at least about one device pixel wide
