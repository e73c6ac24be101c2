"""Units written in one batch: one transaction (all or nothing), and the bulk reads planning uses."""

from __future__ import annotations

import sqlite3

import pytest

from evalkit.runner.store import ResultRow, Store, UnitRow, UnitStatus


def _unit(key: str) -> UnitRow:
    return UnitRow(key, "a.wav", "/d/a.wav", "", "h", "lowpass?cutoff_hz=3500", "lowpass", UnitStatus.OK)


def _result(key: str, unit_key: str | None) -> ResultRow:
    return ResultRow(key, unit_key, "a.wav", "lowpass?cutoff_hz=3500", "si_sdr", 12.5, "dB", None, "3", "evalkit",
                     "1", None, 0.01)


def test_a_batch_is_one_transaction(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.write_units([(_unit("u1"), [_result("r1", "u1")], None), (_unit("u2"), [_result("r2", "u2")], None)])
        with pytest.raises(sqlite3.IntegrityError):  # the second unit's row breaks NOT NULL: the first is not kept
            store.write_units([(_unit("u3"), [_result("r3", "u3")], None), (_unit("u4"), [_result("r4", None)], None)])
        assert set(store.units()) == {"u1", "u2"}
        assert store.all_done_results() == {"u1": {"r1"}, "u2": {"r2"}}
        assert store.units()["u1"]["status"] == "ok" and store.done_results("u2") == {"r2"}
