"""The questionnaire on a listening test's finish page, as pure functions: the standard questions, the
researcher's own ones (``listen prepare --questionnaire FILE.yaml``), the check of a participant's answers and the
panel description the report shows.

BS.1534-3 (§ 4.1, § 9.2) asks a report to describe the panel of assessors; the standard questions ask for the age
range, the listening expertise (naive / experienced / expert, the assessor categories of BS.1534-3 and P.800),
the headphone model and free comments. The researcher's questions follow them. A questionnaire file is YAML: a
list of questions (or ``questions:`` holding that list), each with ``id``, ``text``, ``type`` (``choice``,
``text`` or ``number``), ``choices`` (choice only) and ``required`` (default false), and optionally ``help``.
"""

from __future__ import annotations

import enum
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from evalkit.listening.errors import ListenError

MAX_TEXT_CHARS = 2000  # a longer answer is refused (the comment box says so)
NO_ANSWER = "no answer"
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
QUESTION_KEYS = ("id", "text", "type", "choices", "required", "help")


class QuestionType(enum.StrEnum):
    CHOICE = "choice"
    TEXT = "text"
    NUMBER = "number"


@dataclass(frozen=True)
class Question:
    """One question: ``choices`` for a choice question (in the order shown), ``help`` a hint beside it."""

    id: str
    text: str
    type: QuestionType
    choices: tuple[str, ...] = ()
    required: bool = False
    help: str = ""


AGE_RANGES = ("under 18", "18–24", "25–34", "35–44", "45–54", "55–64", "65 or older", "prefer not to say")
EXPERTISE = ("naive", "experienced", "expert", "prefer not to say")
STANDARD_QUESTIONS = (
    Question("age_range", "Your age", QuestionType.CHOICE, AGE_RANGES, required=True),
    Question("expertise", "Your listening expertise", QuestionType.CHOICE, EXPERTISE, required=True,
             help="naive: no experience of listening tests or critical listening; experienced: has taken part in "
                  "listening tests or listens critically to audio often; expert: trained in critical listening "
                  "(audio engineer, codec developer, trained assessor)"),
    Question("headphone_model", "Your headphones (make and model)", QuestionType.TEXT),
    Question("comments", "Comments on the test (optional)", QuestionType.TEXT),
)
STANDARD_IDS = frozenset(q.id for q in STANDARD_QUESTIONS)
LISTED_TEXT = frozenset({"headphone_model"})  # text answers the report lists with counts (others: only counted)


def all_questions(custom: Iterable[Question] = ()) -> tuple[Question, ...]:
    """The standard questions, then the researcher's."""
    return (*STANDARD_QUESTIONS, *custom)


# --- the researcher's questions ----------------------------------------------------------------------------------

def _field(where: str, name: str, expected: str, got) -> ListenError:
    hint = " (quote it: YAML reads yes/no/on/off as true/false)" if isinstance(got, bool) else ""
    return ListenError(f"{where}.{name}: expected {expected}, got {got!r}{hint}")


def _text(raw: dict, where: str, name: str, required: bool) -> str:
    value = raw.get(name)
    if not required and value in (None, ""):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _field(where, name, "non-empty text", value)
    return value.strip()


def parse_question(raw, where: str) -> Question:
    """One question from its mapping; ``where`` names it in the error (``FILE: questions[2]``).

    Raises:
        ListenError: one line naming the field: unknown keys, a bad id, type, choices or required flag.
    """
    if not isinstance(raw, dict):
        raise ListenError(f"{where}: expected a mapping with {', '.join(QUESTION_KEYS[:3])}, got {raw!r}")
    unknown = sorted(str(k) for k in raw if k not in QUESTION_KEYS)
    if unknown:
        raise ListenError(f"{where}.{unknown[0]}: unknown field (fields: {', '.join(QUESTION_KEYS)})")
    qid = raw.get("id")
    if not isinstance(qid, str) or not ID_PATTERN.fullmatch(qid):
        raise _field(where, "id", "lower-case letters, digits and _ (starting with a letter, at most 40)", qid)
    if qid in STANDARD_IDS:
        raise ListenError(f"{where}.id: {qid!r} is a standard question (standard: {', '.join(sorted(STANDARD_IDS))})")
    text = _text(raw, where, "text", True)
    try:
        kind = QuestionType(raw.get("type"))
    except ValueError:
        raise _field(where, "type", "one of " + ", ".join(t.value for t in QuestionType), raw.get("type")) from None
    choices = raw.get("choices")
    if kind is QuestionType.CHOICE:
        if not isinstance(choices, list) or len(choices) < 2:
            raise _field(where, "choices", "a list of at least 2 answers", choices)
        for k, c in enumerate(choices):
            if not isinstance(c, str | int | float) or isinstance(c, bool) or not str(c).strip():
                raise _field(where, f"choices[{k}]", "non-empty text", c)
        choices = tuple(str(c).strip() for c in choices)
        if len(set(choices)) < len(choices):
            raise ListenError(f"{where}.choices: {Counter(choices).most_common(1)[0][0]!r} is listed twice")
    elif choices not in (None, []):  # a saved definition writes [] for every other type
        raise ListenError(f"{where}.choices: only a choice question has choices (type is {kind.value})")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise _field(where, "required", "true or false", required)
    return Question(qid, text, kind, choices or (), required, _text(raw, where, "help", False))


