"""Console vs file logging: library chatter never reaches the console unless -v."""

import logging
import os
import warnings

from evalkit import logs


def test_console_shows_evalkit_warnings_only_unless_verbose(capsys, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a fresh process (pytest adds its own)
    try:
        logs.configure_console(verbose=False)
        logging.getLogger("evalkit.runner").warning("evalkit's own warning")
        logging.getLogger("somelib").warning("a library's warning")
        warnings.warn("deprecated thing", FutureWarning, stacklevel=1)
        err = capsys.readouterr().err
        assert "evalkit's own warning" in err and "library" not in err and "deprecated" not in err
        logs.configure_console(verbose=True)
        logging.getLogger("somelib").debug("a library's debug line")
        assert "a library's debug line" in capsys.readouterr().err
    finally:
        logging.captureWarnings(False)
        logging.getLogger().setLevel(logging.WARNING)


def test_log_to_file_takes_third_party_records_and_replaces_earlier_files(tmp_path):
    root = logging.getLogger()
    try:
        logs.log_to_file(tmp_path / "a.log")
        logging.getLogger("somelib").info("first")
        logs.log_to_file(tmp_path / "b.log")
        logging.getLogger("somelib").info("second")
        assert "first" in (tmp_path / "a.log").read_text() and "second" not in (tmp_path / "a.log").read_text()
        assert "somelib: second" in (tmp_path / "b.log").read_text()
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_evalkit_role", None) == "file"]:
            root.removeHandler(handler)
            handler.close()


def test_captured_stderr_turns_c_level_output_into_records(caplog):
    with caplog.at_level(logging.INFO, logger="evalkit.test"), logs.captured_stderr(logging.getLogger("evalkit.test")):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert [r.getMessage() for r in caplog.records] == ["INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]


def test_console_leaves_a_host_configured_root_logger_alone(monkeypatch):
    host = logging.NullHandler()
    monkeypatch.setattr(logging.getLogger(), "handlers", [host])
    logs.configure_console(verbose=True)
    assert logging.getLogger().handlers == [host]
