"""Real-browser checks of the finish page's questionnaire and the admin page (headless chromium): a participant
fills the questionnaire in the real page and the store holds exactly those answers; the admin page shows the
analysis as tables with the report's figures (no code block), the panel and the headphone-check results.
Screenshots of both pages land in the test's tmp folder."""

from __future__ import annotations

import pytest

from evalkit.listening.model import STORE_FILE
from evalkit.listening.storage import ListeningStore
from tests.browser import needs_browser, start_chromium
from tests.listening.web.test_browser import _choose, _click, _wait

pytestmark = needs_browser


@pytest.fixture
def driver():
    d = start_chromium(("--window-size=1280,1400",))
    yield d
    d.quit()


def _token(folder, label: str) -> str:
    with ListeningStore(folder / STORE_FILE) as store:
        return store.db.execute("SELECT token FROM participants WHERE label = ?", (label,)).fetchone()[0]


def _body(d) -> str:
    from selenium.webdriver.common.by import By

    return d.find_element(By.TAG_NAME, "body").text


def _type(d, question: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = _wait(lambda: d.find_element(By.CSS_SELECTOR, f'input[aria-label="{question}"], '
                                                          f'textarea[aria-label="{question}"]'),
                  what=f"field {question}")
    _click(d, field)
    field.send_keys(text)


def _send(d) -> None:
    from selenium.webdriver.common.by import By

    _click(d, _wait(lambda: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text == "Send"],
                    what="send button")[0])


def test_questionnaire_filled_in_chromium_is_stored(driver, panel_dir, fresh_copy, serve_test, tmp_path):
    folder = fresh_copy(panel_dir)
    server = serve_test(folder, completion_code="CODE-31")
    driver.get(f"{server.url}?p={_token(folder, 'L004')}")  # finished all trials, not answered yet
    _wait(lambda: "Almost done" in _body(driver), what="questionnaire page")
    assert "CODE-31" not in _body(driver)
    _choose(driver, "Your age *", "35–44")
    _choose(driver, "Your listening expertise *", "expert")
    _type(driver, "Your headphones (make and model)", "Audio-Technica ATH-M50x")
    _type(driver, "Comments on the test (optional)", "Trial 2 was hard.\nNice test")
    _choose(driver, "Do you have a known hearing impairment? *", "no")
    _type(driver, "Hours per week you listen to music", "7.5")
    driver.save_screenshot(str(tmp_path / "questionnaire.png"))
    _send(driver)  # the required native language is missing: refused, nothing stored
    _wait(lambda: "Not saved: Your native language: an answer is required" in _body(driver), what="error")
    with ListeningStore(folder / STORE_FILE) as store:
        assert "L004" not in store.questionnaire_answers()
    _type(driver, "Your native language *", "Finnish")
    _send(driver)
    _wait(lambda: "Thank you!" in _body(driver), what="thank-you page",
          detail=lambda: _body(driver)[-500:])
    assert "CODE-31" in _body(driver)
    with ListeningStore(folder / STORE_FILE) as store:
        assert store.questionnaire_answers()["L004"] == {
            "age_range": "35–44", "expertise": "expert", "headphone_model": "Audio-Technica ATH-M50x",
            "comments": "Trial 2 was hard.\nNice test", "native_language": "Finnish", "hearing": "no",
            "hours_per_week": 7.5}


def test_admin_page_in_chromium_shows_tables_figures_and_the_panel(driver, panel_dir, fresh_copy, serve_test,
                                                                  tmp_path):
    from selenium.webdriver.common.by import By

    folder = fresh_copy(panel_dir)
    server = serve_test(folder, admin_token="admin-token-for-tests")
    driver.get(f"{server.url}?admin=admin-token-for-tests")
    _wait(lambda: "Headphone check" in _body(driver), timeout=60, what="the whole admin page")
    _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=stImage] img")) == 3,
          what="the report's three MUSHRA figures")
    text = _body(driver)
    for heading in ("Analysis", "Paired comparisons", "Assessors left out (BS.1534-3 post-screening)",
                    "Panel (finish-page questionnaire)", "Every participant's answers (3)", "Headphone check",
                    "4 passed, 1 failed", "3 of the 4 assessors in the analysis answered"):
        assert heading in text
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid=stCode], pre")  # no code block
    assert len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=stDataFrame]")) >= 7
    assert all(i.size["width"] > 200 for i in driver.find_elements(By.CSS_SELECTOR, "[data-testid=stImage] img"))
    height = driver.execute_script("return document.querySelector('[data-testid=stMain]').scrollHeight")
    driver.set_window_size(1280, min(height + 200, 6000))
    driver.save_screenshot(str(tmp_path / "admin.png"))
