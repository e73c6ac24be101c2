"""ACR, DCR and BS.1116 in headless chromium (issue 27, point 9): a participant completes a whole test of each
design in the real page, the grades land in SQLite under the conditions that were shown, and ``listen analyze``
reads them back. Screenshots of a trial at 1280 px and at 390 px go to ``$EVALKIT_SCREENSHOTS`` (or /tmp)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from evalkit.listening.analysis.report import analyze_test_dir
from evalkit.listening.model import REFERENCE, STORE_FILE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from tests.browser import needs_browser, start_chromium
from tests.listening.conftest import CONDITIONS
from tests.listening.web.test_browser import _click, _finish, _play_all, _player, _skip_training, _submit, _wait
from tests.listening.web.test_browser_review import _consent

pytestmark = needs_browser

ACR_GRADES = (5, 2)  # clicked in trials 0, 1, ...: the stored grade is the clicked category


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"))
    yield d
    d.quit()


def _js(d, root, expr: str):
    return d.execute_script(f"const p = arguments[0].querySelector('.lt').__player; return {expr};", root)


def grade(d, root, design: Design, index: int, shares: tuple[float, float] = (0.3, 0.8)) -> None:
    """Grade every signal of the trial shown: ACR/DCR click a category, BS.1116 clicks each slider at the given
    share of its width (30 %: grade 2.2, 80 %: 4.2)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    if design in (Design.ACR, Design.DCR):
        value = ACR_GRADES[index % len(ACR_GRADES)]
        _click(d, root.find_element(By.CSS_SELECTOR, f"input[data-role=rating][value='{value}']"))
        return
    for slider, share in zip(root.find_elements(By.CSS_SELECTOR, "input[data-role=rating]"), shares,
                             strict=True):
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
        ActionChains(d).move_to_element_with_offset(slider, int((share - 0.5) * slider.size["width"]), 0) \
            .click().perform()


def _shots() -> Path:
    return Path(os.environ.get("EVALKIT_SCREENSHOTS", "/tmp"))


def _options(design: Design) -> PrepareOptions:
    """Two trials per listener: ACR/DCR one item (hidden reference and one condition), BS.1116 two items."""
    if design is Design.BS1116:
        return PrepareOptions(design, items=2, listeners=2, conditions=CONDITIONS[:1])
    return PrepareOptions(design, items=1, listeners=2, conditions=CONDITIONS[:1])


@pytest.mark.parametrize("design", [Design.ACR, Design.DCR, Design.BS1116])
def test_graded_design_session_in_chromium(driver, run_dir, tmp_path, serve_test, design):
    from selenium.webdriver.common.by import By

    folder = tmp_path / str(design)
    prepare_test(run_dir, folder, _options(design))
    definition = load_definition(folder)
    server = serve_test(folder)
    token = _consent(driver, server.url)
    _skip_training(driver)
    _player(driver, "trial-0")  # the first trial takes the participant's design slot
    with ListeningStore(folder / STORE_FILE) as store:
        trials = definition.trials_for(store.participant(token).slot)
    n_trials = len(trials)
    for index in range(n_trials):
        root = _player(driver, f"trial-{index}")
        buttons = [b.get_attribute("data-label") for b in root.find_elements(By.CSS_SELECTOR,
                                                                             "button[data-role=play]")]
        assert buttons == {Design.ACR: ["Sample"], Design.DCR: ["Reference", "Sample"],
                           Design.BS1116: ["Reference", "A", "B"]}[design]
        inputs = root.find_elements(By.CSS_SELECTOR, "input[data-role=rating]")
        assert len(inputs) == (5 if design is not Design.BS1116 else 2)
        assert all(not x.is_enabled() for x in inputs)  # must play before grading
        if design is not Design.ACR:  # DCR / BS.1116: the signals alone do not unlock grading: the reference too
            for b in root.find_elements(By.CSS_SELECTOR, "button[data-role=play]")[1:]:
                _click(driver, b)
                time.sleep(0.4)
            _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=stop]"))
            assert all(not x.is_enabled() for x in inputs)
            assert "Reference" in root.find_elements(By.CSS_SELECTOR, ".lt-status")[-1].text
        _play_all(driver, root)
        _wait(lambda i=inputs: all(x.is_enabled() for x in i), what="grades enabled after playing")
        assert not root.find_element(By.CSS_SELECTOR, "button[data-role=submit]").is_enabled()
        if index == 0:  # the trial at the top and scrolled to its end (the transport stays in sight)
            for width, height in ((1280, 1000), (390, 844)):
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
                time.sleep(0.4)
                driver.save_screenshot(str(_shots() / f"listening-{design}-{width}.png"))
                submit = root.find_element(By.CSS_SELECTOR, "button[data-role=submit]")
                driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", submit)
                time.sleep(0.4)
                driver.save_screenshot(str(_shots() / f"listening-{design}-{width}-end.png"))
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        hidden_on_a = definition.stimuli[trials[index].stimuli[0]].condition == REFERENCE
        grade(driver, root, design, index, (0.8, 0.3) if hidden_on_a else (0.3, 0.8))  # BS.1116: hidden ref 4.2
        _submit(driver, root)
    _finish(driver)

    with ListeningStore(folder / STORE_FILE) as store:
        participant = store.participant(token)
        rows = [(index, r) for who, index, r in store.trial_ratings() if who == participant.label]
    assert sorted({i for i, _ in rows}) == list(range(n_trials))
    for index, trial in enumerate(trials):
        stored = {r.condition: r.score for i, r in rows if i == index}
        shown = [definition.stimuli[s].condition for s in trial.stimuli]
        assert sorted(stored) == sorted(shown)  # graded under the conditions that were shown
        if design is Design.BS1116:  # as clicked, one decimal
            assert stored == {REFERENCE: 4.2, CONDITIONS[0]: 2.2}
        else:
            assert list(stored.values()) == [ACR_GRADES[index % len(ACR_GRADES)]]
    report = analyze_test_dir(folder)
    assert report["design"] == str(design) and report["assessors"] == 1
    if design is Design.BS1116:  # difference grades: condition minus the hidden reference of the same trial
        assert {s for t in trials for s in (definition.stimuli[t.stimuli[0]].condition,)} == {REFERENCE,
                                                                                            CONDITIONS[0]}
        assert report["conditions"][CONDITIONS[0]]["mean"] == pytest.approx(2.2 - 4.2)
        assert report["excluded"] == []
    else:
        assert set(report["conditions"]) == {REFERENCE, CONDITIONS[0]}
