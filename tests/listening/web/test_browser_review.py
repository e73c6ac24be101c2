"""Real-browser checks of what a reviewer would try with dev tools and as a participant (headless chromium).

- MUSHRA: a trial as the browser gets it (one bundle: one request, its Content-Length, a fixed Last-Modified);
  keyboard shortcuts; a refresh keeps the ratings and played state; the next trial's bundle is fetched during the
  current one (no request for it after Submit); no server path in any websocket message; pause and resume; the
  end page with the completion code.
- ABX: always answering "A" scores exactly half.
- Headphone check under a --base-url-path: pass and fail stored; training audio is fetched only when shown.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import pytest

from evalkit.listening.model import STORE_FILE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.prepare.headphone import answers_for
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import bundle_name, headphone_seed, wire_id
from tests.browser import needs_browser, start_chromium
from tests.listening.web.test_browser import _click, _finish, _play_all, _player, _skip_training, _submit, _wait

pytestmark = needs_browser

HASH_SCRIPT = """
const [urls, done] = [arguments[0], arguments[arguments.length - 1]];
Promise.all(urls.map(async (u) => {
  const r = await fetch(u, { cache: "no-store" });
  const body = await r.arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return { url: u, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
           bytes: body.byteLength, length: r.headers.get("content-length"), etag: r.headers.get("etag"),
           modified: r.headers.get("last-modified") };
})).then(done, (e) => done(String(e)));
"""
# Test-only: play the headphone check's audio 16 times faster (the page is the same, the waiting is shorter).
FAST_AUDIO = """
const start = AudioBufferSourceNode.prototype.start;
AudioBufferSourceNode.prototype.start = function (...args) {
  this.playbackRate.value = 16;
  return start.apply(this, args);
};
"""


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"),
                       logs=("browser", "performance"))
    yield d
    d.quit()


def _body(d) -> str:
    from selenium.webdriver.common.by import By

    return d.find_element(By.TAG_NAME, "body").text


def _button(d, text: str):
    from selenium.webdriver.common.by import By

    return _wait(lambda: [b for b in d.find_elements(By.TAG_NAME, "button") if b.text.startswith(text)
                          and b.is_enabled()], what=f"button {text!r}")[0]


def _consent(d, url: str) -> str:
    from selenium.webdriver.common.by import By

    d.get(url)
    _wait(lambda: d.find_elements(By.CSS_SELECTOR, "[data-testid=stCheckbox] label"), what="consent")[0].click()
    _button(d, "Start").click()
    return _wait(lambda: "?p=" in d.current_url and d.current_url.split("?p=")[1], what="participant token")


def _network(d) -> list[dict]:
    return [json.loads(e["message"])["message"] for e in d.get_log("performance")]


def _requested(messages) -> list[str]:
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]


def _js(d, root, expr: str):
    return d.execute_script(f"const p = arguments[0].querySelector('.lt').__player; return {expr};", root)


def _rate(d, root, labels=None) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    for k, slider in enumerate(root.find_elements(By.CSS_SELECTOR, "input[data-role=rating]")):
        if labels is None or slider.get_attribute("data-label") in labels:
            d.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", slider)
            ActionChains(d).move_to_element_with_offset(slider, 0, int(slider.size["height"] * (0.3 - 0.1 * k))) \
                .click().perform()


def test_mushra_blind_files_refresh_prefetch_pause_in_chromium(driver, mushra_dir, fresh_copy, serve_test):
    from selenium.webdriver.common.action_chains import ActionChains

    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    server = serve_test(folder, completion_code="CODE-4711")
    driver.get(server.url)
    _wait(lambda: "trials" in _body(driver), what="welcome page")
    n = len(definition.slots[0])
    assert f"{n} trials" in _body(driver) and "minutes" in _body(driver)
    token = _consent(driver, server.url)
    _skip_training(driver)
    root = _player(driver, "trial-0")

    # 1. what dev tools show of this trial: one bundle, whose headers give its size and a fixed date only
    url = _js(driver, root, "p.data.bundle")
    (file,) = driver.execute_async_script(HASH_SCRIPT, [url])
    expected = _js(driver, root, "p.wave[0].length * 3 * p.all.length * p.data.channels + 68")  # 24-bit, header
    assert file["length"] == str(file["bytes"]) == str(expected)
    assert file["modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"

    # 2. keys: "1" plays the first rated signal, space stops it
    first = _js(driver, root, "p.data.stimuli[0].id")
    ActionChains(driver).send_keys("1").perform()
    _wait(lambda: _js(driver, root, "p.current && p.current.id") == first, what="key 1 plays signal 1")
    time.sleep(0.3)
    ActionChains(driver).send_keys(" ").perform()
    _wait(lambda: _js(driver, root, "p.current") is None, what="space stops")

    # 3. a refresh keeps the ratings and the played state (the draft reaches SQLite first)
    _play_all(driver, root)
    _rate(driver, root, labels={"1", "2"})
    db = sqlite3.connect(folder / STORE_FILE)

    def draft():
        row = db.execute("SELECT data FROM drafts").fetchone()
        return json.loads(row[0]) if row else None
    _wait(lambda: draft() and len(draft()["ratings"]) == 2, what="draft with two ratings")
    kept = draft()["ratings"]
    driver.refresh()
    root = _player(driver, "trial-0")
    with ListeningStore(folder / STORE_FILE) as store:
        participant = store.participant(token)
    assert _js(driver, root, "p.ratings") == {wire_id(participant, k): int(v) for k, v in kept.items()}
    assert _js(driver, root, "p.data.stimuli.every((s) => p.playedEnough(s.id))")
    assert _js(driver, root, "Object.values(p.sliders).every((s) => !s.disabled)")

    # 4. prefetch: the next trial's bundle is fetched now, nothing after Submit
    _rate(driver, root, labels={str(k) for k in range(3, 20)})
    next_url = _js(driver, root, "p.data.prefetch")
    assert driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...window.__evalkitAudio.values()]).then(() => done(window.__evalkitAudio.size));") == 1
    before = _network(driver)
    assert next_url.rsplit("/", 1)[1] in {u.rsplit("/", 1)[1] for u in _requested(before)}
    _submit(driver, root)
    root = _player(driver, "trial-1")
    assert _js(driver, root, "p.data.bundle") == next_url
    after = _network(driver)
    assert not [u for u in _requested(after) if "/app/static/" in u]

    # 5. pause keeps the position; the end page has the completion code and no bookmark hint
    from selenium.webdriver.common.by import By

    _click(driver, root.find_element(By.CSS_SELECTOR, "button[data-role=pause]"))
    # the player says "Paused" at once, before the app's pause page replaces it: wait for that page's own text
    _wait(lambda: "1 of 2 trials done" in _body(driver), what="pause page")
    assert "Paused" in _body(driver)
    _button(driver, "Continue").click()
    root = _player(driver, "trial-1")
    _play_all(driver, root)
    _rate(driver, root)
    _submit(driver, root)
    _finish(driver)
    assert "CODE-4711" in _body(driver) and "bookmark" not in _body(driver) and token not in _body(driver)

    # 6. no filesystem path in any message the server sent
    frames = [m for m in before + after + _network(driver) if m["method"] == "Network.webSocketFrameReceived"]
    assert frames
    payload = b"".join(base64.b64decode(f["params"]["response"]["payloadData"])
                       if f["params"]["response"]["opcode"] == 2 else f["params"]["response"]["payloadData"].encode()
                       for f in frames)
    assert str(folder).encode() not in payload and b"listening_app.py" not in payload
    assert str(folder.parent).encode() not in payload


def test_abx_always_answering_a_scores_half_in_chromium(driver, run_dir, tmp_path, serve_test):
    from selenium.webdriver.common.by import By

    folder = tmp_path / "abx"
    prepare_test(run_dir, folder, PrepareOptions(Design.ABX, items=2, listeners=2))
    server = serve_test(folder)
    for _ in range(2):  # both listener slots
        _consent(driver, server.url)
        _skip_training(driver)
        for index in range(2):
            root = _player(driver, f"trial-{index}")
            _play_all(driver, root)
            _click(driver, root.find_element(By.CSS_SELECTOR, "input[data-role=answer][value=A]"))
            _submit(driver, root)
        _finish(driver)
    with ListeningStore(folder / STORE_FILE) as store:
        choices = store.choices()
    per_listener = {}
    for c in choices:
        per_listener.setdefault(c.assessor, []).append(c.chosen == c.x)
    assert sorted(per_listener) == ["L001", "L002"]
    assert all(sum(v) == 1 and len(v) == 2 for v in per_listener.values())  # 50 %, not 0 % or 100 %


def test_headphone_check_per_participant_pass_fail_and_lazy_training_in_chromium(driver, run_dir, tmp_path,
                                                                                 serve_test):
    from selenium.webdriver.common.by import By

    folder = tmp_path / "hp"
    definition = prepare_test(run_dir, folder, PrepareOptions(Design.MUSHRA, items=1, listeners=1,
                                                              headphone_check=True))
    server = serve_test(folder, base_url_path="study")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAST_AUDIO})
    seen_bundles = []
    for right in (True, False):
        token = _consent(driver, server.url)
        with ListeningStore(folder / STORE_FILE) as store:
            participant = store.participant(token)
        answers = answers_for(headphone_seed(participant))  # this participant's own sequence, on the server only
        _wait(lambda: "Headphone check" in _body(driver), what="headphone page")
        host = _wait(lambda: driver.execute_script(
            "const h = Array.from(document.querySelectorAll('*')).find(e => e.shadowRoot && "
            "e.shadowRoot.querySelector('.hc[data-ready=\"1\"]')); return h ? h.shadowRoot : null;"),
            what="headphone component")
        data = driver.execute_script("return arguments[0].querySelector('.hc').__check.data", host)
        assert "answer" not in json.dumps(data) and data["trials"] == len(answers) == 6
        (file,) = driver.execute_async_script(HASH_SCRIPT, [data["bundle"]])
        seen_bundles.append(file)
        host.find_element(By.CSS_SELECTOR, "button[data-role=start-check]").click()
        for k, answer in enumerate(answers):
            _wait(lambda k=k, h=host: h.find_element(By.CSS_SELECTOR, ".hc").get_attribute("data-trial") == str(k),
                  what=f"sound check {k + 1}")
            host.find_element(By.CSS_SELECTOR, "button[data-role=play-check]").click()
            choice = answer if right else answer % 3 + 1
            _wait(lambda c=choice, h=host: h.find_element(
                By.CSS_SELECTOR, f"button[data-role=answer-check][data-value='{c}']").is_enabled(),
                what="answers enabled after the sounds")
            host.find_element(By.CSS_SELECTOR, f"button[data-role=answer-check][data-value='{choice}']").click()
        _wait(lambda: "Training" in _body(driver), what="training page after the check")
        _network(driver)  # discard: only what follows counts
        time.sleep(1.0)
        training = bundle_name(participant, "training")
        assert training not in {u.rsplit("/", 1)[1] for u in _requested(_network(driver))}
    # two participants: other URLs and other sounds, of one size
    assert seen_bundles[0]["url"] != seen_bundles[1]["url"] and seen_bundles[0]["sha256"] != seen_bundles[1]["sha256"]
    assert seen_bundles[0]["bytes"] == seen_bundles[1]["bytes"]
    _button(driver, "Listen to the training example").click()
    seen: set[str] = set()

    def requested_training() -> bool:
        seen.update(u.rsplit("/", 1)[1] for u in _requested(_network(driver)))
        return training in seen
    _wait(requested_training, what="training audio requested once shown")
    with ListeningStore(folder / STORE_FILE) as store:
        assert store.headphone_results() == {"L001": True, "L002": False}
    rows = sqlite3.connect(folder / STORE_FILE).execute(
        "SELECT correct, n_trials, details FROM headphone_checks ORDER BY participant_id").fetchall()
    assert [r[:2] for r in rows] == [(6, 6), (0, 6)]
    assert definition.headphone.n_trials == 6 and all(json.loads(r[2])["answers"] for r in rows)
