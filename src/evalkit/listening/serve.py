"""``evalkit listen serve``: start the Streamlit app for one test folder.

Streamlit serves ``<app folder>/static/*`` at ``/app/static/*`` when static serving is on, so a two-line launcher
is written into the test folder next to ``static/`` (the stimuli). Nothing else in the folder is served: the
definition and the SQLite store stay on the server. The admin token reaches the app through the environment,
never the command line of the child process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from evalkit.listening.model import APP_FILE, ListenError, load_definition

ADMIN_ENV = "EVALKIT_LISTEN_ADMIN_TOKEN"
LAUNCHER = """# Written by `evalkit listen serve`: the listening-test app for this folder (stimuli under static/).
from pathlib import Path

from evalkit.listening.app import main

main(Path(__file__).resolve().parent)
"""


def write_launcher(test_dir: Path) -> Path:
    path = test_dir / APP_FILE
    if not path.is_file() or path.read_text() != LAUNCHER:
        path.write_text(LAUNCHER)
    return path


def streamlit_command(test_dir: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line for a test folder (static serving on, no file watcher, no telemetry)."""
    return [sys.executable, "-m", "streamlit", "run", str(test_dir / APP_FILE),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.enableStaticServing", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false", "--client.toolbarMode", "minimal"]


def serve(test_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8501, admin_token: str | None = None,
          quiet: bool = False) -> int:
    """Validate the test folder, print the participant and admin URLs and run Streamlit until interrupted.

    Raises:
        ListenError: a missing or invalid test folder (checked before anything starts).
    """
    test_dir = Path(test_dir).resolve()
    load_definition(test_dir)  # every stimulus present and consistent, or one clear error
    if admin_token is not None and len(admin_token) < 8:
        raise ListenError("--admin-token: use at least 8 characters")
    token = admin_token or secrets.token_urlsafe(16)
    write_launcher(test_dir)
    if not quiet:
        print(f"participants: http://{host}:{port}/")
        print(f"admin:        http://{host}:{port}/?admin={token}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            print("warning: listening on a non-loopback address: anyone who can reach it can take part")
    env = dict(os.environ, **{ADMIN_ENV: token})
    try:
        return subprocess.call(streamlit_command(test_dir, host, port), env=env)
    except KeyboardInterrupt:
        return 0
