"""Listening-test delivery benchmark: Submit → next MUSHRA trial playable, over an emulated 10 Mbit/s, 40 ms link.

A real run on four stereo 44.1 kHz demo music items (Opus 12 and 24 kbps, MP3 64 kbps, a 5 kHz low-pass: with the
hidden reference and two anchors, 7 rated signals + the open reference per trial) is prepared once. Headless
chromium (CDP ``Network.emulateNetworkConditions``: 10 Mbit/s down and up, 40 ms latency, set once the app's page
has loaded) takes the test through ``evalkit listen serve``'s app: consent, skip training, then for every trial
play each signal, rate it and submit. Every trial reaches the browser as one bundle (24-bit PCM, all signals in
one file: :mod:`evalkit.listening.web.bundle`). The time from the Submit click to the next trial's player having split
all its audio into buffers ("playable") is measured in the page. Configurations: bundle without prefetch (the next
trial's bundle built and fetched after Submit) and with prefetch (the default; the benchmark waits for the
prefetch to finish, as a participant spending the usual 30 s or more on a trial would). Prints the bytes per trial
(computed, and as the browser received them: Resource Timing ``transferSize`` of the bundle requests, headers
included, early 404 answers counted apart) and the median Submit → playable time per configuration. Skips without
chromium.

Usage: .venv/bin/python benchmarks/listening_delivery_bench.py [--items 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
ITEMS = ("music_bach_bwv4_8.flac", "music_guit_em9.flac", "music_loop_tabla.flac", "music_bach_bwv66_6.flac")
CONDITIONS = ("opus?bitrate_kbps=12", "opus?bitrate_kbps=24", "mp3?bitrate_kbps=64", "lowpass?cutoff_hz=5000")
LINK = {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8, "uploadThroughput": 10e6 / 8}
READY_PROBE = """
window.__evalkitReady = {};
setInterval(() => {
  for (const h of document.querySelectorAll('*')) {
    const lt = h.shadowRoot && h.shadowRoot.querySelector('.lt[data-ready="1"]');
    if (lt && lt.__player && !(lt.__player.data.trial_key in window.__evalkitReady))
      window.__evalkitReady[lt.__player.data.trial_key] = performance.now();
  }
}, 5);
"""


def make_run(root: Path, n_items: int) -> Path:
    from evalkit.runner import load_config, run_evaluation

    data = root / "data"
    data.mkdir(parents=True)
    for name in ITEMS[:n_items]:
        shutil.copy(DEMO / name, data / name)
    codecs = "\n".join(f'  - spec: "{s}"' for s in CONDITIONS)
    config = root / "run.yaml"
    config.write_text(f'dataset: {{folder: {data}, glob: "*.flac"}}\ncodecs:\n{codecs}\nmetrics: [si_sdr]\n'
                      f"output: {root / 'run'}\nworkers: 1\n")
    cfg, parsed = load_config(config)
    run_evaluation(cfg, parsed, progress=False)
    return root / "run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, prefetch: bool) -> tuple[subprocess.Popen, str]:
    from evalkit.listening.web.serve import ADMIN_ENV, PREFETCH_ENV, streamlit_command, write_launcher

    port = free_port()
    write_launcher(folder)
    env = dict(os.environ, **{ADMIN_ENV: "benchmark-admin", PREFETCH_ENV: "1" if prefetch else "0"})
    proc = subprocess.Popen(streamlit_command(folder, "127.0.0.1", port), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, process_group=0)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("streamlit did not start")


def wait(predicate, timeout: float = 120.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the page is re-rendering
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def session(driver, url: str, n_trials: int, prefetch: bool) -> tuple[list[float], list[int]]:
    """Seconds from each Submit click to the next trial's player being playable, and the bytes of every bundle
    the browser received."""
    from selenium.webdriver.common.by import By

    driver.get(url)  # the app itself loads at full speed: only the trial transitions are measured
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", LINK)
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "[data-testid=stCheckbox] label"), what="consent")[0].click()
    wait(lambda: [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Start" and b.is_enabled()],
         what="start")[0].click()
    wait(lambda: [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.startswith("Skip training")],
         what="training")[0].click()
    driver.execute_script(READY_PROBE)
    find = ("return Array.from(document.querySelectorAll('*')).map(e => e.shadowRoot && "
            "e.shadowRoot.querySelector('.lt[data-ready=\"1\"]')).find(lt => lt && "
            "lt.__player.data.trial_key === arguments[0]) || null;")
    times = []
    for index in range(n_trials):
        lt = wait(lambda i=index: driver.execute_script(find, f"trial-{i}"), what=f"trial {index}")
        driver.execute_script(  # play every signal 0.3 s (must-play), then rate it
            "const p = arguments[0].__player; const done = arguments[1];"
            "(async () => { for (const s of p.data.stimuli) { await p.toggle(s.id);"
            " await new Promise(r => setTimeout(r, 300)); } p.fadeOut();"
            " p.data.stimuli.forEach((s, k) => { p.ratings[s.id] = 10 * k; }); p.refresh(); })();", lt, None)
        wait(lambda lt=lt: driver.execute_script("return !arguments[0].__player.submit.disabled", lt),
             what="submit enabled")
        if prefetch and index + 1 < n_trials:
            driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                        "Promise.all([...(window.__evalkitAudio || new Map()).values()]).then(done);")
        if index + 1 == n_trials:
            break
        t0 = driver.execute_script("const p = arguments[0].__player; const t = performance.now(); p.onSubmit();"
                                   " return t;", lt)
        ready = wait(lambda i=index: driver.execute_script(
            f"return window.__evalkitReady['trial-{i + 1}'] || null;"), what=f"trial {index + 1} playable")
        times.append((ready - t0) / 1000)
    sizes = driver.execute_script("return performance.getEntriesByType('resource')"
                                  ".filter((e) => e.name.includes('/app/static/'))"
                                  ".map((e) => [e.responseStatus, e.transferSize]);")
    return times, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4, help="items = MUSHRA trials per session (2..4)")
    n_items = max(2, min(len(ITEMS), parser.parse_args().items))
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        print("skipped: needs Debian's chromium and chromium-driver (make browser)")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions, prepare_test
    from evalkit.listening.web.bundle import HEADER_BYTES

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = make_run(root, n_items)
        d = prepare_test(run, root / "test", PrepareOptions(Design.MUSHRA, listeners=1))
        trials = d.slots[0]
        expected = statistics.mean(  # 24-bit PCM of every signal of the trial plus the header
            HEADER_BYTES + 3 * sum(d.stimuli[s].channels * d.stimuli[s].samples for s in (t.reference, *t.stimuli))
            for t in trials)
        n_trials, n_rated = len(trials), len(trials[0].stimuli)
        results, received = {}, []
        for name, prefetch in (("bundle, no prefetch", False), ("bundle + prefetch (now)", True)):
            proc, url = start_server(root / "test", prefetch)
            opts = webdriver.ChromeOptions()
            for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000"):
                opts.add_argument(arg)
            opts.binary_location = chromium
            opts.page_load_strategy = "eager"
            driver = webdriver.Chrome(options=opts, service=Service(chromedriver))
            driver.set_script_timeout(300)
            try:
                results[name], sizes = session(driver, url, n_trials, prefetch)
                received += sizes
            finally:
                driver.quit()
                os.killpg(proc.pid, 15)
                proc.wait(10)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"MUSHRA trial: {n_rated} rated signals + open reference, 44.1 kHz stereo, {n_items} items; link "
              f"10 Mbit/s, 40 ms latency (CDP); {os.cpu_count()} CPUs, load average {load} (server, browser and "
              "benchmark share them)")
        full = [size for status, size in received if status == 200]
        print(f"bytes per trial: {expected / 1e6:.2f} MB (one bundle: 24-bit PCM + {HEADER_BYTES}-byte header); "
              f"received per bundle: mean {statistics.mean(full) / 1e6:.2f} MB over {len(full)} bundles, plus "
              f"{len(received) - len(full)} early requests answered 404 (bundle still being built; retried)")
        for name, times in results.items():
            print(f"Submit -> next trial playable, {name}: median {statistics.median(times):.2f} s over "
                  f"{len(times)} transitions ({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
