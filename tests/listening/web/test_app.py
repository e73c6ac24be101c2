"""Page flows of the Streamlit app with Streamlit's AppTest (no browser: the player's JavaScript does not run)."""

from __future__ import annotations

import sqlite3

import pytest

from evalkit.listening.model import STORE_FILE, load_definition
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web.serve import ADMIN_ENV, write_launcher
from tests.listening.storage.test_storage import _events, _scores

ADMIN = "correct-admin-token"


@pytest.fixture
def app(mushra_dir, fresh_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    folder = fresh_copy(mushra_dir)
    monkeypatch.setenv(ADMIN_ENV, ADMIN)

    def make(**params) -> AppTest:
        at = AppTest.from_file(str(write_launcher(folder)), default_timeout=30)
        for k, v in params.items():
            at.query_params[k] = v
        return at
    make.folder = folder
    return make


def _count(folder, table: str) -> int:
    db = folder / STORE_FILE
    return sqlite3.connect(db).execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if db.exists() else 0


def _texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [e.value for e in at.error] + [t.value for t in at.title]
                    + [c.value for c in at.caption] + [s.value for s in at.success])


def test_consent_training_then_first_trial(app):
    at = app().run()
    assert not at.exception
    start = next(b for b in at.button if b.label == "Start")
    assert start.disabled  # no consent yet
    assert _count(app.folder, "participants") == 0
    at.checkbox(key="consent").check().run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    token = at.query_params["p"][0] if isinstance(at.query_params["p"], list) else at.query_params["p"]
    assert _count(app.folder, "participants") == 1
    assert "Training" in _texts(at)
    next(b for b in at.button if b.label.startswith("Skip training")).click().run()
    assert not at.exception
    n = len(load_definition(app.folder).slots[0])
    assert at.get("progress")[0].proto.text == f"Trial 1 of {n}"
    # a refresh (new session, same URL) resumes at the same place
    again = app(p=token).run()
    assert again.get("progress")[0].proto.text == f"Trial 1 of {n}"
    assert _count(app.folder, "participants") == 1


def test_resume_at_first_unfinished_trial_and_thank_you(app):
    definition = load_definition(app.folder)
    with ListeningStore(app.folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        store.mark(p, "consented")
        store.mark(p, "trained")
        trials = definition.trials_for(p.slot)
        store.submit(definition, p, 0, scores=_scores(trials[0], 1), events=_events(trials[0]))
    at = app(p=p.token).run()
    assert at.get("progress")[0].proto.text == f"Trial 2 of {len(trials)}"
    with ListeningStore(app.folder / STORE_FILE) as store:  # another participant sees only its own session
        other = store.create_participant(definition)
        store.mark(other, "trained")
    assert app(p=other.token).run().get("progress")[0].proto.text == f"Trial 1 of {len(trials)}"
    with ListeningStore(app.folder / STORE_FILE) as store:
        for index in range(1, len(trials)):
            store.submit(definition, p, index, scores=_scores(trials[index], 2), events=_events(trials[index]))
        assert store.save_questionnaire(p, {"age_range": "18–24", "expertise": "naive"})  # the finish page's
    at = app(p=p.token).run()
    assert "Thank you!" in _texts(at)


def test_forged_token_is_refused_and_writes_nothing(app):
    app().run()  # creates the store
    at = app(p="forged-token-000000000000").run()
    assert not at.exception
    assert "This link is not valid" in _texts(at)
    assert _count(app.folder, "participants") == 0
    assert not at.button and not at.get("progress")


def test_admin_page_needs_the_token(app):
    definition = load_definition(app.folder)
    with ListeningStore(app.folder / STORE_FILE) as store:
        p = store.create_participant(definition)
        trial = definition.trials_for(p.slot)[0]
        store.submit(definition, p, 0, scores=_scores(trial, 5), events=_events(trial))
    wrong = app(admin="not-the-token").run()
    assert not wrong.exception
    assert [e.value for e in wrong.error] == ["Wrong admin token."]
    assert not wrong.get("download_button") and not wrong.dataframe
    right = app(admin=ADMIN).run()
    assert not right.exception
    assert right.metric[0].value == "1 (0 finished)"
    assert right.dataframe  # progress table
    assert "Analysis" in [s.value for s in right.subheader] and not right.code  # the analysis, as tables
    assert right.get("download_button")
    assert p.token not in str(right.dataframe[0].value.to_dict())  # tokens stay secret, even to the admin view
