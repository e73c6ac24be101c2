"""The Streamlit listening-test app (run through ``evalkit listen serve``; Streamlit-only code lives here).

Pages: welcome (instructions, number of trials and expected duration, consent) → headphone check (if the test has
one) → training (its audio loads only when shown) → trials with a progress indicator and a pause → the
questionnaire (:mod:`evalkit.listening.questionnaire`) → thank you (with the completion code, if any); an admin
page at ``?admin=<token>``. A participant is identified only by the unguessable ``?p=<token>`` of its URL, so a
refresh, a crash or a server restart resumes at its first unfinished trial, with the ratings and played state of
that trial restored from its draft.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import streamlit as st

from evalkit.listening.model import STORE_FILE, Design, ListenError, TestDefinition, load_definition
from evalkit.listening.questionnaire import MAX_TEXT_CHARS, Question, QuestionType, all_questions
from evalkit.listening.storage import ListeningStore, Participant
from evalkit.listening.storage.slots import SLOT_IDLE_MINUTES
from evalkit.listening.web.serve import ADMIN_ENV, COMPLETION_ENV, PREFETCH_ENV, SLOT_IDLE_ENV
from evalkit.listening.web.session import (
    HEADPHONE_KEY,
    bundle_url,
    deliver,
    deliver_headphone,
    expected_minutes,
    handle_draft,
    handle_headphone_check,
    handle_questionnaire,
    handle_submission,
    headphone_data,
    player_data,
    release,
    training_order,
    trial_order,
)

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
    Design.ACR: """You will hear one short excerpt per trial. Rate its overall **quality** on the five-point scale
from Excellent to Bad. Play it before rating; you can play it again.""",
    Design.DCR: """Each trial has a **reference** and a **sample** of the same excerpt. Play the reference first,
then the sample, and rate how much the sample is **degraded** compared with the reference, from "inaudible" to "very
annoying". Both must be played before you rate.""",
    Design.BS1116: """Each trial has a **reference** and two versions, **A** and **B**, of the same excerpt. One of
A and B is identical to the reference, the other may be impaired. Grade both on the scale from 5.0 (imperceptible)
to 1.0 (very annoying), with one decimal: give 5.0 to the one you find identical to the reference. Play the
reference, A and B before grading.""",
}
DEFAULT_CONSENT = "Your answers are stored under a random code, with no name or address, and used for research."


@st.cache_resource
def _definition(folder: str) -> TestDefinition:
    return load_definition(folder)


@st.cache_resource
def _player():
    from evalkit.listening.web.assets import component

    return st.components.v2.component("evalkit_listening_player", **component("player"))


@st.cache_resource
def _headphone_component():
    from evalkit.listening.web.assets import component

    return st.components.v2.component("evalkit_headphone_check", **component("headphone"))


def _ready(future) -> bool:
    """Wait for a bundle; False (and an error on the page, the reason in the server's log) if it failed."""
    try:
        future.result()
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"evalkit listen: cannot build a bundle: {exc}", file=sys.stderr)
        st.error("The audio of this page could not be prepared (the server's log says why).")
        return False
    return True


def main(folder: Path) -> None:
    """Render the page for the current URL (one Streamlit script run)."""
    st.set_page_config(page_title="Listening test", layout="wide")
    try:
        definition = _definition(str(folder))
    except ListenError as exc:
        print(f"evalkit listen: {exc}", file=sys.stderr)  # the path stays in the server's log
        st.error("This test cannot run: its folder is incomplete or invalid (the server's log says why).")
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
        participant_page(folder, definition, store, participant)


def welcome_page(definition: TestDefinition, store: ListeningStore) -> None:
    st.title("Listening test")
    st.markdown(definition.instructions or INSTRUCTIONS[definition.design])
    n = len(definition.trials_for(0))
    steps = ("a headphone check, " if definition.headphone else "") + "a short training and "
    st.markdown(f"The test has {steps}**{n} trials** and takes about **{expected_minutes(definition)} minutes**. "
                "You can pause between trials and come back later with your personal link.")
    st.markdown("Use headphones in a quiet room and set a comfortable volume during training; do not change it "
                "afterwards.")
    st.markdown(definition.consent or DEFAULT_CONSENT)
    agree = st.checkbox("I agree to take part and to have my anonymous answers used for research.", key="consent")
    if st.button("Start", disabled=not agree, type="primary"):
        participant = store.create_participant(definition, with_slot=False)  # a slot when its first trial starts
        store.mark(participant, "consented")
        st.query_params["p"] = participant.token
        st.rerun()


