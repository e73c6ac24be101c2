"""Listening behaviour through the real player (issue 27, points 5 and 6) in headless chromium: the participant takes
its design slot only when the first trial starts, plays every signal through the Web Audio player and submits;
the server stores, per stimulus, the seconds the player reported (within the time the server saw the trial open)
and the time on the trial, and `listen analyze` shows them. A screenshot of the played trial goes to
``$EVALKIT_SCREENSHOTS`` (default /tmp)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from evalkit.listening.analysis.behaviour import format_behaviour, summary
from evalkit.listening.model import STORE_FILE, load_definition
from evalkit.listening.storage import ListeningStore
from tests.browser import needs_browser, start_chromium
from tests.listening.web.test_browser import _play_all, _player, _skip_training, _start, _submit, _wait

pytestmark = needs_browser


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"))
    yield d
    d.quit()


def _slots(folder: Path) -> list:
    return [r[0] for r in sqlite3.connect(folder / STORE_FILE).execute(
        "SELECT CASE WHEN slot_at_s IS NULL THEN NULL ELSE slot END FROM participants ORDER BY participant_id")]


def test_played_seconds_reach_the_store_timed_by_the_server(driver, mushra_dir, fresh_copy, serve_test):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    folder = fresh_copy(mushra_dir)
    server = serve_test(folder)
    token = _start(driver, server.url)
    _wait(lambda: [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.startswith("Skip training")],
          what="training page")
    assert _slots(folder) == [None]  # consented, in training: no design slot taken
    _skip_training(driver)
    root = _player(driver, "trial-0")
    assert _slots(folder) == [0]  # the first trial started
    _play_all(driver, root)  # the reference, then every signal, switching without stopping, then stop
    sliders = root.find_elements(By.CSS_SELECTOR, "input[data-role=rating]")
    _wait(lambda: all(s.is_enabled() for s in sliders), what="sliders enabled after playing")
    for k, slider in enumerate(sliders):
        ActionChains(driver).move_to_element_with_offset(slider, 0, int(slider.size["height"] * (0.3 - 0.05 * k))) \
            .click().perform()
    shots = Path(os.environ.get("EVALKIT_SCREENSHOTS", "/tmp"))
    shots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shots / "listening-behaviour-trial.png"))
    _submit(driver, root)
    _player(driver, "trial-1")  # the next trial is shown: trial 0 is stored

    db = sqlite3.connect(folder / STORE_FILE)
    (pid,) = db.execute("SELECT participant_id FROM participants WHERE token = ?", (token,)).fetchone()
    delivered, submitted, claimed = db.execute(
        "SELECT delivered_s, submitted_s, claimed_s FROM trial_times WHERE participant_id = ? AND trial_index = 0",
        (pid,)).fetchone()
    reported = dict(db.execute("SELECT stimulus_id, SUM(duration_s) FROM play_events WHERE participant_id = ? AND "
                               "trial_index = 0 GROUP BY stimulus_id", (pid,)).fetchall())
    heard = {sid: (s, length) for sid, s, length in db.execute(
        "SELECT stimulus_id, listened_s, length_s FROM listened WHERE participant_id = ? AND trial_index = 0",
        (pid,))}
    definition = load_definition(folder)
    trial = definition.trials_for(0)[0]
    assert set(heard) == {trial.reference, *trial.stimuli}
    assert set(reported) == set(heard)  # every signal was played through the player
    time_on_trial = submitted - delivered
    assert claimed == pytest.approx(sum(reported.values()))
    assert sum(s for s, _ in heard.values()) <= time_on_trial + 1e-9  # never more than the server saw elapse
    assert claimed <= time_on_trial  # a real player's report is within the time: credited as reported
    for sid, (seconds, length) in heard.items():
        assert seconds == pytest.approx(reported[sid], abs=1e-9) and seconds >= 0.25  # the must-play threshold
        stimulus = definition.stimuli[sid]
        assert length == pytest.approx(stimulus.samples / stimulus.sample_rate)
    with ListeningStore(folder / STORE_FILE) as store:
        text = format_behaviour(summary(store.listening(definition)))
    assert f"L001: 1 trials, median {time_on_trial:.1f} s on a trial" in text
