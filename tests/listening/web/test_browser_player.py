"""The player in headless chromium (issue 27, points 10 and 11): a MUSHRA trial of 12 rated signals with per-trial
instructions; the waveform with a loop region (drag, click to seek, loop start/end at the playhead, clear), the
loop kept when switching signals; keys for signals 10, 11 and 12; at 1280 px and at 390 px (emulated phone) every
control of the trial is reachable and the reference button stays visible and clickable meanwhile. Screenshots go
to ``$EVALKIT_SCREENSHOTS`` (or the test's temporary folder)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from evalkit.listening.model import Design
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from tests.browser import needs_browser, start_chromium
from tests.listening.conftest import make_run
from tests.listening.web.test_browser import _click, _player, _skip_training, _wait
from tests.listening.web.test_browser_review import _body, _consent

pytestmark = needs_browser

SPECS = tuple(f"lowpass?cutoff_hz={c}" for c in (1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7500))
CONTROLS = ("button[data-role=play]", "input[data-role=rating]", "button[data-role=stop]", "[data-role=waveform]",
            "button[data-role=loop-start]", "button[data-role=loop-end]", "button[data-role=loop-clear]",
            "button[data-role=submit]", "button[data-role=pause]")
# For a control and the reference button: is each inside the window and the topmost element at its centre?
REACHABLE = """
const [root, control] = arguments;
const ref = root.querySelector('button[data-label=Reference]');
const hit = (e) => {
  const r = e.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const inside = r.left >= 0 && r.right <= window.innerWidth && r.top >= 0 && r.bottom <= window.innerHeight;
  const top = root.elementFromPoint(x, y);
  return inside && !!top && (top === e || e.contains(top));
};
control.scrollIntoView({ block: 'center', inline: 'center' });
return [hit(control), hit(ref)];
"""


@pytest.fixture(scope="module")
def twelve_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("twelve")
    run = make_run(root, n_items=1, specs=SPECS, seconds=3.0)
    out = root / "test"
    prepare_test(run, out, PrepareOptions(Design.MUSHRA, listeners=1, conditions=SPECS, trial_instructions=(
        ("*", "Every trial."), ("clip0.wav", "Listen for **pre-echo** on the castanets."))))
    return out


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"))
    yield d
    d.quit()


def _p(d, root, expr: str):
    return d.execute_script(f"const p = arguments[0].querySelector('.lt').__player; return {expr};", root)


def _shots() -> Path:
    return Path(os.environ.get("EVALKIT_SCREENSHOTS", "/tmp"))


def _drag(d, root, start: float, end: float) -> None:
    """Press at fraction ``start`` of the waveform's width, move to ``end``, release."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    bar = root.find_element(By.CSS_SELECTOR, "[data-role=waveform]")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", bar)
    width = bar.size["width"]
    chain = ActionChains(d).move_to_element_with_offset(bar, int((start - 0.5) * width), 0).click_and_hold()
    if end != start:
        chain = chain.move_by_offset(int((end - start) * width / 2), 0).move_by_offset(
            int((end - start) * width) - int((end - start) * width / 2), 0)
    chain.release().perform()


def test_waveform_loop_keys_and_narrow_screen(driver, twelve_dir, fresh_copy, serve_test, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    folder = fresh_copy(twelve_dir)
    server = serve_test(folder)
    token = _consent(driver, server.url)
    _skip_training(driver)
    root = _player(driver, "trial-0")
    assert "Listen for pre-echo on the castanets." in _body(driver) and "Every trial." not in _body(driver)
    ids = _p(driver, root, "p.data.stimuli.map((s) => s.id)")
    assert len(ids) == 12
    duration = _p(driver, root, "p.duration")
    assert duration == pytest.approx(3.0, abs=0.01)
    painted = driver.execute_script(  # the waveform is drawn: some pixels of the canvas are not transparent
        "const c = arguments[0].querySelector('canvas.lt-wave'); const g = c.getContext('2d');"
        "return g.getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0);", root)
    assert painted

    # drag on the waveform: a loop region; every signal then plays within it
    _drag(driver, root, 0.25, 0.6)
    start, end = _p(driver, root, "[p.loopStart, p.loopEnd]")
    assert start == pytest.approx(0.25 * duration, abs=0.06) and end == pytest.approx(0.6 * duration, abs=0.06)
    buttons = root.find_elements(By.CSS_SELECTOR, "button[data-role=play]")
    _click(driver, buttons[1])
    time.sleep(0.3)
    _click(driver, buttons[2])  # switching keeps the loop (and the position inside it)
    source = _p(driver, root, "[p.current.id, p.current.source.loopStart, p.current.source.loopEnd, p.position()]")
    assert source[1:3] == [start, end] and start <= source[3] <= end
    # a click (no drag) moves the playhead; "loop end at playhead" and "loop start at playhead" set one end
    _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=stop]"))
    _drag(driver, root, 0.5, 0.5)
    assert _p(driver, root, "p.position()") == pytest.approx(0.5 * duration, abs=0.06)
    _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=loop-end]"))
    assert _p(driver, root, "p.loopEnd") == pytest.approx(0.5 * duration, abs=0.06)
    assert _p(driver, root, "p.loopStart") == start
    _drag(driver, root, 0.3, 0.3)
    _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=loop-start]"))
    assert _p(driver, root, "p.loopStart") == pytest.approx(0.3 * duration, abs=0.06)
    assert "Loop: " in root.find_element(By.CSS_SELECTOR, "[data-role=loop-label]").text
    _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=loop-clear]"))
    assert _p(driver, root, "[p.loopStart, p.loopEnd]") == [0, duration]

    # keys: 0, - and = play signals 10, 11 and 12 (each its own key), r the reference, shown on the buttons
    for key, index in (("0", 9), ("-", 10), ("=", 11)):
        ActionChains(driver).send_keys(key).perform()
        _wait(lambda i=index: _p(driver, root, "p.current && p.current.id") == ids[i], what=f"key {key}")
    ActionChains(driver).send_keys("r").perform()
    _wait(lambda: _p(driver, root, "p.current && p.current.id") == _p(driver, root, "p.data.reference.id"),
          what="key r")
    ActionChains(driver).send_keys(" ").perform()
    badges = [b.find_element(By.TAG_NAME, "kbd").text for b in buttons[-3:]]
    assert badges == ["0", "-", "="]
    assert "0 plays 10, - plays 11, = plays 12" in root.find_element(By.CSS_SELECTOR, ".lt-keys").text

    # every control reachable with the reference button in sight, wide and on a 390 px phone
    for width, height in ((1280, 1000), (390, 844)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
        driver.get(f"{server.url}?p={token}")
        root = _player(driver, "trial-0")
        time.sleep(0.3)
        driver.save_screenshot(str(_shots() / f"listening-player-{width}.png"))
        controls = [c for sel in CONTROLS for c in root.find_elements(By.CSS_SELECTOR, sel)]
        assert len(controls) >= 13 + 12 + 6
        for control in controls:
            control_ok, reference_ok = driver.execute_script(REACHABLE, root, control)
            label = control.get_attribute("data-label") or control.get_attribute("data-role")
            assert control_ok, f"{width} px: {label} not reachable"
            assert reference_ok, f"{width} px: the reference button is hidden while {label} is in view"
        _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=submit]"))  # scrolled to the end
        time.sleep(0.3)
        driver.save_screenshot(str(_shots() / f"listening-player-{width}-end.png"))
