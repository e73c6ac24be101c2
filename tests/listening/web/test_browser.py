"""Real-browser tests: headless Debian chromium (Selenium + the system chromedriver) completes one MUSHRA and one
AB session through the Web Audio player, and the rows are found in SQLite.

`make test` installs Debian's chromium and chromium-driver when it can (scripts/install_browser.sh); otherwise
these tests skip with the reason.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from evalkit.listening.model import STORE_FILE, load_definition
from tests.browser import needs_browser, start_chromium

pytestmark = needs_browser

PLAY_S = 0.4  # above the player's 0.25 s must-play threshold


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1400,1100"))
    yield d
    d.quit()


def _wait(predicate, timeout: float = 20.0, what: str = "condition", detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the page is re-rendering; try again
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f": {detail()}" if detail else ""))


def _player(d, key: str):
    """The player's shadow root once its audio has loaded for trial ``key``."""
    script = ("const h = Array.from(document.querySelectorAll('*')).find(e => e.shadowRoot && "
              "e.shadowRoot.querySelector('.lt[data-ready=\"1\"]') && "
              f"e.shadowRoot.querySelector('.lt').__player.data.trial_key === '{key}'); "
              "return h ? h.shadowRoot : null;")
    return _wait(lambda: d.execute_script(script), what=f"player {key}")


def _start(d, url: str) -> str:
    from selenium.webdriver.common.by import By

    d.get(url)
    _wait(lambda: d.find_elements(By.CSS_SELECTOR, "[data-testid=stCheckbox] label"), what="consent")[0].click()
    _wait(lambda: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text == "Start" and b.is_enabled()],
          what="start button")[0].click()
    return _wait(lambda: "?p=" in d.current_url and d.current_url.split("?p=")[1], what="participant token")


def _click(d, element) -> None:
    """Scroll ``element`` to the middle of the window, then click it (chromedriver does not scroll Streamlit's
    main container for an element in a component's shadow root)."""
    d.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element)
    element.click()


def _play_all(d, root) -> None:
    from selenium.webdriver.common.by import By

    buttons = root.find_elements(By.CSS_SELECTOR, "button[data-role=play]")
    for b in buttons:  # switching from one to the next without stopping
        _click(d, b)
        time.sleep(PLAY_S)
    _click(d, root.find_element(By.CSS_SELECTOR, "button[data-role=stop]"))


def _submit(d, root) -> None:
    from selenium.webdriver.common.by import By

    submit = root.find_element(By.CSS_SELECTOR, "button[data-role=submit]")
    hint = root.find_elements(By.CSS_SELECTOR, ".lt-status")[-1]
    _wait(submit.is_enabled, what="submit enabled", detail=lambda: hint.text)
    _click(d, submit)


def _choose(d, question: str, answer: str) -> None:
    """Click ``answer`` of the radio question whose label is ``question``."""
    from selenium.webdriver.common.by import By

    group = _wait(lambda: d.find_element(By.CSS_SELECTOR, f'[role=radiogroup][aria-label="{question}"]'),
                  what=f"radio group {question}")
    option = next(o for o in group.find_elements(By.CSS_SELECTOR, "[data-testid=stRadioOption]") if o.text == answer)
    _click(d, option)


def _finish(d) -> None:
    """After the last trial: answer the finish page's required questions, send, and wait for the thank-you."""
    from selenium.webdriver.common.by import By

    _wait(lambda: "Almost done" in d.find_element(By.TAG_NAME, "body").text, what="questionnaire page")
    _choose(d, "Your age *", "25–34")
    _choose(d, "Your listening expertise *", "naive")
    _click(d, _wait(lambda: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text == "Send"], what="send")[0])
    _wait(lambda: "Thank you" in d.find_element(By.TAG_NAME, "body").text, what="thank-you page")


def _skip_training(d) -> None:
    from selenium.webdriver.common.by import By

    _wait(lambda: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text.startswith("Skip training")],
          what="training page")[0].click()


