"""Where log lines and library chatter go: evalkit's warnings to the console, everything else to ``run.log``.

Libraries print things a user did not ask for: torch's ``FutureWarning``s, TFLite's "Created TensorFlow Lite
XNNPACK delegate" line (written by C++ straight to file descriptor 2). On the console they would print over
the progress bar and into ``--json`` output. Here Python warnings become log records (``py.warnings``),
C-level stderr around noisy calls is captured into records (:func:`captured_stderr`), and the console shows
only evalkit's own warnings (above the progress bar, not through it) unless ``-v`` is given; ``evalkit run``
writes every record to ``run.log``.
Only entry points call :func:`configure_console`, :func:`log_to_file` and :func:`route_process_output`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"


class ShownFormatter(logging.Formatter):
    """Writes each record's message with control characters escaped (:func:`evalkit.messages.shown`): a file
    name holding an escape sequence or a newline cannot rewrite the terminal or forge a line. A traceback
    after the message keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        from evalkit.messages import shown

        return shown(super().formatMessage(record))


class _ConsoleHandler(logging.StreamHandler):
    """Writes through ``tqdm.write``, which clears a progress bar first and redraws it after the line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except (OSError, ValueError):  # closed stream at exit
            self.handleError(record)


def _is_evalkit(record: logging.LogRecord) -> bool:
    return record.name == "evalkit" or record.name.startswith("evalkit.")


def _install(handler: logging.Handler, role: str) -> None:
    """Add ``handler`` to the root logger in place of an earlier one of the same role (calls may repeat)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_evalkit_role", None) == role]:
        root.removeHandler(old)
        old.close()
    handler._evalkit_role = role  # type: ignore[attr-defined]
    root.addHandler(handler)


def configure_console(verbose: bool = False) -> None:
    """Console logging for a command: evalkit's warnings only, or every record at DEBUG with ``verbose``.

    Like :func:`logging.basicConfig`, it leaves a root logger that its host (an application embedding
    evalkit's CLI, a test runner) has already given handlers alone.
    """
    root = logging.getLogger()
    if any(getattr(h, "_evalkit_role", None) is None for h in root.handlers):
        return
    logging.captureWarnings(True)
    handler = _ConsoleHandler(sys.stderr)
    handler.setFormatter(ShownFormatter(CONSOLE_FORMAT))
    if verbose:
        handler.setLevel(logging.DEBUG)
        root.setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.WARNING)
        handler.addFilter(_is_evalkit)
        root.setLevel(logging.INFO)
    _install(handler, "console")


def log_to_file(path: str | Path) -> logging.Handler:
    """Append every record at INFO and above (third-party ones and Python warnings included) to ``path``
    (instead of the file an earlier call named)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(ShownFormatter(FORMAT))
    handler.setLevel(logging.INFO)
    _install(handler, "file")
    root = logging.getLogger()
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def route_process_output(log_path: str | Path | None, verbose: bool) -> None:
    """For a worker process: records and warnings to ``log_path``; unless ``verbose``, its C-level stderr too.

    With ``verbose`` the worker also logs to the console at DEBUG, like its parent.
    """
    logging.captureWarnings(True)
    if log_path is not None:
        log_to_file(log_path)
        if not verbose:
            sys.stderr.flush()
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.dup2(fd, 2)
            os.close(fd)
    if verbose:
        configure_console(verbose=True)


@contextlib.contextmanager
def captured_stderr(logger: logging.Logger, level: int = logging.INFO) -> Iterator[None]:
    """Capture what is written to file descriptor 2 (C libraries included) and log it line by line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.log(level, "%s", line)
