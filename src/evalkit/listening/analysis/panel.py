"""Which assessors a listening analysis counts, and the conditions' short labels.

By default only assessors who finished all their trials count (a CSV has no trial record, so there an assessor who rated
fewer items than the most complete one counts as unfinished); with ``exclude_headphone_fail`` also only those who passed
the headphone check. Every one left out is listed with the reason. A test folder's panel also carries the listening
behaviour (:mod:`evalkit.listening.analysis.behaviour`); with ``min_played_pct`` the trials in which a stimulus was
heard for less than that share of its length are left out, each listed with the reason.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from evalkit.listening.analysis.behaviour import Behaviour, summary
from evalkit.listening.analysis.ratings_csv import load_ratings_csv
from evalkit.listening.model import (
    DEFINITION_FILE,
    RATED_DESIGNS,
    STORE_FILE,
    Design,
    Exclusion,
    ListenError,
    load_definition,
)


@dataclass(frozen=True)
class Unfinished:
    """An assessor who did ``done`` of ``trials`` trials (a CSV: items); ``included`` with --include-incomplete."""

    assessor: str
    done: int
    trials: int
    included: bool


@dataclass(frozen=True)
class Panel:
    """Records of a test (ratings or choices) with the assessors left out before the statistics, and labels."""

    design: Design
    records: list
    excluded: list[Exclusion] = field(default_factory=list)  # left out before the statistics
    incomplete: list[Unfinished] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # condition name -> short label
    behaviour: Behaviour | None = None  # test folders: listening times, trials left out


def condition_labels(names, specs: dict[str, str] | None = None, given: dict[str, str] | None = None,
                     overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Short label per condition name: ``overrides`` (``--label``, by name or spec), then the test's own labels
    (``test.json`` ``labels``), then the short label of the condition's spec (its variant record's); kept
    unique."""
    from evalkit.runner.reader import describe_spec

    specs, given, overrides = specs or {}, given or {}, overrides or {}
    out = {}
    for name in sorted(set(names)):
        spec = specs.get(name, name)
        out[name] = overrides.get(name) or overrides.get(spec) or given.get(name) or describe_spec(spec).label
    groups: dict[str, list[str]] = defaultdict(list)
    for name, label in out.items():
        groups[label].append(name)
    for label, group in groups.items():
        if len(group) > 1:
            for name in group:
                out[name] = f"{label} [{name}]"
    return out


def csv_panel(path: str | Path, include_incomplete: bool = False, overrides: dict[str, str] | None = None) -> Panel:
    """A ratings CSV as a panel: an assessor with fewer rated items than the most complete one is unfinished."""
    ratings = load_ratings_csv(path)
    items: dict[str, set[str]] = defaultdict(set)
    for r in ratings:
        items[r.assessor].add(r.item)
    most = max(len(v) for v in items.values())
    incomplete = [Unfinished(a, len(v), most, include_incomplete) for a, v in sorted(items.items()) if len(v) < most]
    return _filtered(Design.MUSHRA, ratings, incomplete, {}, include_incomplete,
                     condition_labels({r.condition for r in ratings}, overrides=overrides), "items")


def folder_panel(test_dir: str | Path, include_incomplete: bool = False, exclude_headphone_fail: bool = False,
                   overrides: dict[str, str] | None = None, *, min_played_pct: float | None = None) -> Panel:
    """Everything stored so far in a test folder, with unfinished (and headphone-failed) assessors left out, and
    with ``min_played_pct`` the trials in which some stimulus was heard for less than that % of its length.

    Raises:
        ListenError: no definition, no ratings or answers yet, no headphone check when one is asked for, or a
            negative ``min_played_pct``.
    """
    from evalkit.listening.storage import ListeningStore

    if min_played_pct is not None and not (math.isfinite(min_played_pct) and min_played_pct >= 0):
        raise ListenError(f"--min-played {min_played_pct:g}: expected a percentage of 0 or more")

    definition = load_definition(test_dir, check_files=False)
    db = Path(test_dir) / STORE_FILE
    if not db.is_file():
        raise ListenError(f"{db}: no ratings yet (serve the test with `evalkit listen serve`)")
    with ListeningStore(db) as store:
        behaviour = summary(store.listening(definition), min_played_pct, getattr(definition, "labels", None))
        skip = {(e.assessor, e.trial) for e in behaviour.excluded_trials}
        records = _records(store, definition.design, skip)
        if not records:
            raise ListenError(f"{db}: no {'ratings' if definition.design in RATED_DESIGNS else 'answers'} yet"
                              + (f" ({len(skip)} trials left out by --min-played)" if skip else ""))
        incomplete = [Unfinished(p["assessor"], p["done"], p["trials"], include_incomplete)
                      # a released participant that continued is not counted
                      for p in store.progress(definition) if p["finished"] is None and p["done"] > 0
                      and not p.get("continued_as")]
        headphone = _headphone_results(store, definition, db) if exclude_headphone_fail else {}
    names = {r.condition for r in records} if definition.design in RATED_DESIGNS else \
        {c for r in records for c in (r.condition_a, r.condition_b)}
    given = getattr(definition, "labels", None) or _raw_labels(Path(test_dir))
    labels = condition_labels(names, dict(definition.conditions), given, overrides)
    failed = headphone_exclusions({r.assessor for r in records}, headphone) if exclude_headphone_fail else {}
    return replace(_filtered(definition.design, records, incomplete, failed, include_incomplete, labels, "trials"),
                   behaviour=behaviour)


