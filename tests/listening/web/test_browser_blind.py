"""A devtools-style check in headless chromium (issue 27, points 1-3 and 9): two participants go through a whole
test of each design (MUSHRA, ABX, ACR, DCR, BS.1116) while the Chrome DevTools Protocol log records the network
(requests, responses with their headers and sizes, websocket frames) and the page's DOM, the player's JavaScript
state and the storage are dumped on every trial. Nothing of it may name a condition or a stored stimulus id, a
trial's audio must be one request, and every rated signal (hidden reference, anchors, conditions; ABX's A, B and X;
BS.1116's A and B) must look the same in everything observable apart from its position; in ACR and DCR, where a
trial holds one rated signal, every trial looks the same, the hidden reference's included. The two participants
share no id and no URL.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict

import pytest

from evalkit.listening.model import OPEN_REFERENCE, STORE_FILE, Design, load_definition
from evalkit.listening.prepare.design import PrepareOptions, prepare_test
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.session import presented, wire_id
from tests.browser import needs_browser, start_chromium
from tests.listening.conftest import CONDITIONS
from tests.listening.web.test_browser import _click, _finish, _play_all, _player, _skip_training, _submit, _wait
from tests.listening.web.test_browser_designs import grade
from tests.listening.web.test_browser_review import _consent, _rate

pytestmark = needs_browser

# Everything a participant can read in the page, per trial (the player's shadow root, its data, storage, globals).
DUMP = """
const root = arguments[0];
const p = root.querySelector('.lt').__player;
const attrs = (e) => Object.fromEntries(Array.from(e.attributes, (a) => [a.name, a.value]));
const perSignal = {};
for (const s of p.data.stimuli) {
  const q = (sel) => Array.from(root.querySelectorAll(sel)).filter((e) => e.dataset.label === s.label).map(attrs);
  perSignal[s.id] = { entry: Object.keys(s).sort(), idLength: s.id.length,
                      buttons: q('button[data-role=play]'), sliders: q('input[data-role=rating]'),
                      bufferChannels: p.buffers[s.id].numberOfChannels, bufferLength: p.buffers[s.id].length,
                      played: p.played[s.id] > 0 };
}
const html = [document.documentElement.outerHTML];
for (const e of document.querySelectorAll('*')) if (e.shadowRoot) html.push(e.shadowRoot.innerHTML);
return { data: p.data, perSignal, html: html.join('\\n'),
         storage: JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)]),
         globals: Object.keys(window).filter((k) => k.startsWith('__evalkit')),
         cached: Array.from((window.__evalkitAudio || new Map()).keys()) };
"""
STATIC = "/app/static/"


@pytest.fixture
def driver():
    d = start_chromium(("--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"),
                       logs=("browser", "performance"))
    yield d
    d.quit()


def _messages(d) -> list[dict]:
    return [json.loads(e["message"])["message"] for e in d.get_log("performance")]


def _session(d, url: str, design: Design) -> tuple[str, list[dict]]:
    """One participant's whole test; its token and a dump of every trial (played and answered first)."""
    from selenium.webdriver.common.by import By

    token = _consent(d, url)
    _skip_training(d)
    dumps = []
    for index in range(2):
        root = _player(d, f"trial-{index}")
        _play_all(d, root)
        if design is Design.MUSHRA:
            _rate(d, root)
        elif design in (Design.ACR, Design.DCR, Design.BS1116):
            grade(d, root, design, index)
        else:
            _click(d, root.find_element(By.CSS_SELECTOR, "input[data-role=answer][value=B]"))
        _wait(lambda r=root: d.execute_script(
            "return arguments[0].querySelector('.lt').__player.data.stimuli.every((s) => "
            "arguments[0].querySelector('.lt').__player.playedEnough(s.id))", r), what="all played")
        dumps.append(d.execute_script(DUMP, root))
        _submit(d, root)
    _finish(d)
    return token, dumps


def _frames(messages) -> bytes:
    out = []
    for m in messages:
        if m["method"] in ("Network.webSocketFrameReceived", "Network.webSocketFrameSent"):
            r = m["params"]["response"]
            out.append(base64.b64decode(r["payloadData"]) if r["opcode"] == 2 else r["payloadData"].encode())
    return b"\n".join(out)


def _network(messages) -> dict:
    """Requests (url, time), responses (url -> headers) and sizes (url -> encoded bytes) of a session."""
    by_id, requests, headers, sizes = {}, [], {}, defaultdict(int)
    for m in messages:
        params = m["params"]
        if m["method"] == "Network.requestWillBeSent":
            by_id[params["requestId"]] = params["request"]["url"]
            requests.append(params["request"]["url"])
        elif m["method"] == "Network.responseReceived":
            headers[params["response"]["url"]] = params["response"]["headers"]
        elif m["method"] == "Network.loadingFinished" and params["requestId"] in by_id:
            sizes[by_id[params["requestId"]]] += params["encodedDataLength"]
    return {"requests": requests, "headers": headers, "sizes": dict(sizes)}


def _secrets(definition) -> list[str]:
    """Strings that would name a condition or a stimulus if a participant found them."""
    names = {*definition.stimuli, *definition.conditions, *definition.conditions.values(), OPEN_REFERENCE,
             "anchor35", "anchor70", "lowpass", "cutoff_hz"}
    return sorted(names)