def _personal_link(participant: Participant) -> None:
    st.caption(f"Your personal link (bookmark it to resume): `?p={participant.token}`")


def _slot_idle_s() -> float:
    return 60 * float(os.environ.get(SLOT_IDLE_ENV, SLOT_IDLE_MINUTES))


def participant_page(folder: Path, definition: TestDefinition, store: ListeningStore,
                     participant: Participant) -> None:
    screened = definition.headphone is None or store.headphone_result(participant) is not None
    before = participant.participant_id
    # every page counts as activity; the first trial takes a design slot (a released one may be given back)
    participant = store.hold_slot(definition, participant, _slot_idle_s(), assign=screened and participant.trained)
    if participant.participant_id != before:
        st.info("Your session was idle for a long time and its place in the test went to another participant: "
                "you continue with a new set of trials.")
    trials = definition.trials_for(participant.slot) if participant.slot is not None else ()
    done = store.done_trials(participant)
    remaining = [i for i in range(len(trials)) if i not in done]
    if trials and not remaining:
        if store.questionnaire_done(participant):
            end_page()
        else:
            questionnaire_page(definition, store, participant)
        return
    if not screened:
        headphone_page(folder, definition, store, participant)
        return
    prefetch = os.environ.get(PREFETCH_ENV, "1") != "0"
    if not participant.trained:  # no slot yet, so the first trial cannot be prefetched unless it has one
        training_page(folder, definition, store, participant, remaining[0] if prefetch and remaining else None)
        return
    paused_key = f"paused-{participant.participant_id}"
    if st.session_state.get(paused_key):
        pause_page(len(done), len(trials), paused_key)
        return
    index = remaining[0]
    key = f"trial-{index}"
    _personal_link(participant)
    st.progress(len(done) / len(trials), text=f"Trial {len(done) + 1} of {len(trials)}")
    trial = trials[index]
    st.markdown(definition.instructions_for(trial)
                or INSTRUCTIONS[definition.design].split("\n\n")[0].replace("\n", " "))
    order = trial_order(definition, participant, index)
    if not _ready(deliver(folder, definition, participant, key, trial, order)):
        return
    next_url = None
    if prefetch and len(remaining) > 1:  # built in the background while this trial is shown
        following = remaining[1]
        deliver(folder, definition, participant, f"trial-{following}", trials[following],
                trial_order(definition, participant, following))
        next_url = bundle_url(participant, f"trial-{following}")
    data = player_data(definition, participant, trial, key, False, order, draft=store.draft(participant, index),
                       prefetch=next_url)
    store.mark_delivered(participant, index)  # the server's clock starts the trial (first delivery only)
    result = _player()(key=key, data=data, on_submit_change=lambda: None,
                       on_draft_change=lambda: None, on_pause_change=lambda: None)
    if result.draft:
        handle_draft(store, definition, participant, index, result.draft)
    if result.pause:
        handle_draft(store, definition, participant, index, result.pause)
        st.session_state[paused_key] = True
        st.rerun()
    if result.submit:
        problems = handle_submission(store, definition, participant, index, result.submit)
        if problems:
            st.error("Not saved: " + "; ".join(problems))
        else:
            release(folder, participant, key)
            st.rerun()


def headphone_page(folder: Path, definition: TestDefinition, store: ListeningStore,
                   participant: Participant) -> None:
    _personal_link(participant)
    st.title("Headphone check")
    st.markdown("This short check makes sure that you are wearing headphones: you will hear three noises at a "
                "time, six times, and say which noise holds a faint tone. The tone can be heard only over "
                "headphones.")
    if not _ready(deliver_headphone(folder, definition, participant)):
        return
    result = _headphone_component()(key="headphone-check", data=headphone_data(definition, participant),
                                    on_result_change=lambda: None)
    if result.result:
        problems = handle_headphone_check(store, definition, participant, result.result)
        if problems:
            st.error("Not saved: " + "; ".join(problems))
        else:
            release(folder, participant, HEADPHONE_KEY)
            st.rerun()


