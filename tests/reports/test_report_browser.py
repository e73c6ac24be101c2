"""The report in a real browser: headless Debian chromium opens the file at a desktop (1280×800) and a phone
(390×844) size. The first section is the scoreboard, sorting by a header reorders its rows, the family filter
hides rows, nothing overflows the page sideways outside an explicit scroll container, no table cell is narrower
than its longest word, every figure has a caption, the audio loads from the page itself and no request leaves it.

Skipped, with the reason, where chromium and chromium-driver are missing (`make test` installs them as root).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evalkit.reports.html import write_report
from tests.browser import needs_browser, start_chromium
from tests.reports.test_report import SECTIONS

pytestmark = [needs_browser, pytest.mark.slow]  # slow: a real Chromium per test

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

OPEN_ALL = "document.querySelectorAll('details').forEach(d => d.open = true);"

# Elements sticking out of the viewport on the right, outside any element that scrolls sideways by itself.
OVERFLOW = """
const width = document.documentElement.clientWidth;
function scrolls(el) {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const x = getComputedStyle(p).overflowX;
    if (x === 'auto' || x === 'scroll') return true;
  }
  return false;
}
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (!r.width || r.right <= width + 1 || scrolls(el)) continue;
  const owner = el.closest('[aria-label]');
  out.push(el.tagName + ' in ' + (owner ? owner.getAttribute('aria-label') : el.className) + ' ' + r.right);
}
return {page: document.documentElement.scrollWidth, width: width, offenders: out.slice(0, 10)};
"""

# Table cells whose content box is narrower than the widest unbreakable run of text they hold: a word ends at
# white space or after a hyphen or en dash (where browsers may break a line), so a cell squeezed until its words
# wrap letter by letter fails.
NARROW_CELLS = """
const canvas = document.createElement('canvas').getContext('2d');
const bad = [];
for (const cell of document.querySelectorAll('td, th')) {
  if (!cell.offsetParent) continue;  // hidden (a filtered row)
  const style = getComputedStyle(cell);
  const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.checkVisibility()) continue;  // not rendered (the body of a closed <details>)
    canvas.font = getComputedStyle(node.parentElement).font;
    for (const word of node.textContent.split(/\\s+|(?<=[-\u2013])/)) {
      if (word && canvas.measureText(word).width > inner + 1)
        bad.push(word + ' (' + Math.round(canvas.measureText(word).width) + ' > ' + Math.round(inner) + ')');
    }
  }
}
return bad.slice(0, 10);
"""


@pytest.fixture(scope="module")
def page(report_run, tmp_path_factory):
    return write_report(report_run, out=tmp_path_factory.mktemp("browser") / "report.html", examples=1,
                        excerpt_s=1.0)


@pytest.fixture(params=list(SIZES), ids=list(SIZES))
def driver(request):
    width, height = SIZES[request.param]
    d = start_chromium((f"--window-size={width},{height}", "--allow-file-access-from-files"),
                       logs=("performance", "browser"), page_load_s=60)
    d.set_window_size(width, height)
    yield d
    d.quit()


def _open(driver, page):
    driver.get(page.resolve().as_uri())
    inner = driver.execute_script("return window.innerWidth")
    assert inner <= max(w for w, _ in SIZES.values())


def test_layout_has_no_sideways_overflow_and_no_cell_narrower_than_a_word(page, driver):
    _open(driver, page)
    first = driver.execute_script("return document.querySelector('main section').id")
    assert first == "scoreboard"
    for state in ("collapsed", "expanded"):
        if state == "expanded":
            driver.execute_script(OPEN_ALL)
        layout = driver.execute_script(OVERFLOW)
        assert layout["page"] <= layout["width"] and layout["offenders"] == [], (state, layout)
        assert driver.execute_script(NARROW_CELLS) == [], state
    captions = driver.execute_script("""return Array.from(document.querySelectorAll('figure')).map(
        f => (f.querySelector(':scope > figcaption') || {textContent: ''}).textContent.trim().length)""")
    assert captions and all(n > 10 for n in captions)


def test_sorting_reorders_the_scoreboard_and_the_filter_hides_families(page, driver, report_run):
    from selenium.webdriver.common.by import By

    _open(driver, page)
    summary = pd.read_csv(report_run / "summary.csv")
    mel = summary[summary["metric"] == "mel_distance"].set_index("codec_spec")["mean"]

    def specs():
        return driver.execute_script("""return Array.from(document.querySelectorAll('#scoreboard-table tbody tr'))
            .filter(r => !r.hidden).map(r => r.cells[0].title)""")

    default = specs()
    header = driver.find_element(By.XPATH, "//table[@id='scoreboard-table']//th[contains(., 'Mel distance')]//button")
    header.click()  # lower is better: best (smallest) first
    ranked = [s for s in specs() if s in mel.index]
    assert ranked == list(mel.sort_values(kind="stable").index) and specs() != default
    assert driver.execute_script("return document.querySelector('th[aria-sort]').getAttribute('aria-sort')") == \
        "ascending"
    header.click()
    assert [s for s in specs() if s in mel.index] == list(mel.sort_values(ascending=False, kind="stable").index)
    driver.find_element(By.XPATH, "//table[@id='scoreboard-table']//th[1]//button").click()
    assert specs() == default
    driver.find_element(By.CSS_SELECTOR, "#family-filter input[data-group='Opus']").click()
    assert specs() and not any(s.startswith("opus") for s in specs())
    assert len(specs()) == len(default) - 2


def test_report_opens_offline_with_every_section_and_no_outside_request(page, driver, tmp_path):
    _open(driver, page)
    found = driver.execute_script("return Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
    assert set(SECTIONS) <= set(found)
    assert driver.execute_script("return document.querySelectorAll('figure svg').length") >= 5
    # load every audio clip: they must decode from their data: URIs, with no request to anywhere
    durations = driver.execute_script("""
        const clips = Array.from(document.querySelectorAll('audio'));
        return Promise.all(clips.map(a => new Promise(done => {
            a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
            a.addEventListener('error', () => done(-1), {once: true});
            a.preload = 'metadata'; a.load();
        })));""")
    assert durations and all(d > 0.5 for d in durations), durations
    requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    outside = [u for u in urls if not (u.startswith("data:") or u == page.resolve().as_uri())]
    assert urls and outside == []
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # the inline script runs without errors
    shot = tmp_path / "report.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
