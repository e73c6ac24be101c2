"""`evalkit listen prepare|serve|analyze`: the command line, the --json contract and bad input (exit 2)."""

from __future__ import annotations

import json

import pytest

from evalkit.cli import main
from evalkit.listening.analysis.ratings_csv import export_csv
from evalkit.listening.model import STORE_FILE, load_definition
from evalkit.listening.storage import ListeningStore
from tests.listening.storage.test_storage import _events


def _csv(path, rows, header="assessor,item,condition,score"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def _panel_rows():
    rows = []
    for a, base in (("a1", 60), ("a2", 70), ("a3", 80)):
        for i in range(4):
            rows += [(a, f"i{i}", "reference", 100), (a, f"i{i}", "anchor70", 50), (a, f"i{i}", "anchor35", 20),
                     (a, f"i{i}", "codec", base)]
    rows += [("x", f"i{i}", "reference", 70) for i in range(4)]  # 4 of 4 below 90: excluded
    rows += [("x", f"i{i}", c, 50) for i in range(4) for c in ("anchor70", "anchor35", "codec")]
    return rows


def test_analyze_ratings_json_contract(tmp_path, capsys):
    path = _csv(tmp_path / "r.csv", _panel_rows())
    assert main(["listen", "analyze", "--ratings", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["conditions"]) == {"reference", "anchor70", "anchor35", "codec"}
    for summary in out["conditions"].values():
        assert set(summary) == {"mean", "ci_low", "ci_high", "n", "median", "iqr"}
    assert out["conditions"]["codec"]["mean"] == pytest.approx(70.0)
    assert out["conditions"]["codec"]["n"] == 3
    assert out["excluded"] == [{"assessor": "x", "reason": "hidden reference rated below 90 for 4 of 4 items (100%)"}]
    assert {(c["a"], c["b"]) for c in out["comparisons"]} >= {("anchor35", "codec"), ("codec", "reference")}
    assert {"a", "b", "n", "mean_difference", "test", "p", "p_holm"} <= set(out["comparisons"][0])
    # reference minus anchor: all equal differences: still a number, no NaN
    assert main(["listen", "analyze", "--ratings", str(path)]) == 0
    text = capsys.readouterr().out
    assert "MUSHRA: 3 assessors" in text and "x: hidden reference rated below 90" in text
    assert "  i0: " in text  # the per-item table


@pytest.mark.parametrize(("header", "rows", "message"), [
    ("assessor,item,condition,score,extra", [("a", "i", "c", 50, 1)], "unknown: extra"),
    ("assessor,item,score", [("a", "i", 50)], "missing: condition"),
    ("assessor,item,condition,score", [("a", "i", "c", 150)], "line 2: score 150 is outside 0..100"),
    ("assessor,item,condition,score", [("a", "i", "c", -1)], "line 2: score -1 is outside 0..100"),
    ("assessor,item,condition,score", [("a", "i", "c", "good")], "line 2: score 'good' is not a number"),
    ("assessor,item,condition,score", [("a", "i", "c", 5), ("a", "i", "c", 6)], "rated item i / c twice"),
    ("assessor,item,condition,score", [], "no ratings"),
])
def test_bad_ratings_file_is_one_line_exit_2(tmp_path, capsys, header, rows, message):
    path = _csv(tmp_path / "bad.csv", rows, header)
    assert main(["listen", "analyze", "--ratings", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert message in err and str(path) in err


def test_prepare_and_analyze_a_test_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["listen", "prepare", "--run", str(run_dir), "--design", "mushra", "--items", "2",
                 "--listeners", "2", "--out", str(out)]) == 0
    assert "mushra test, 2 items" in capsys.readouterr().out
    assert main(["listen", "analyze", str(out), "--json"]) == 2
    assert "no ratings yet" in capsys.readouterr().err
    definition = load_definition(out)
    with ListeningStore(out / STORE_FILE) as store:
        for k in range(3):
            p = store.create_participant(definition)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                scores = {sid: 100.0 if definition.stimuli[sid].condition == "reference" else 30.0 + 10 * k
                          for sid in trial.stimuli}
                store.submit(definition, p, index, scores=scores, events=_events(trial))
    assert main(["listen", "analyze", str(out), "--json", "--test", "permutation"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the admin export is the --ratings format: analysing it gives the same result
    with ListeningStore(out / STORE_FILE) as store:
        (tmp_path / "export.csv").write_text(export_csv(store.export_rows(definition)))
    assert main(["listen", "analyze", "--ratings", str(tmp_path / "export.csv"), "--json", "--test",
                 "permutation"]) == 0
    assert json.loads(capsys.readouterr().out) == report | {"behaviour": None}  # a CSV has no listening times
    assert report["conditions"]["reference"]["mean"] == 100.0
    assert report["conditions"]["anchor35"]["mean"] == pytest.approx(40.0)  # assessor means 30, 40, 50
    assert report["comparisons"][0]["test"] == "permutation"


def test_prepare_ab_and_abx_from_the_cli(run_dir, tmp_path, capsys):
    for design in ("ab", "abx"):
        out = tmp_path / design
        assert main(["listen", "prepare", "--run", str(run_dir), "--design", design, "--items", "1",
                     "--out", str(out)]) == 0
        definition = load_definition(out)
        with ListeningStore(out / STORE_FILE) as store:
            p = store.create_participant(definition)
            trial = definition.trials_for(p.slot)[0]
            store.submit(definition, p, 0, answer="A", events=_events(trial))
        capsys.readouterr()
        assert main(["listen", "analyze", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["design"] == design
        (pair,) = report["pairs"]
        assert pair["n"] == 1 and pair["prefer_a"] + pair["prefer_b"] == 1
        assert {"a", "b", "n", "prefer_a", "prefer_b", "no_preference", "share", "ci_low", "ci_high", "p",
                "per_listener"} <= set(pair)


def test_bad_cli_input(run_dir, tmp_path, capsys):
    cases = [
        (["listen", "prepare", "--run", str(tmp_path), "--design", "mushra", "--out", str(tmp_path / "o")],
         "no run store"),
        (["listen", "serve", str(tmp_path)], "no test definition"),
        (["listen", "analyze"], "give either TEST_DIR or --ratings"),
        (["listen", "analyze", str(tmp_path), "--ratings", "x.csv"], "give either TEST_DIR or --ratings"),
        (["listen", "analyze", "--ratings", str(tmp_path / "missing.csv")], "ratings file not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_serve_refuses_a_short_admin_token(mushra_dir, capsys):
    assert main(["listen", "serve", str(mushra_dir), "--admin-token", "short"]) == 2
    assert "--admin-token: use at least 8 characters" in capsys.readouterr().err


def test_serve_binds_loopback_and_keeps_the_admin_token_off_the_command_line(mushra_dir, fresh_copy, monkeypatch,
                                                                             capsys):
    from evalkit.listening.web import serve as serve_module
    from tests.listening.conftest import free_port

    folder = fresh_copy(mushra_dir)
    calls = []
    monkeypatch.setattr(serve_module, "run_streamlit", lambda argv, env: calls.append((argv, env)) or 0)
    monkeypatch.delenv("EVALKIT_ADMIN_TOKEN", raising=False)
    port = free_port()
    assert main(["listen", "serve", str(folder), "--admin-token", "secret-admin-token", "--port", str(port)]) == 0
    ((argv, env),) = calls
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.enableStaticServing") + 1] == "true"
    assert "secret-admin-token" not in " ".join(argv)
    assert env["EVALKIT_LISTEN_ADMIN_TOKEN"] == "secret-admin-token"
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}/" in out and "?admin=secret-admin-token" in out
    assert (folder / "listening_app.py").is_file()
    calls.clear()
    assert main(["listen", "serve", str(folder), "--port", str(port)]) == 0  # no token: a random one, printed
    token = calls[0][1]["EVALKIT_LISTEN_ADMIN_TOKEN"]
    assert len(token) >= 20 and token in capsys.readouterr().out