def _check_participant(definition, participant, dumps, net, frames) -> set[str]:
    """Every check for one participant; returns the ids and URLs it saw."""
    trials = definition.trials_for(participant.slot)
    page_text = "\n".join(d["html"] + d["storage"] + json.dumps(d["data"]) + json.dumps(d["cached"]) for d in dumps)
    wire_text = "\n".join(net["requests"]) + json.dumps(net["headers"])
    for secret in _secrets(definition):  # nothing names a condition or a stored stimulus id, anywhere
        assert secret not in page_text, secret
        assert secret not in wire_text, secret
        assert secret.encode() not in frames, secret
    static = [u for u in net["requests"] if STATIC in u]
    bundles = [d["data"]["bundle"].rsplit("/", 1)[1] for d in dumps]
    # the audio of a trial is one request (its bundle), made once: no per-signal request, size, order or timing
    assert sorted(u.rsplit("/", 1)[1] for u in static) == sorted(bundles)
    assert all(re.fullmatch(r"[0-9a-f]{32}\.wav", b) for b in bundles)
    seen = set(bundles)
    trial_looks = []
    for index, dump in enumerate(dumps):
        trial = trials[index]
        data = dump["data"]
        ids = [s["id"] for s in data["stimuli"]]
        shown = [trial.stimuli[k] for k in participant.orders[index]]
        assert ids == [wire_id(participant, s) for s in shown]  # the participant's own ids
        assert not [u for u in net["requests"] if any(i in u for i in ids)]  # no id in any URL
        (url,) = [u for u in static if u.endswith(bundles[index])]
        head = {k.lower(): v for k, v in net["headers"][url].items()}
        assert set(head) >= {"content-length", "last-modified", "etag"}
        first = definition.stimuli[trial.stimuli[0]]
        shape_bytes = 68 + first.samples * first.channels * 3 * len(presented(trial))
        assert int(head["content-length"]) == shape_bytes  # the trial's shape, no more
        assert all(i.encode() in frames for i in ids)  # the frames were read: the ids reached the page through them
        assert not any(i in json.dumps(head) for i in ids)
        # every rated signal looks alike in all that is observable apart from its position
        features = [json.dumps({**dump["perSignal"][i], "buttons": [dict(b, **{"data-label": "", "title": "",
                                                                                "class": "lt-play"})
                                                                     for b in dump["perSignal"][i]["buttons"]],
                                "sliders": [dict(s, **{"data-label": ""}) for s in dump["perSignal"][i]["sliders"]]},
                               sort_keys=True) for i in ids]
        assert len(set(features)) == 1, features
        trial_looks.append((features[0], int(head["content-length"]), sorted(data), len(data["stimuli"])))
        conditions = [definition.stimuli[s].condition for s in shown]
        if definition.design is Design.MUSHRA:
            assert {"reference", "anchor35", "anchor70"} <= set(conditions)  # what had to stay hidden is there
        elif definition.design is Design.BS1116:
            assert "reference" in conditions and len(set(conditions)) == 2  # the hidden reference is A or B
        elif definition.design is Design.ABX:
            assert conditions[2] in conditions[:2]  # X is one of A and B
    if definition.design in (Design.ACR, Design.DCR):  # one signal a trial: the hidden reference's trial is alike
        conditions = [definition.stimuli[trials[k].stimuli[0]].condition for k in range(len(dumps))]
        assert "reference" in conditions and len(set(conditions)) == len(conditions)
        assert len({json.dumps(look) for look in trial_looks}) == 1, trial_looks
        assert dump["globals"] == ["__evalkitAudio"] and all(STATIC.strip("/") in u for u in dump["cached"])
        seen |= set(ids) | {wire_id(participant, s) for s in presented(trial)}
    return seen


def _options(design: Design) -> PrepareOptions:
    """Two trials per participant: ACR/DCR one item (hidden reference and one condition), others two items."""
    if design in (Design.ACR, Design.DCR):
        return PrepareOptions(design, items=1, listeners=2, conditions=CONDITIONS[:1])
    if design is Design.BS1116:
        return PrepareOptions(design, items=2, listeners=2, conditions=CONDITIONS[:1])
    return PrepareOptions(design, items=2, listeners=2)


@pytest.mark.parametrize("design", [Design.MUSHRA, Design.ABX, Design.ACR, Design.DCR, Design.BS1116])
def test_devtools_find_nothing_that_names_the_hidden_reference_anchors_or_x(driver, run_dir, tmp_path, serve_test,
                                                                           design):
    folder = tmp_path / str(design)
    prepare_test(run_dir, folder, _options(design))
    definition = load_definition(folder)
    server = serve_test(folder)
    driver.get(server.url)
    _messages(driver)  # the app's own start: discarded
    seen = []
    for _ in range(2):  # two participants, one after the other in the same browser
        token, dumps = _session(driver, server.url, design)
        messages = _messages(driver)
        with ListeningStore(folder / STORE_FILE) as store:
            participant = store.participant(token)
        seen.append(_check_participant(definition, participant, dumps, _network(messages), _frames(messages)))
    assert not seen[0] & seen[1]  # no id and no bundle URL shared by the two participants
    with ListeningStore(folder / STORE_FILE) as store:
        assert len(store.choices() if design in (Design.AB, Design.ABX) else store.ratings()) > 0
