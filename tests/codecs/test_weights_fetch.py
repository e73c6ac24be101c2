"""Fetching missing pretrained weights against a local HTTP server (the official URLs are never touched)."""

from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit.codecs.weights import WEIGHTS, get_entry, torch_hub_checkpoints
from evalkit.codecs.weights_fetch import FetchStatus, fetch_missing

PAYLOAD = b"pretend checkpoint " * 4096  # 76 KiB: a few progress-bar updates, no real model
SPEC = "encodec-24khz?bandwidth=6"


class _Handler(http.server.BaseHTTPRequestHandler):
    body: bytes = PAYLOAD
    announced: int | None = None  # Content-Length sent; more than len(body) simulates a broken transfer
    status: int = 200

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Length", str(self.announced or len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a local server whose handler class is given; yields its base URL maker."""
    servers = []

    def start(body: bytes = PAYLOAD, announced: int | None = None, status: int = 200) -> str:
        handler = type("Handler", (_Handler,), {"body": body, "announced": announced, "status": status})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        server.requests = []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        start.requests = server.requests  # paths asked of the latest server
        return f"http://127.0.0.1:{server.server_address[1]}/mirror"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def published(monkeypatch):
    """Make PAYLOAD the published encodec_24khz file (full SHA-256), as if it were Meta's."""
    entry = replace(get_entry("encodec_24khz"), sha256=hashlib.sha256(PAYLOAD).hexdigest(), sha256_prefix=None)
    monkeypatch.setitem(WEIGHTS, "encodec_24khz", entry)
    return entry


def _cache_files() -> list[str]:
    folder = torch_hub_checkpoints()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_reachable_with_the_published_hash_lands_in_the_cache_with_a_progress_bar(serve, published, capsys):
    base = serve()
    results = fetch_missing([SPEC, "encodec-24khz?bandwidth=24", "lowpass?cutoff_hz=3500"], mirror=base,
                            offline=False, timeout_s=5)
    assert set(results) == {"encodec-24khz?bandwidth=6&seed=0&weights=pretrained",
                            "encodec-24khz?bandwidth=24&seed=0&weights=pretrained"}  # the low-pass needs none
    result = next(iter(results.values()))
    assert result.status is FetchStatus.FETCHED
    assert result.path == torch_hub_checkpoints() / "encodec_24khz-d7cc33bc.th"
    assert result.path.read_bytes() == PAYLOAD
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert _cache_files() == ["encodec_24khz-d7cc33bc.th"]  # no temporary file left beside it
    err = capsys.readouterr().err
    assert "encodec_24khz-d7cc33bc.th" in err and "76.0k" in err  # tqdm's byte counter (KiB) on stderr
    assert serve.requests == ["/mirror/encodec_24khz-d7cc33bc.th"]  # once for both specs of the model
    again = fetch_missing([SPEC], mirror=base, offline=False)  # present now: no second request
    assert next(iter(again.values())).status is FetchStatus.PRESENT
    assert len(serve.requests) == 1


