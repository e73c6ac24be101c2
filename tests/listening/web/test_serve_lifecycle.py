"""`evalkit listen serve` as a real process: SIGINT, SIGTERM and SIGKILL stop Streamlit and serve within 3 s and free
the port, also while a participant's download is in flight; the admin token comes from the environment; bad serve
options are one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.listening.web import serve as serve_module
from tests.listening.conftest import free_port

STOP_LIMIT_S = 3.0
SRC = str(Path(__file__).resolve().parents[3] / "src")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_serve(folder: Path, port: int) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               EVALKIT_ADMIN_TOKEN="lifecycle-admin-token")
    proc = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "listen", "serve", str(folder), "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # the test's signal goes to serve alone, as from systemd
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode(errors="replace")[-2000:])
    else:
        proc.kill()
        raise AssertionError("listen serve did not start")
    (child,) = _children(proc.pid)
    return proc, child


def _stalled_download(folder: Path, port: int) -> socket.socket:
    """A participant on a slow link: a 20 MB file requested and not read, so its response stays in flight."""
    (folder / "static" / ("f" * 32 + ".wav")).write_bytes(os.urandom(20_000_000))
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sendall(f"GET /app/static/{'f' * 32}.wav HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    client.recv(1024)  # the response has started
    return client


@pytest.mark.parametrize(("sig", "downloading"), [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                  (signal.SIGKILL, False), (signal.SIGTERM, True)])
def test_signal_to_serve_stops_streamlit_and_frees_the_port(mushra_dir, fresh_copy, sig, downloading):
    folder = fresh_copy(mushra_dir)
    port = free_port()
    proc, child = _start_serve(folder, port)
    client = _stalled_download(folder, port) if downloading else None
    try:
        assert _port_open(port) and _alive(child)
        os.kill(proc.pid, sig)
        t0 = time.monotonic()
        while time.monotonic() - t0 < STOP_LIMIT_S and (_alive(child) or _port_open(port) or proc.poll() is None):
            time.sleep(0.05)
        assert not _alive(child), f"streamlit still running {STOP_LIMIT_S} s after {sig.name} to serve"
        assert not _port_open(port)
        assert proc.poll() is not None, f"serve still running {STOP_LIMIT_S} s after {sig.name}"
        out = proc.stdout.read().decode(errors="replace")
        assert "lifecycle-admin-token" not in out  # a token from the environment is not printed
        assert "?admin=$EVALKIT_ADMIN_TOKEN" in out
    finally:
        if client is not None:
            client.close()
        for pid in (proc.pid, child):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_streamlit_bounds_its_graceful_shutdown():
    from streamlit.web.server.starlette import starlette_server

    from evalkit.listening.web.streamlit_boot import SHUTDOWN_S, bound_shutdown

    bound_shutdown()
    bound_shutdown()  # once only
    kwargs = starlette_server._get_uvicorn_config_kwargs()
    assert kwargs["timeout_graceful_shutdown"] == SHUTDOWN_S < serve_module.STOP_GRACE_S < STOP_LIMIT_S


def test_admin_token_from_environment_and_serve_options(mushra_dir, fresh_copy, monkeypatch, capsys):
    folder = fresh_copy(mushra_dir)
    calls = []
    monkeypatch.setattr(serve_module, "run_streamlit", lambda argv, env: calls.append((argv, env)) or 0)
    monkeypatch.setenv("EVALKIT_ADMIN_TOKEN", "token-from-the-env")
    assert main(["listen", "serve", str(folder), "--base-url-path", "/study/", "--completion-code", "C0DE",
                 "--no-prefetch", "--port", str(free_port())]) == 0
    ((argv, env),) = calls
    assert env["EVALKIT_LISTEN_ADMIN_TOKEN"] == "token-from-the-env" and "EVALKIT_ADMIN_TOKEN" not in env
    assert env["EVALKIT_LISTEN_COMPLETION_CODE"] == "C0DE" and env["EVALKIT_LISTEN_PREFETCH"] == "0"
    assert "token-from-the-env" not in " ".join(argv) and "C0DE" not in " ".join(argv)
    assert argv[argv.index("--server.baseUrlPath") + 1] == "study"
    assert argv[argv.index("--client.showErrorDetails") + 1] == "none"
    out = capsys.readouterr().out
    assert "/study/" in out and "token-from-the-env" not in out
    monkeypatch.setenv("EVALKIT_ADMIN_TOKEN", "short")
    assert main(["listen", "serve", str(folder)]) == 2
    assert "$EVALKIT_ADMIN_TOKEN: use at least 8 characters" in capsys.readouterr().err


def test_serve_refuses_a_busy_port_and_a_bad_base_path(mushra_dir, fresh_copy, capsys):
    folder = fresh_copy(mushra_dir)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["listen", "serve", str(folder), "--port", str(port)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err and "\n" not in err
    assert main(["listen", "serve", str(folder), "--base-url-path", "a b"]) == 2
    assert "--base-url-path 'a b'" in capsys.readouterr().err
