"""Codec plugins: entry points and plugin files register families with their source; broken ones are one line."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.codecs import PluginError, build_codec, get_family, load_plugin_file
from tests.plugin_fixtures import install_entry_point, write_plugin_file


def _mu_law_reference(x: np.ndarray, bits: int) -> np.ndarray:
    """G.711-style mu-law companding and uniform quantisation, written independently with numpy."""
    mu, levels = 255.0, 2**bits - 1
    y = np.sign(x) * np.log(1 + mu * np.abs(np.clip(x, -1, 1))) / np.log(1 + mu)
    q = np.round((y + 1) / 2 * levels) / levels * 2 - 1
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu


def test_plugin_file_family_works_like_a_builtin_and_names_its_source(clean_families, tmp_path, capsys):
    path = write_plugin_file(tmp_path)
    families = load_plugin_file(path)
    assert [f.name for f in families] == ["toy-file"]
    assert clean_families.source("toy-file").describe() == f"file {path}"
    codec = build_codec("toy-file?bits=6", device="cpu")
    assert codec.bitrate_bps == 8000 * 6 and codec.cardinality == 64
    x = (0.4 * np.sin(2 * np.pi * 300 * np.arange(4000) / 8000)).astype(np.float32)[None]
    rec = codec.reconstruct(x, 8000)  # at the codec's rate: no resampling, so the codec's math is exposed
    assert rec.audio.shape == x.shape and rec.encoded.codes.shape == (1, 1, 4000)
    np.testing.assert_allclose(rec.audio, _mu_law_reference(x, 6), atol=1e-5)
    assert main(["codecs", "list", "--plugin", str(path)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("toy-file:"):]
    assert f"    source: file {path}" in block and "bitrates (kbps): 16, 24, 32, 40, 48, 56, 64" in block
    assert "encodec-24khz:" in out and "    source: evalkit" in out
    assert main(["codecs", "list", "--json", "--plugin", str(path)]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["toy-file"]["source"] == f"file {path}" and records["lowpass"]["source"] == "evalkit"


def test_entry_point_family_is_found_without_loading_anything(clean_families, tmp_path, monkeypatch, capsys):
    install_entry_point(tmp_path / "site", monkeypatch)
    assert get_family("toy-ep").display_name == "Toy entry point"
    assert clean_families.source("toy-ep").describe() == "entry point toy (evalkit-toy-ep 0.1.0)"
    assert main(["codecs", "list"]) == 0
    out = capsys.readouterr().out
    assert "toy-ep: toy plugin codec" in out and "    source: entry point toy (evalkit-toy-ep 0.1.0)" in out


def test_codecs_list_with_an_entry_point_plugin_imports_no_heavy_library(clean_families, tmp_path, monkeypatch):
    install_entry_point(tmp_path / "site", monkeypatch)
    probe = ("import contextlib, io, json, sys; from evalkit.cli import main; out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out): code = main(['codecs', 'list'])\n"
             "print(json.dumps({'code': code, 'listed': 'source: entry point toy' in out.getvalue(),"
             " 'heavy': [m for m in ('torch', 'scipy', 'pandas') if m in sys.modules]}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "listed": True, "heavy": []}


def test_plugin_identity_is_in_the_variant_identity(clean_families, tmp_path, monkeypatch):
    from evalkit.runner.plan import plan_variant

    path = write_plugin_file(tmp_path)
    load_plugin_file(path)
    before = plan_variant(get_family("toy-file").resolve({}), "cpu").identity
    path.write_text(path.read_text() + "\n# edited\n")
    load_plugin_file(path)  # the same path again: replaces its own family
    after = plan_variant(get_family("toy-file").resolve({}), "cpu").identity
    assert before != after and "plugin-file-sha256=" in after
    install_entry_point(tmp_path / "site", monkeypatch, version="2.5")
    assert "plugin=evalkit-toy-ep==2.5" in plan_variant(get_family("toy-ep").resolve({}), "cpu").identity


BAD_FILES = {
    "syntax.py": ("def broken(:\n", "import failed (line 1): SyntaxError"),
    "imports.py": ("import no_such_module_xyz\n", "import failed: ModuleNotFoundError: No module named "
                                                  "'no_such_module_xyz'"),
    "nothing.py": ("X = 1\n", "defines no FAMILIES"),
    "number.py": ("FAMILIES = 3\n", "FAMILIES: expected a CodecFamily, a list of them or a callable returning them, "
                                    "got int"),
    "empty.py": ("FAMILIES = []\n", "FAMILIES: defines no codec family"),
    "raises.py": ("def FAMILIES():\n    raise RuntimeError('no GPU')\n", "FAMILIES: calling it failed: RuntimeError:"
                                                                          " no GPU"),
    "taken.py": ("from evalkit.codecs import FAMILIES as F\nFAMILIES = [F['lowpass']]\n",
                 "codec family 'lowpass' is already provided by evalkit"),
    "reserved.py": ("import dataclasses\nfrom evalkit.codecs import FAMILIES as F\n"
                    "FAMILIES = [dataclasses.replace(F['lowpass'], name='decoded')]\n",
                    "codec family name 'decoded' is reserved by evalkit"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_broken_plugin_file_is_one_line_and_exit_2(clean_families, tmp_path, capsys, name):
    source, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(source)
    assert main(["codecs", "list", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"evalkit: error: {path}: {message}"), err
    with pytest.raises(PluginError, match="plugin file not found"):
        load_plugin_file(tmp_path / "absent.py")


def test_a_broken_entry_point_is_one_line_and_leaves_builtins_usable(clean_families, tmp_path, monkeypatch, capsys):
    install_entry_point(tmp_path / "site", monkeypatch, target="toy_broken_ep:TOY",
                        module_source="raise ImportError('needs libfoo')\n", dist="evalkit-broken")
    assert get_family("lowpass").name == "lowpass"  # a built-in name never reads entry points
    assert main(["codecs", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evalkit: error: codec plugin entry point toy (evalkit-broken 0.1.0) = toy_broken_ep:TOY: "
                   "import failed: ImportError: needs libfoo"]


def test_an_entry_point_naming_a_callable_gives_its_families(clean_families, tmp_path, monkeypatch):
    module = ("from evalkit.codecs import FAMILIES as F\nimport dataclasses\n"
              "def families():\n    return [dataclasses.replace(F['lowpass'], name=f'lp{i}') for i in (1, 2)]\n")
    install_entry_point(tmp_path / "site", monkeypatch, target="toy_callable_ep:families", module_source=module,
                        dist="evalkit-callable")
    out = build_codec("lp2?cutoff_hz=7000").reconstruct(np.ones((1, 480), np.float32) * 0.1, 48000)
    assert out.audio.shape == (1, 480) and math.isclose(float(out.audio[0, 240]), 0.1, rel_tol=1e-3)
    assert clean_families.source("lp1").describe() == "entry point toy (evalkit-callable 0.1.0)"


WIDE_PLUGIN = '''
import torch
from evalkit.codecs import Codec, CodecFamily, Encoded, Param


class Wide(Codec):
    """16-bit linear PCM at 8 kHz (K = 65536, more than int16 holds); a `weights` file parameter."""

    sample_rate, channels, frame_rate, num_codebooks, cardinality = 8000, 1, 8000.0, 1, 65536

    def encode(self, wav):
        return Encoded(((wav.clamp(-1, 1) + 1) / 2 * 65535).round().long(), num_samples=wav.shape[-1])

    def decode(self, encoded):
        return encoded.codes.float() / 65535 * 2 - 1


FAMILIES = [CodecFamily("wide-pcm", "16-bit PCM", (Param("weights", str, "none", "a file"),), Wide)]
'''


def test_a_plugin_weights_file_is_keyed_and_wide_codes_are_stored_exactly(clean_families, tmp_path):
    from evalkit.codecs.weights import WeightsNotFound
    from evalkit.runner.plan import plan_variant
    from tests.runner.conftest import run_raw

    (tmp_path / "wide.py").write_text(WIDE_PLUGIN)
    load_plugin_file(tmp_path / "wide.py")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"12345")
    identity = plan_variant(get_family("wide-pcm").resolve({"weights": str(weights)}), "cpu").identity
    assert "weights=w.bin:5:" in identity
    with pytest.raises(WeightsNotFound, match="weights file .*nowhere.bin does not exist"):
        plan_variant(get_family("wide-pcm").resolve({"weights": str(tmp_path / "nowhere.bin")}), "cpu")
    import soundfile as sf

    (tmp_path / "d").mkdir()
    x = np.linspace(-0.99, 0.99, 800, dtype=np.float32)
    sf.write(tmp_path / "d" / "ramp.wav", x, 8000, subtype="FLOAT")
    raw = {"dataset": {"folder": "d", "glob": "*.wav"}, "codecs": [{"spec": f"wide-pcm?weights={weights}"}],
           "metrics": ["si_sdr"], "output": "out", "workers": 0, "plugins": ["wide.py"]}
    run_raw(raw, tmp_path)
    [codes_file] = (tmp_path / "out" / "cache" / "codes").glob("*.npy")
    codes = np.load(codes_file)
    expected = np.round((x + 1) / 2 * 65535).astype(np.int64)
    assert codes.dtype == np.int32 and np.array_equal(codes[0, 0], expected)