def parse_questions(raw, source: str) -> tuple[Question, ...]:
    """The researcher's questions from parsed YAML or JSON (a list, or ``{"questions": [...]}``).

    Raises:
        ListenError: ``source: questions[k].field: ...`` for the first problem, or a repeated id.
    """
    if isinstance(raw, dict) and set(raw) == {"questions"}:
        raw = raw["questions"]
    if not isinstance(raw, list):
        raise ListenError(f"{source}: expected a list of questions (or questions: [...]), got "
                          f"{type(raw).__name__}")
    questions = tuple(parse_question(q, f"{source}: questions[{k}]") for k, q in enumerate(raw))
    seen: set[str] = set()
    for k, q in enumerate(questions):
        if q.id in seen:
            raise ListenError(f"{source}: questions[{k}].id: {q.id!r} is used twice")
        seen.add(q.id)
    return questions


def load_questionnaire(path: str | Path, option: str = "--questionnaire") -> tuple[Question, ...]:
    """Read and check a questionnaire YAML file.

    Raises:
        ListenError: the file cannot be read, is not YAML, or a question is malformed (one line naming the file
            and the field).
    """
    import yaml

    where = f"{option} {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ListenError(f"{where}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ListenError(f"{where}: not UTF-8 text (YAML expected)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ListenError(f"{where}: not YAML ({getattr(exc, 'problem', None) or exc}{line})") from None
    return parse_questions(raw, where)


# --- answers -----------------------------------------------------------------------------------------------------

def check_answers(questions: Iterable[Question], answers) -> tuple[dict[str, str | float | None], list[str]]:
    """A participant's answers, checked against the questions: ``(answers by id, problems)``.

    Text is stripped (empty: no answer), numbers must be finite, a choice must be one of its choices, required
    questions need an answer and an id that is not a question is refused. The answers are ``{}`` when there is
    a problem.

    >>> q = [Question("n", "N", QuestionType.NUMBER, required=True)]
    >>> check_answers(q, {"n": 3}), check_answers(q, {"n": None})[1], check_answers(q, {"n": 1, "x": 1})[1]
    (({'n': 3.0}, []), ['N: an answer is required'], ['unknown question x'])
    """
    questions = list(questions)
    if not isinstance(answers, Mapping):
        return {}, ["this page is out of date; reload it"]
    known = {q.id for q in questions}
    problems = [f"unknown question {k}" for k in answers if k not in known]
    out: dict[str, str | float | None] = {}
    for q in questions:
        value, problem = _answer(q, answers.get(q.id))
        if problem:
            problems.append(f"{q.text}: {problem}")
        elif value is None and q.required:
            problems.append(f"{q.text}: an answer is required")
        out[q.id] = value
    return ({}, problems) if problems else (out, [])


def _answer(q: Question, value) -> tuple[str | float | None, str | None]:
    if value is None:
        return None, None
    if q.type is QuestionType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None, f"expected a number, got {value!r}"
        return float(value), None
    if not isinstance(value, str):
        return None, f"expected text, got {type(value).__name__}"
    value = value.strip()
    if q.type is QuestionType.CHOICE:
        if value not in q.choices:
            return None, f"{value!r} is not one of its answers"
        return value, None
    if len(value) > MAX_TEXT_CHARS:
        return None, f"at most {MAX_TEXT_CHARS} characters, got {len(value)}"
    return value or None, None


# --- the panel description ---------------------------------------------------------------------------------------

def summarise(questions: Iterable[Question], answers: Mapping[str, Mapping], assessors: Iterable[str]) -> dict:
    """The panel description over ``assessors`` (answers: assessor → answers by question id): ``{"assessors",
    "answered", "questions": [{id, text, type, answered, ...}]}``; a choice question has ``counts`` [(answer, n)]
    in the order of its choices with ``no answer`` last, a number ``median``, ``min`` and ``max``, a listed text
    question (the headphone model) ``counts`` of its answers as typed (grouped ignoring case and spaces), any other
    text question only ``answered``.

    >>> q = [Question("c", "C", QuestionType.CHOICE, ("x", "y"))]
    >>> summarise(q, {"L1": {"c": "y"}}, ["L1", "L2"])["questions"][0]["counts"]
    [('x', 0), ('y', 1), ('no answer', 1)]
    """
    assessors = sorted(set(assessors))
    given = {a: answers[a] for a in assessors if a in answers}
    rows = []
    for q in questions:
        values = [given[a].get(q.id) for a in assessors if a in given]
        values = [v for v in values if v is not None]
        row = {"id": q.id, "text": q.text, "type": q.type.value, "answered": len(values)}
        if q.type is QuestionType.CHOICE:
            found = Counter(values)
            row["counts"] = [(c, found.get(c, 0)) for c in q.choices] + [(NO_ANSWER, len(assessors) - len(values))]
        elif q.type is QuestionType.NUMBER:
            row |= {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else \
                {"median": None, "min": None, "max": None}
        elif q.id in LISTED_TEXT:
            groups: dict[str, list[str]] = {}
            for v in values:
                groups.setdefault(" ".join(str(v).lower().split()), []).append(str(v))
            row["counts"] = sorted(((Counter(vs).most_common(1)[0][0], len(vs)) for vs in groups.values()),
                                   key=lambda c: (-c[1], c[0].lower()))
        rows.append(row)
    return {"assessors": len(assessors), "answered": len(given), "questions": rows}


def answer_table(questions: Iterable[Question], answers: Mapping[str, Mapping]) -> tuple[list[str], list[list]]:
    """Header and rows of every participant's answers (one row per assessor, one column per question id), the
    questionnaire's export."""
    ids = [q.id for q in questions]
    return ["assessor", *ids], [[a, *(answers[a].get(i) for i in ids)] for a in sorted(answers)]


def answers_csv(questions: Iterable[Question], answers: Mapping[str, Mapping]) -> str:
    """:func:`answer_table` as CSV text (an unanswered question: an empty cell)."""
    import csv
    import io

    header, rows = answer_table(questions, answers)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else f"{v:g}" if isinstance(v, float) else v for v in r] for r in rows])
    return out.getvalue()
