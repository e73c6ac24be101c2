"""Listening-store benchmark: trial submits per second, one participant after another vs all at once.

A synthetic MUSHRA definition (12 rated stimuli per trial, 10 trials) is filled by P participants, first serially
on one thread, then by P threads submitting at the same moment (one SQLite connection each, WAL). Prints both
rates and their ratio (concurrent / serial; ≥ ~0.5 means waiting on the write lock costs little), and checks that
no rating was lost or duplicated.

Usage: .venv/bin/python benchmarks/listening_store_bench.py [--participants 24]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from evalkit.listening.model import Design, PlayEvent, Stimulus, TestDefinition, Trial
from evalkit.listening.storage import ListeningStore

N_TRIALS, N_STIMULI = 10, 12


def definition() -> TestDefinition:
    stimuli, trials = {}, []
    for t in range(N_TRIALS):
        ids = []
        for k in range(N_STIMULI):
            sid = f"s{t:02d}{k:02d}"
            stimuli[sid] = Stimulus(sid, f"item{t}", f"c{k}", 48000, 1, 480000)
            ids.append(sid)
        trials.append(Trial(f"item{t}", tuple(ids)))
    return TestDefinition(design=Design.MUSHRA, seed=0, run_dir="run", items=tuple(f"item{t}" for t in range(N_TRIALS)),
                          conditions={f"c{k}": f"c{k}" for k in range(N_STIMULI)}, stimuli=stimuli,
                          slots=(tuple(trials),))


def fill(db: Path, d: TestDefinition, start: threading.Barrier | None = None) -> None:
    with ListeningStore(db) as store:
        if start is not None:
            start.wait()
        p = store.create_participant(d)
        for index, trial in enumerate(d.trials_for(p.slot)):
            scores = {sid: float(k * 8) for k, sid in enumerate(trial.stimuli)}
            events = [PlayEvent(sid, 0.0, 2.0, 100.0 * k) for k, sid in enumerate(trial.stimuli)]
            store.submit(d, p, index, scores=scores, events=events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=24)
    n = parser.parse_args().participants
    d = definition()
    with tempfile.TemporaryDirectory() as tmp:
        serial_db, concurrent_db = Path(tmp) / "serial.sqlite", Path(tmp) / "concurrent.sqlite"
        t0 = time.perf_counter()
        for _ in range(n):
            fill(serial_db, d)
        serial_s = time.perf_counter() - t0
        ListeningStore(concurrent_db).close()
        barrier = threading.Barrier(n)
        threads = [threading.Thread(target=fill, args=(concurrent_db, d, barrier)) for _ in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        concurrent_s = time.perf_counter() - t0
        for db in (serial_db, concurrent_db):
            count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
            if count != n * N_TRIALS * N_STIMULI:
                raise SystemExit(f"{db.name}: {count} ratings, expected {n * N_TRIALS * N_STIMULI}")
    submits = n * N_TRIALS
    print(f"{n} participants x {N_TRIALS} trials x {N_STIMULI} ratings: serial {submits / serial_s:.0f} submits/s, "
          f"concurrent {submits / concurrent_s:.0f} submits/s; ratio concurrent/serial "
          f"{serial_s / concurrent_s:.2f}; no rating lost or duplicated")


if __name__ == "__main__":
    main()
