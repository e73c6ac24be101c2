"""Trial bundles and per-participant ids (issue 27, points 1-3): one file per trial in the participant's order, read
back by libsndfile and by the browser's own parser (run in node), ids and names that differ between participants,
and the browser modules as real files that node accepts."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit.listening.model import STATIC_DIR, STORE_FILE, load_definition
from evalkit.listening.storage import ListeningStore
from evalkit.listening.web import bundle
from evalkit.listening.web.assets import component, component_js
from evalkit.listening.web.session import bundle_name, deliver, presented, release, trial_bundle, wire_id

WEB = Path(bundle.__file__).parent
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (the JavaScript checks) is not installed")


def _parts(rng, n=3, channels=2, samples=1000, bits=24):
    top = 2 ** (bits - 1)
    return [rng.integers(-top, top, size=(channels, samples)).astype(np.int32) for _ in range(n)]


@pytest.mark.parametrize("bits", [16, 24])
def test_bundle_is_one_interleaved_wav_read_back_exactly(bits):
    parts = _parts(np.random.default_rng(0), bits=bits)
    data = bundle.bundle_bytes(parts, 16000, bits)
    assert len(data) == bundle.HEADER_BYTES + 3 * 2 * 1000 * bits // 8
    x, rate = sf.read(io.BytesIO(data), dtype="int32")  # libsndfile: an independent reader
    assert rate == 16000 and x.shape == (1000, 6)
    expected = np.concatenate(parts).T.astype(np.int64) << (32 - bits)
    assert np.array_equal(x, expected)  # signal k's channel c is channel 2k + c, in the given order


def test_bundle_header_depends_on_the_shape_only():
    rng = np.random.default_rng(1)
    a = bundle.bundle_bytes(_parts(rng), 44100)
    b = bundle.bundle_bytes(_parts(rng), 44100)
    assert a[:bundle.HEADER_BYTES] == b[:bundle.HEADER_BYTES] and len(a) == len(b) and a != b
    with pytest.raises(ValueError, match="one shape"):
        bundle.bundle_bytes([np.zeros((2, 10), np.int32), np.zeros((2, 11), np.int32)], 44100)
    with pytest.raises(ValueError, match="bits: expected 16 or 24"):
        bundle.wav_header(2, 44100, 10, bits=8)


def test_trial_bundle_holds_the_stimuli_in_the_participants_order(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
    trial = definition.trials_for(p.slot)[0]
    order = list(p.orders[0])
    path = deliver(folder, definition, p, "trial-0", trial, order).result()
    assert path == folder / STATIC_DIR / bundle_name(p, "trial-0") and bundle.NAME.fullmatch(path.name)
    assert path.stat().st_mtime_ns == bundle.FIXED_MTIME_S * 10**9  # Last-Modified and ETag say nothing
    x, _ = sf.read(path, dtype="int32", always_2d=True)
    ids = presented(trial, order)
    assert ids[0] == trial.reference and ids[1:] == [trial.stimuli[k] for k in order]
    per = definition.stimuli[ids[0]].channels
    for k, sid in enumerate(ids):
        y, _ = sf.read(definition.stimulus_path(folder, sid), dtype="int32", always_2d=True)
        assert np.array_equal(x[:, k * per:(k + 1) * per], y)
    assert deliver(folder, definition, p, "trial-0", trial, order).result() == path  # built once
    release(folder, p, "trial-0")
    assert not path.exists()
    assert bundle.clear(folder / STATIC_DIR) == 0


def test_ids_and_bundles_are_per_participant(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p, q = store.create_participant(definition), store.create_participant(definition)
        assert store.participant(p.token).secret == p.secret and len(p.secret) == 64 and p.secret != q.secret
    sid = definition.slots[0][0].stimuli[0]
    assert wire_id(p, sid) != wire_id(q, sid) and wire_id(p, sid) != sid  # one leaked mapping serves one person
    assert len({wire_id(p, s) for s in definition.stimuli}) == len(definition.stimuli)
    assert bundle_name(p, "trial-0") != bundle_name(q, "trial-0") != bundle_name(q, "trial-1")


def test_a_store_without_secrets_gets_them(mushra_dir, fresh_copy):
    import sqlite3

    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    with ListeningStore(folder / STORE_FILE) as store:
        p = store.create_participant(definition)
    db = sqlite3.connect(folder / STORE_FILE)  # as written before secrets existed
    db.execute("ALTER TABLE participants DROP COLUMN secret")
    db.commit()
    db.close()
    with ListeningStore(folder / STORE_FILE) as store:
        old = store.participant(p.token)
        assert len(old.secret) == 64 and store.participant(p.token).secret == old.secret


def test_a_bundle_that_cannot_be_built_leaves_nothing(tmp_path):
    (tmp_path / STATIC_DIR).mkdir()
    path = tmp_path / STATIC_DIR / ("0" * 32 + ".wav")

    def broken() -> bytes:
        raise OSError("stimulus file missing")
    with pytest.raises(OSError, match="missing"):
        bundle.ensure(path, broken).result()
    assert not path.exists() and not list((tmp_path / bundle.BUILD_DIR).iterdir())


def _node(script: str) -> str:
    out = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_node
@pytest.mark.parametrize("bits", [16, 24])
def test_the_browsers_parser_reads_what_the_server_writes(tmp_path, bits):
    parts = _parts(np.random.default_rng(2), n=4, channels=1, samples=300, bits=bits)
    (tmp_path / "b.wav").write_bytes(bundle.bundle_bytes(parts, 22050, bits))
    script = """