def test_wrong_hash_is_rejected_and_not_left_in_the_cache(serve, caplog):
    base = serve(body=b"not the official file")
    with caplog.at_level(logging.WARNING):
        result = fetch_missing([SPEC], mirror=base, offline=False)[
            "encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.REJECTED and result.path is None
    assert _cache_files() == []
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("rejected encodec_24khz: checksum mismatch")
    assert "d7cc33bcf1aad7f2" in lines[0]  # the published digest it was compared with


def test_connection_refused_is_one_offline_line_and_the_other_models_on_that_host_are_not_retried(caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING):
        results = fetch_missing([SPEC, "encodec-48khz?bandwidth=6", "dac-44khz?n_codebooks=4"],
                                mirror=f"http://127.0.0.1:{port}", offline=False, timeout_s=2)
    assert {r.status for r in results.values()} == {FetchStatus.OFFLINE}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all(line.startswith("offline: skipping ") for line in lines)
    assert lines[0].startswith("offline: skipping encodec_24khz (") and "Connection refused" in lines[0]
    assert "evalkit weights fetch encodec_24khz" in lines[0] and "EVALKIT_WEIGHTS" in lines[0]
    assert "did not answer" in lines[1]  # same host: not asked again
    assert _cache_files() == []


def test_a_server_that_never_answers_times_out_as_offline(caplog):
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        with caplog.at_level(logging.WARNING):
            result = fetch_missing([SPEC], mirror=f"http://127.0.0.1:{silent.getsockname()[1]}", offline=False,
                                   timeout_s=0.3)["encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.OFFLINE
    assert "no answer within 0.3 s" in result.message
    assert [r.getMessage() for r in caplog.records] == [result.message]


def test_a_broken_transfer_leaves_no_file(serve, published):
    base = serve(announced=len(PAYLOAD) + 1000)  # the server closes before the announced length
    result = fetch_missing([SPEC], mirror=base, offline=False, timeout_s=5)[
        "encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.FAILED and result.path is None
    assert f"{len(PAYLOAD)} of {len(PAYLOAD) + 1000} bytes" in result.message or "ended early" in result.message
    assert _cache_files() == []  # neither the target nor the temporary file


def test_an_error_status_is_a_failure_with_nothing_kept(serve):
    base = serve(status=404)
    result = fetch_missing([SPEC], mirror=base, offline=False)["encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.FAILED and "404" in result.message
    assert f"{base}/encodec_24khz-d7cc33bc.th" in result.message  # the mirror serves the cache file name
    assert _cache_files() == []


def test_offline_flag_or_env_skips_without_any_request(serve, monkeypatch):
    base = serve()
    monkeypatch.setenv("EVALKIT_OFFLINE", "1")  # the test default, said here explicitly
    result = fetch_missing([SPEC], mirror=base)["encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.OFFLINE and "disabled by EVALKIT_OFFLINE" in result.message
    assert serve.requests == [] and _cache_files() == []


def test_random_and_explicit_weights_are_never_fetched(tmp_path):
    explicit = tmp_path / "mine.th"
    explicit.write_bytes(b"x")
    specs = ["encodec-24khz?weights=random", f"encodec-24khz?weights={explicit}", "qincodec?bitrate_kbps=8",
             "klt?base=qincodec-rvq&dim=16&bitrate_kbps=8"]
    assert fetch_missing(specs, offline=False, mirror="http://127.0.0.1:9") == {}


def test_dac_without_published_digest_is_kept_and_its_digest_reported(serve):
    base = serve()
    result = fetch_missing(["dac-24khz?n_codebooks=4"], mirror=base, offline=False, progress=False)[
        "dac-24khz?n_codebooks=4&seed=0&weights=pretrained"]
    assert result.status is FetchStatus.FETCHED
    assert result.path.read_bytes() == PAYLOAD
    assert hashlib.sha256(PAYLOAD).hexdigest() in result.message and "not verified" in result.message
    assert result.path.parent == Path.home() / ".cache" / "descript" / "dac"


def test_run_goes_on_offline_with_one_line_per_model(tmp_path, capsys, caplog, monkeypatch, rng):
    import numpy as np
    import soundfile as sf

    from evalkit.cli import main

    monkeypatch.delenv("EVALKIT_OFFLINE")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("EVALKIT_WEIGHTS_MIRROR", f"http://127.0.0.1:{probe.getsockname()[1]}")
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    config = tmp_path / "run.yaml"
    config.write_text("dataset: {folder: data}\ncodecs:\n  - {family: lowpass, params: {cutoff_hz: 3500}}\n"
                      "  - {family: encodec-24khz, params: {bandwidth: 6}}\nmetrics: [si_sdr]\noutput: out\n"
                      "workers: 0\n")
    with caplog.at_level(logging.WARNING, logger="evalkit.codecs.weights_fetch"):
        assert main(["run", str(config)]) == 0
    offline_lines = [r.getMessage() for r in caplog.records if r.name == "evalkit.codecs.weights_fetch"]
    assert len(offline_lines) == 1 and offline_lines[0].startswith("offline: skipping encodec_24khz (")
    out = capsys.readouterr().out
    assert "skipped encodec-24khz" in out and "3.5 kHz anchor" in out, out  # the run went on without it


def test_weights_fetch_command_downloads_through_the_mirror_and_fails_with_exit_1(serve, published, monkeypatch,
                                                                                   capsys):
    from evalkit.cli import main

    monkeypatch.setenv("EVALKIT_WEIGHTS_MIRROR", serve())  # EVALKIT_OFFLINE=1 does not stop an explicit fetch
    assert main(["weights", "fetch", "encodec_24khz"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(torch_hub_checkpoints() / "encodec_24khz-d7cc33bc.th")
    assert "fetched encodec_24khz" in captured.err
    monkeypatch.setenv("EVALKIT_WEIGHTS_MIRROR", serve(status=500))
    assert main(["weights", "fetch", "encodec_48khz"]) == 1
    assert capsys.readouterr().out == ""


def test_a_hanging_name_lookup_counts_against_the_timeout(monkeypatch):
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(10)
        raise socket.gaierror("released")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    try:
        result = fetch_missing([SPEC], mirror="http://weights.example", offline=False, timeout_s=0.2)[
            "encodec-24khz?bandwidth=6&seed=0&weights=pretrained"]
    finally:
        release.set()
    assert result.status is FetchStatus.OFFLINE
    assert "no answer within 0.2 s (name lookup of weights.example)" in result.message