def test_mushra_session_in_chromium(driver, mushra_dir, fresh_copy, serve_test):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    folder = fresh_copy(mushra_dir)
    server = serve_test(folder)
    token = _start(driver, server.url)
    _skip_training(driver)
    definition = load_definition(folder)
    n_trials = len(definition.slots[0])
    rate = definition.stimuli[definition.slots[0][0].stimuli[0]].sample_rate
    for index in range(n_trials):
        root = _player(driver, f"trial-{index}")
        assert driver.execute_script("return arguments[0].querySelector('.lt').__player.ctx.sampleRate", root) \
            == rate  # the AudioContext runs at the stimulus rate: no resampling in the browser
        sliders = root.find_elements(By.CSS_SELECTOR, "input[data-role=rating]")
        assert all(not s.is_enabled() for s in sliders)  # must play before rating
        submit = root.find_element(By.CSS_SELECTOR, "button[data-role=submit]")
        assert not submit.is_enabled()
        _play_all(driver, root)
        _wait(lambda s=sliders: all(x.is_enabled() for x in s), what="sliders enabled after playing")
        assert not submit.is_enabled()  # must rate before next
        for k, slider in enumerate(sliders):  # click at different heights: different scores
            height = slider.size["height"]
            ActionChains(driver).move_to_element_with_offset(slider, 0, int(height * (0.4 - 0.1 * k))).click() \
                .perform()
        _submit(driver, root)
    _finish(driver)

    db = sqlite3.connect(folder / STORE_FILE)
    (pid,) = db.execute("SELECT participant_id FROM participants WHERE token = ?", (token,)).fetchone()
    rows = db.execute("SELECT trial_index, stimulus_id, condition, score FROM ratings WHERE participant_id = ?",
                      (pid,)).fetchall()
    n_rated = len(definition.slots[0][0].stimuli)
    assert len(rows) == n_trials * n_rated
    assert {r[2] for r in rows} == {"reference", *definition.conditions}  # hidden reference, anchors, conditions
    assert all(0 <= r[3] <= 100 for r in rows)
    assert len({r[3] for r in rows}) > 1  # the clicks gave different scores
    events = db.execute("SELECT trial_index, stimulus_id, start_s, duration_s FROM play_events "
                        "WHERE participant_id = ? ORDER BY trial_index, seq", (pid,)).fetchall()
    length_s = definition.stimuli[rows[0][1]].samples / rate
    for index in range(n_trials):
        trial_events = [e for e in events if e[0] == index]
        played = {e[1] for e in trial_events}
        rated = {r[1] for r in rows if r[0] == index}
        assert rated <= played  # every rated stimulus was played, and reported with its duration
        assert all(e[3] >= 0.25 for e in trial_events)
        # switching keeps the position: each stimulus starts where the previous one was (looping over the item)
        for before, after in zip(trial_events, trial_events[1:], strict=False):
            expected = (before[2] + before[3]) % length_s
            gap = abs(after[2] - expected)
            assert min(gap, length_s - gap) < 0.03, (before, after)
    assert db.execute("SELECT finished FROM participants WHERE participant_id = ?", (pid,)).fetchone()[0]


def test_ab_session_in_chromium(driver, ab_dir, fresh_copy, serve_test):
    from selenium.webdriver.common.by import By

    folder = fresh_copy(ab_dir)
    server = serve_test(folder)
    token = _start(driver, server.url)
    _skip_training(driver)
    definition = load_definition(folder)
    n_trials = len(definition.slots[0])
    answers = ["A", "B", "none"]
    for index in range(n_trials):
        root = _player(driver, f"trial-{index}")
        _play_all(driver, root)
        _click(driver, root.find_element(By.CSS_SELECTOR, f"input[data-role=answer][value={answers[index % 3]}]"))
        _submit(driver, root)
    _finish(driver)

    db = sqlite3.connect(folder / STORE_FILE)
    (pid, slot) = db.execute("SELECT participant_id, slot FROM participants WHERE token = ?", (token,)).fetchone()
    rows = db.execute("SELECT trial_index, answer, chosen, condition_a, condition_b FROM choices "
                      "WHERE participant_id = ? ORDER BY trial_index", (pid,)).fetchall()
    assert [r[1] for r in rows] == [answers[i % 3] for i in range(n_trials)]
    trials = definition.trials_for(slot)
    for index, answer, chosen, a, b in rows:
        shown = {"A": definition.stimuli[trials[index].stimuli[0]].condition,
                 "B": definition.stimuli[trials[index].stimuli[1]].condition}
        assert chosen == shown.get(answer)  # the side maps to the condition presented there
        assert {a, b} == set(shown.values())
    assert db.execute("SELECT COUNT(DISTINCT stimulus_id) FROM play_events WHERE participant_id = ?",
                      (pid,)).fetchone()[0] >= 2