def training_page(folder: Path, definition: TestDefinition, store: ListeningStore, participant: Participant,
                  first_index: int | None) -> None:
    _personal_link(participant)
    st.title("Training")
    st.markdown("Listen to the signals of this example to learn the range of quality in the test and to set "
                "your volume. Nothing is recorded here."
                + (" Play every signal once before you start the test." if definition.require_training else ""))
    shown = definition.require_training or st.session_state.get("training-shown")
    if definition.training is not None and shown:
        order = training_order(definition, participant)
        if not _ready(deliver(folder, definition, participant, "training", definition.training, order)):
            return
        next_url = None
        if first_index is not None:
            key = f"trial-{first_index}"
            deliver(folder, definition, participant, key, definition.trials_for(participant.slot)[first_index],
                    trial_order(definition, participant, first_index))
            next_url = bundle_url(participant, key)
        data = player_data(definition, participant, definition.training, "training", True, order,
                           prefetch=next_url, require_play=definition.require_training)
        result = _player()(key="training", data=data, on_submit_change=lambda: None)
        if result.submit:
            store.mark(participant, "trained")
            release(folder, participant, "training")
            st.rerun()
    elif definition.training is not None and st.button("Listen to the training example", type="primary"):
        st.session_state["training-shown"] = True
        st.rerun()
    if not definition.require_training and st.button("Skip training and start the test"):
        store.mark(participant, "trained")
        release(folder, participant, "training")
        st.rerun()


def pause_page(done: int, total: int, paused_key: str) -> None:
    st.title("Paused")
    st.markdown(f"Your answers so far are saved: {done} of {total} trials done. The current trial keeps its "
                "ratings and played signals. Continue now, or later with your personal link.")
    if st.button("Continue", type="primary"):
        st.session_state[paused_key] = False
        st.rerun()


def _question_widget(question: Question):
    """One question's input on the questionnaire form, its hint below it; its value (None: not answered)."""
    label, key = question.text + (" *" if question.required else ""), f"q-{question.id}"
    if question.type is QuestionType.CHOICE:
        value = st.radio(label, question.choices, index=None, key=key, horizontal=True)
    elif question.type is QuestionType.NUMBER:
        value = st.number_input(label, value=None, key=key)
    elif question.id == "comments":
        value = st.text_area(label, key=key, max_chars=MAX_TEXT_CHARS)
    else:
        value = st.text_input(label, key=key, max_chars=MAX_TEXT_CHARS)
    if question.help:
        st.caption(question.help)
    return value


def questionnaire_page(definition: TestDefinition, store: ListeningStore, participant: Participant) -> None:
    st.title("Almost done")
    st.success("All your ratings are saved.")
    st.markdown("Please tell us a little about yourself and your headphones: the report of the test describes "
                "its panel of listeners (questions marked * need an answer).")
    with st.form("questionnaire"):
        answers = {q.id: _question_widget(q) for q in all_questions(definition.questionnaire)}
        sent = st.form_submit_button("Send", type="primary")
    if sent:
        problems = handle_questionnaire(store, definition, participant, answers)
        if problems:
            st.error("Not saved: " + "; ".join(problems))
        else:
            st.rerun()


def end_page() -> None:
    st.title("Thank you!")
    st.success("All your answers are saved. You can close this page.")
    code = os.environ.get(COMPLETION_ENV)
    if code:
        st.markdown(f"Your completion code: **`{code}`**")


def admin_page(folder: Path, definition: TestDefinition, store: ListeningStore, token: str) -> None:
    expected = os.environ.get(ADMIN_ENV, "")
    if not expected or not secrets.compare_digest(token.encode(), expected.encode()):
        st.error("Wrong admin token.")
        return
    import pandas as pd

    from evalkit.listening.analysis.ratings_csv import export_csv
    from evalkit.listening.web.admin_view import show_analysis

    st.title("Listening test: admin")
    rows = store.progress(definition)
    finished = sum(r["finished"] is not None for r in rows)
    st.metric("participants", f"{len(rows)} ({finished} finished)")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.subheader("Conditions")
    st.dataframe(pd.DataFrame([{"label": definition.labels.get(c, c), "condition": c}
                               for c in ([] if definition.design in (Design.AB, Design.ABX) else ["reference"])
                               + list(definition.conditions)]), hide_index=True)
    show_analysis(folder, definition, store)
    records = store.export_rows(definition)
    if records:
        st.download_button("Export ratings (CSV)", export_csv(records), file_name=f"{folder.name}-ratings.csv",
                           mime="text/csv")