def _records(store, design: Design, skip: Collection[tuple[str, int]] = ()) -> list:
    """What a design's analysis takes (but the trials in ``skip``): ratings, BS.1116 difference grades (signal
    minus hidden reference, per trial) or AB/ABX choices."""
    if design is Design.BS1116:
        from evalkit.listening.analysis.grades import difference_grades

        return difference_grades(store.trial_ratings(skip))
    return store.ratings(skip) if design in RATED_DESIGNS else store.choices(skip)


def _raw_labels(folder: Path) -> dict[str, str]:
    try:
        raw = json.loads((folder / DEFINITION_FILE).read_text()).get("labels") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _headphone_results(store, definition, db: Path) -> dict[str, bool]:
    read = getattr(store, "headphone_results", None)
    results = read() if callable(read) else {}
    if getattr(definition, "headphone", None) is None and not results:
        raise ListenError(f"{db.parent}: this test has no headphone check (--exclude-headphone-fail needs one)")
    return dict(results)


def headphone_exclusions(assessors, results: dict[str, bool]) -> dict[str, str]:
    """Reason per assessor who did not pass the headphone check (failed it, or has no result).

    >>> headphone_exclusions({"L001", "L002", "L003"}, {"L001": True, "L002": False})
    {'L002': 'failed the headphone check', 'L003': 'no headphone check result'}
    """
    out = {}
    for a in sorted(assessors):
        if a not in results:
            out[a] = "no headphone check result"
        elif not results[a]:
            out[a] = "failed the headphone check"
    return out


def exclude_assessors(records: list, incomplete: list[Unfinished], headphone_failed: dict[str, str],
                      include_incomplete: bool, unit: str = "trials") -> tuple[list, list[Exclusion]]:
    """Records of the assessors kept, and an :class:`Exclusion` for each one left out (unfinished unless
    ``include_incomplete``; headphone reasons as given)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    if not include_incomplete:
        for p in incomplete:
            reasons[p.assessor].append(f"unfinished: {p.done} of {p.trials} {unit}")
    for assessor, why in headphone_failed.items():
        reasons[assessor].append(why)
    kept = [r for r in records if r.assessor not in reasons]
    return kept, [Exclusion(a, "; ".join(v)) for a, v in sorted(reasons.items())]


def _filtered(design, records, incomplete, failed, include_incomplete, labels, unit) -> Panel:
    kept, excluded = exclude_assessors(records, incomplete, failed, include_incomplete, unit)
    return Panel(design, kept, excluded, incomplete, labels)


def resolve_condition(name: str, labels: dict[str, str]) -> str:
    """A condition given by name, spec or label → its name.

    Raises:
        ListenError: it matches no condition.
    """
    if name in labels:
        return name
    matches = [n for n, label in labels.items() if label == name]
    if len(matches) == 1:
        return matches[0]
    raise ListenError(f"--versus {name}: not a condition of the test (conditions: "
                      + ", ".join(f"{n} ({labels[n]})" for n in labels) + ")")


def select_panel(test_dir: str | Path | None, ratings: str | Path | None, include_incomplete: bool = False,
                 exclude_headphone_fail: bool = False, overrides: dict[str, str] | None = None, *,
                 min_played_pct: float | None = None) -> Panel:
    """The panel of ``listen analyze`` and ``listen plan``: a test folder's (:func:`folder_panel`) or a ratings
    CSV's (:func:`csv_panel`); exactly one of the two is given.

    Raises:
        ListenError: both or neither given, or ``exclude_headphone_fail`` or ``min_played_pct`` with a CSV (which
            has no headphone check and no listening times).
    """
    if (test_dir is None) == (ratings is None):
        raise ListenError("give either a test folder or --ratings FILE.csv, not both")
    if ratings is not None:
        if exclude_headphone_fail:
            raise ListenError(f"{ratings}: a ratings CSV has no headphone check (--exclude-headphone-fail needs a "
                              f"test folder)")
        if min_played_pct is not None:
            raise ListenError(f"{ratings}: a ratings CSV has no listening times (--min-played needs a test folder)")
        return csv_panel(ratings, include_incomplete, overrides)
    return folder_panel(test_dir, include_incomplete, exclude_headphone_fail, overrides,
                        min_played_pct=min_played_pct)
