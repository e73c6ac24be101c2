"""The report in a real browser: headless Debian chromium opens the file, every expected section is there, the
audio elements load from the page itself, no request leaves it, and a screenshot is saved.

Skipped, with the reason, where chromium and chromium-driver are missing (`make test` installs them as root).
"""

from __future__ import annotations

import json

import pytest

from evalkit.reports.html import write_report
from tests.browser import needs_browser, start_chromium
from tests.reports.test_report import SECTIONS

pytestmark = needs_browser


@pytest.fixture
def driver():
    d = start_chromium(("--window-size=1300,1000", "--allow-file-access-from-files"), logs=("performance", "browser"),
                       page_load_s=60)
    yield d
    d.quit()


def test_report_opens_offline_with_every_section_and_no_outside_request(report_run, tmp_path, driver):
    page = write_report(report_run, out=tmp_path / "report.html", examples=1, excerpt_s=1.0)
    driver.get(page.resolve().as_uri())
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
    shot = tmp_path / "report.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
