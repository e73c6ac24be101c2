"""``evalkit listen serve``: run the Streamlit app for one test folder, and stop it with this command.

Streamlit serves ``<app folder>/static/*`` at ``/app/static/*`` when static serving is on, so a two-line launcher
is written into the test folder next to ``static/``, which holds only the per-participant trial bundles (built by
the app; those of an earlier run are deleted at start). Nothing else in the folder is served: the stimuli, the
definition and the SQLite store stay on the server. The admin token and the completion code reach the app through
the environment, never a command line (``ps`` shows command lines to every user of the machine).

Lifecycle: Streamlit runs in a process group of its own with a parent-death signal (Linux ``prctl``), so SIGINT or
SIGTERM of this command stops it (SIGTERM to the group, SIGKILL after 1 s; Streamlit itself cancels downloads still
in flight after 0.5 s) and SIGKILL of this command kills it at once: the port is free again and no server is left
accepting answers. A trial's answers are stored in one SQLite transaction, so a kill loses nothing stored.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

from evalkit.listening.model import APP_FILE, STATIC_DIR, ListenError, load_definition
from evalkit.listening.storage.slots import SLOT_IDLE_MINUTES
from evalkit.listening.web import bundle

ADMIN_ENV = "EVALKIT_LISTEN_ADMIN_TOKEN"  # what the app reads (set by serve for its child)
USER_ADMIN_ENV = "EVALKIT_ADMIN_TOKEN"  # where the researcher may put the token instead of --admin-token
COMPLETION_ENV = "EVALKIT_LISTEN_COMPLETION_CODE"
PREFETCH_ENV = "EVALKIT_LISTEN_PREFETCH"
SLOT_IDLE_ENV = "EVALKIT_LISTEN_SLOT_IDLE_MINUTES"
STOP_GRACE_S = 1.0  # Streamlit's own shutdown is bounded at 0.5 s (streamlit_boot); SQLite needs no grace
PR_SET_PDEATHSIG = 1
LAUNCHER = """# Written by `evalkit listen serve`: the listening-test app for this folder (stimuli under static/).
from pathlib import Path

from evalkit.listening.web.app import main

main(Path(__file__).resolve().parent)
"""
BASE_PATH = re.compile(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*")


def write_launcher(test_dir: Path) -> Path:
    path = test_dir / APP_FILE
    if not path.is_file() or path.read_text() != LAUNCHER:
        path.write_text(LAUNCHER)
    return path


def streamlit_command(test_dir: Path, host: str, port: int, base_url_path: str = "") -> list[str]:
    """The command line of the Streamlit process (static serving on, no file watcher, no telemetry, no error
    details or server paths sent to browsers)."""
    return [sys.executable, "-m", "evalkit.listening.web.streamlit_boot", str(test_dir / APP_FILE),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.enableStaticServing", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--server.baseUrlPath", base_url_path,
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal", "--client.showErrorDetails", "none"]


def _die_with_parent(parent_pid: int):
    """A ``preexec_fn``: the child gets SIGKILL when the process that started it dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
    return setup


class _Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise _Stop(signum)


def stop_group(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the child's process group, SIGKILL if it is still there after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)
    with contextlib.suppress(ProcessLookupError):  # anything else the group started
        os.killpg(proc.pid, signal.SIGKILL)


def run_streamlit(argv: list[str], env: dict[str, str]) -> int:
    """Run the Streamlit process until it exits or this process gets SIGINT, SIGTERM or SIGHUP."""
    proc = subprocess.Popen(argv, env=env, process_group=0, preexec_fn=_die_with_parent(os.getpid()))
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        stop_group(proc)
        for s, handler in previous.items():
            signal.signal(s, handler)


def check_port_free(host: str, port: int) -> None:
    """Raises ListenError when ``host:port`` cannot be bound (another server, often a `listen serve`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ListenError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); is another "
                              "server running there?") from None


def serve(test_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8501, admin_token: str | None = None,
          base_url_path: str = "", completion_code: str | None = None, prefetch: bool = True,
          slot_idle_minutes: float = SLOT_IDLE_MINUTES, quiet: bool = False) -> int:
    """Validate the test folder, print the participant and admin URLs and run Streamlit until stopped.

    ``admin_token`` None: ``$EVALKIT_ADMIN_TOKEN`` if set, else a random token (printed). ``slot_idle_minutes``:
    an unfinished participant idle for longer gives its design slot back (:mod:`evalkit.listening.storage.slots`).

    Raises:
        ListenError: a missing or invalid test folder, a short token, a bad base path or a busy port (checked
            before anything starts).
    """
    test_dir = Path(test_dir).resolve()
    load_definition(test_dir)  # every stimulus present and consistent, or one clear error
    from_env = admin_token is None and bool(os.environ.get(USER_ADMIN_ENV))
    token = admin_token or os.environ.get(USER_ADMIN_ENV) or secrets.token_urlsafe(16)
    if len(token) < 8:
        raise ListenError(f"{'$' + USER_ADMIN_ENV if from_env else '--admin-token'}: use at least 8 characters")
    base = base_url_path.strip("/")
    if base and not BASE_PATH.fullmatch(base):
        raise ListenError(f"--base-url-path {base_url_path!r}: use letters, digits, '.', '_', '~', '-' and '/'")
    if completion_code is not None and not completion_code.strip():
        raise ListenError("--completion-code: empty")
    if not (math.isfinite(slot_idle_minutes) and slot_idle_minutes > 0):
        raise ListenError(f"--slot-idle-minutes {slot_idle_minutes:g}: expected a positive number of minutes")
    check_port_free(host, port)
    write_launcher(test_dir)
    (test_dir / STATIC_DIR).mkdir(exist_ok=True)
    bundle.clear(test_dir / STATIC_DIR)  # bundles of an earlier run are rebuilt on demand
    if not quiet:
        url = f"http://{host}:{port}/" + (f"{base}/" if base else "")
        print(f"participants: {url}")
        print(f"admin:        {url}?admin=" + (f"${USER_ADMIN_ENV}" if from_env else token))
        if host not in ("127.0.0.1", "localhost", "::1"):
            print("warning: listening on a non-loopback address without TLS: put a TLS reverse proxy in front "
                  "(README: serving remote participants)")
    env = {k: v for k, v in os.environ.items() if k != USER_ADMIN_ENV}
    env[ADMIN_ENV] = token
    env[PREFETCH_ENV] = "1" if prefetch else "0"
    env[SLOT_IDLE_ENV] = repr(float(slot_idle_minutes))
    env.pop(COMPLETION_ENV, None)
    if completion_code is not None:
        env[COMPLETION_ENV] = completion_code.strip()
    return run_streamlit(streamlit_command(test_dir, host, port, base), env)