import { parseBundle } from MODULE;
import { readFileSync } from "node:fs";
const b = readFileSync(FILE);
const p = parseBundle(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
console.log(JSON.stringify({ rate: p.sampleRate, frames: p.frames, ch: p.channels.map((c) => Array.from(c)) }));
"""
    got = json.loads(_node(script.replace("MODULE", json.dumps((WEB / "audio.mjs").as_uri()))
                           .replace("FILE", json.dumps(str(tmp_path / "b.wav")))))
    assert got["rate"] == 22050 and got["frames"] == 300 and len(got["ch"]) == 4
    for part, channel in zip(parts, got["ch"], strict=True):
        assert np.array_equal(np.asarray(channel), part[0] / 2 ** (bits - 1))  # exact: float32 holds 24 bits


@needs_node
def test_browser_modules_are_files_node_accepts():
    modules = sorted(WEB.glob("*.mjs"))
    assert [m.name for m in modules] == ["audio.mjs", "headphone.mjs", "player.mjs"]
    for module in modules:
        check = subprocess.run([NODE, "--check", str(module)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
    for page in ("player", "headphone"):  # what the components really run: audio.mjs joined in front
        check = subprocess.run([NODE, "--input-type=module", "--check"], input=component_js(page),
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        assert component(page)["css"].strip()


@needs_node
def test_every_mushra_signal_has_a_key_of_its_own():
    script = """
import { SIGNAL_KEYS, mushraKeyHelp } from MODULE;
console.log(JSON.stringify({ keys: SIGNAL_KEYS, help: mushraKeyHelp(12) }));
"""
    got = json.loads(_node(script.replace("MODULE", json.dumps((WEB / "player.mjs").as_uri()))))
    assert len(got["keys"]) == 12 and len(set(got["keys"])) == 12 and "r" not in got["keys"]  # 11 and 12 differ
    assert got["keys"][10:] == ["-", "="]
    assert got["help"] == "Keys: 1–9 play signals 1–9, 0 plays 10, - plays 11, = plays 12, R the reference; " \
                          "space plays or stops."


def test_trial_bundle_of_an_unknown_file_fails(mushra_dir, fresh_copy):
    folder = fresh_copy(mushra_dir)
    definition = load_definition(folder)
    trial = definition.slots[0][0]
    definition.stimulus_path(folder, trial.stimuli[0]).unlink()
    with pytest.raises(sf.LibsndfileError):
        trial_bundle(folder, definition, presented(trial))
