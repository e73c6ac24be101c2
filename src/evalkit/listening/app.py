"""The Streamlit listening-test app (run through ``evalkit listen serve``; Streamlit-only code lives here).

Pages: welcome (instructions and consent) → training → trials with a progress indicator → thank you; an admin
page at ``?admin=<token>``. A participant is identified only by the unguessable ``?p=<token>`` of its URL, so a
refresh, a crash or a server restart resumes at its first unfinished trial.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import streamlit as st

from evalkit.listening.model import STORE_FILE, Design, ListenError, TestDefinition, load_definition
from evalkit.listening.session import MIN_PLAY_S, handle_submission, player_data
from evalkit.listening.storage import ListeningStore, Participant

ADMIN_ENV = "EVALKIT_LISTEN_ADMIN_TOKEN"

INSTRUCTIONS = {
    Design.MUSHRA: """You will hear a **reference** and several versions of the same excerpt. Rate how close each
version is to the reference on a scale from 0 (bad) to 100 (excellent). One of the versions is the reference
itself: give it 100 when you find it. Switch freely between versions while playing: playback continues from the
same position. You can restrict playback to a loop region. Every version must be played before you can rate it,
and every version rated before you continue.""",
    Design.AB: """You will hear two versions, **A** and **B**, of the same excerpt. Say which one you prefer, or that
you have no preference. Play both before answering; you can switch between them at the same position.""",
    Design.ABX: """You will hear two different versions, **A** and **B**, and a third one, **X**, which is identical
to A or to B. Say which one X is. Play all three before answering.""",
}


@st.cache_resource
def _definition(folder: str) -> TestDefinition:
    return load_definition(folder)


@st.cache_resource
def _player():
    from evalkit.listening.player_js import PLAYER_CSS, PLAYER_HTML, PLAYER_JS

    return st.components.v2.component("evalkit_listening_player", html=PLAYER_HTML, css=PLAYER_CSS,
                                      js=PLAYER_JS % {"min_play_s": MIN_PLAY_S})


def main(folder: Path) -> None:
    """Render the page for the current URL (one Streamlit script run)."""
    st.set_page_config(page_title="Listening test", layout="wide")
    try:
        definition = _definition(str(folder))
    except ListenError as exc:
        st.error(f"This test cannot run: {exc}")
        return
    with ListeningStore(folder / STORE_FILE) as store:
        params = st.query_params
        if "admin" in params:
            admin_page(folder, definition, store, params["admin"])
            return
        token = params.get("p")
        if token is None:
            welcome_page(definition, store)
            return
        participant = store.participant(token)
        if participant is None:
            st.error("This link is not valid. Open the address you were given without the part after the `?` "
                     "to start a new session.")
            return
        participant_page(definition, store, participant)


def welcome_page(definition: TestDefinition, store: ListeningStore) -> None:
    st.title("Listening test")
    st.markdown(INSTRUCTIONS[definition.design])
    st.markdown("Use headphones in a quiet room and set a comfortable volume during training; do not change it "
                "afterwards. Your answers are stored under a random code, with no name or address.")
    agree = st.checkbox("I agree to take part and to have my anonymous answers used for research.", key="consent")
    if st.button("Start", disabled=not agree, type="primary"):
        participant = store.create_participant(definition)
        store.mark(participant, "consented")
        st.query_params["p"] = participant.token
        st.rerun()


def participant_page(definition: TestDefinition, store: ListeningStore, participant: Participant) -> None:
    trials = definition.trials_for(participant.slot)
    done = store.done_trials(participant)
    st.caption(f"Your personal link (bookmark it to resume): `?p={participant.token}`")
    if not participant.trained:
        st.title("Training")
        st.markdown("Listen to the signals of this example to learn the range of quality in the test and to set "
                    "your volume. Nothing is recorded here.")
        if definition.training is not None:
            result = _player()(key="training", data=player_data(definition, definition.training, "training", True),
                               on_submit_change=lambda: None)
            if result.submit:
                store.mark(participant, "trained")
                st.rerun()
        if st.button("Skip training and start the test"):
            store.mark(participant, "trained")
            st.rerun()
        return
    remaining = [i for i in range(len(trials)) if i not in done]
    if not remaining:
        st.title("Thank you!")
        st.success("All your answers are saved. You can close this page.")
        return
    index = remaining[0]
    st.progress(len(done) / len(trials), text=f"Trial {len(done) + 1} of {len(trials)}")
    st.markdown(INSTRUCTIONS[definition.design].split("\n\n")[0].replace("\n", " "))
    trial = trials[index]
    order = participant.orders[index] if index < len(participant.orders) else range(len(trial.stimuli))
    result = _player()(key=f"trial-{index}", data=player_data(definition, trial, f"trial-{index}", False, order),
                       on_submit_change=lambda: None)
    payload = result.submit
    if payload:
        problems = handle_submission(store, definition, participant, index, payload)
        if problems:
            st.error("Not saved: " + "; ".join(problems))
        else:
            st.rerun()


def admin_page(folder: Path, definition: TestDefinition, store: ListeningStore, token: str) -> None:
    expected = os.environ.get(ADMIN_ENV, "")
    if not expected or not secrets.compare_digest(token.encode(), expected.encode()):
        st.error("Wrong admin token.")
        return
    import pandas as pd

    from evalkit.listening.report import analyze_test_dir, export_csv, format_report

    st.title("Listening test: admin")
    rows = store.progress(definition)
    finished = sum(r["finished"] is not None for r in rows)
    st.metric("participants", f"{len(rows)} ({finished} finished)")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    try:
        report = analyze_test_dir(folder)
    except ListenError as exc:
        st.info(str(exc))
        report = None
    if report is not None:
        if report["design"] == "mushra":
            st.subheader("Exclusions (BS.1534-3 post-screening)")
            st.dataframe(pd.DataFrame(report["excluded"] or [{"assessor": "none", "reason": ""}]), hide_index=True)
        st.subheader("Analysis")
        st.code(format_report(report))
    records = store.ratings() if definition.design is Design.MUSHRA else store.choices()
    if records:
        st.download_button("Export ratings (CSV)", export_csv(records), file_name=f"{folder.name}-ratings.csv",
                           mime="text/csv")
