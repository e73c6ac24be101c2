"""Names from the user's data are printed escaped (terminal escape sequences, CR, BEL, newlines...) and kept as
they are in the store; misspelled names get the nearest valid one."""

import logging

import numpy as np
import pytest
import soundfile as sf
import yaml

from evalkit import logs
from evalkit.cli import main
from evalkit.messages import nearest, shown, shown_lines
from evalkit.runner import ConfigError

NASTY = "take\x1b[2J\x1b]0;owned\x07\rFORGED line\n.wav"


@pytest.mark.parametrize("raw,printed", [
    ("plain ünïcode — ok.flac", "plain ünïcode — ok.flac"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("bell\x07", "bell\\x07"),
    ("a\rb\nc\td", "a\\rb\\nc\\td"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
    ("c1 csi\x9b2J", "c1 csi\\x9b2J"),
    ("evil\u202egnp.wav", "evil\\u202egnp.wav"),  # right-to-left override
    ("line\u2028sep", "line\\u2028sep"),
])
def test_shown_escapes_control_characters_only(raw, printed):
    assert shown(raw) == printed
    assert shown(printed) == printed  # already printable text is unchanged


def test_shown_lines_keeps_the_line_breaks_of_a_block():
    assert shown_lines("a\x1b\nb") == "a\\x1b\nb"


def test_nearest():
    assert nearest("metircs", ["metrics", "output"]) == "metrics"
    assert nearest("zzz", ["metrics", "output"]) is None


def test_config_error_message_is_escaped_and_its_problems_kept():
    exc = ConfigError("run.yaml", [f"dataset.manifest: {NASTY} is listed twice"])
    assert "\x1b" not in str(exc) and "\n" not in str(exc) and "\\x1b[2J" in str(exc)
    assert exc.problems == [f"dataset.manifest: {NASTY} is listed twice"]
    several = ConfigError("run.yaml", ["a\x07", "b\nc"])
    assert str(several).splitlines() == ["run.yaml: 2 problems:", "  - a\\x07", "  - b\\nc"]


def test_the_cli_error_line_shows_a_file_name_escaped(tmp_path, capsys):
    missing = tmp_path / NASTY
    assert main(["score", str(missing), str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\x07" not in err and "\r" not in err
    assert err == f"evalkit: error: {shown(missing)}: file not found\n"


def test_a_run_prints_failure_lines_escaped_and_stores_the_real_name(tmp_path, capsys, monkeypatch):
    small_dataset = tmp_path / "data"
    small_dataset.mkdir()
    (small_dataset / NASTY).write_bytes(b"RIFF....WAVEjunk")  # a corrupt item: its failure line names it
    sf.write(small_dataset / "ok\x1b[1m.wav", 0.1 * np.random.default_rng(0).standard_normal(4800), 16000)
    raw = {"dataset": {"folder": str(small_dataset), "glob": "*"}, "codecs": [{"spec": "lowpass?cutoff_hz=3500"}],
           "metrics": ["si_sdr"], "output": str(tmp_path / "out"), "workers": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a fresh process (pytest adds its own)
    try:
        assert main(["run", str(tmp_path / "run.yaml")]) == 0
    finally:
        logging.captureWarnings(False)
        logging.getLogger().setLevel(logging.WARNING)
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "_evalkit_role", None) == "file"]:
            handler.close()
    captured = capsys.readouterr()
    printed = [line.strip() for line in captured.err.replace("\r", "\n").splitlines()]  # the bar redraws by CR
    failure = [line for line in printed if "failed:" in line]
    assert failure == [f"WARNING evalkit.runner.run: {shown(NASTY)} x lowpass?cutoff_hz=3500 failed: "
                       f"{shown(small_dataset / NASTY)}: cannot decode audio (Error in WAV file. No 'data' chunk "
                       f"marker.)"]
    assert "\x1b[2J" not in captured.err and "\x07" not in captured.err and "\x1b[1m" not in captured.err
    assert not any(line.startswith("FORGED") for line in printed + captured.out.splitlines())
    assert "\\x1b[2J" in (tmp_path / "out" / "run.log").read_text()  # the log file too
    import sqlite3

    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        ids = {r[0] for r in db.execute("SELECT item_id FROM units")}
    assert {NASTY, "ok\x1b[1m.wav"} <= ids  # the store keeps the real names


def test_log_formatter_escapes_the_message_but_keeps_a_traceback(caplog):
    formatter = logs.ShownFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("evalkit.x", logging.ERROR, __file__, 1, "item %s", (NASTY,), True)
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    first, *rest = text.split("\n")
    assert first == f"item {shown(NASTY)}" and rest[0] == "Traceback (most recent call last):"
