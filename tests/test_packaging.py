"""The distribution: ``python -m build`` makes a wheel and an sdist of ``codec-evalkit`` that hold every package
and data file, and the wheel installed into a fresh virtualenv runs the ``evalkit`` command from there.

The fresh virtualenv gets the dependencies (torch, numpy...) without any download: a ``.pth`` file lists the
running virtualenv's site-packages as a plain path. A plain path in a ``.pth`` file is only appended to
``sys.path``; the ``.pth`` files inside that folder (the editable install of this checkout) are not run, so
``import evalkit`` there can only find the installed wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow  # builds the wheel and sdist and installs them in a fresh virtualenv

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "evalkit"
DIST_NAME = "codec-evalkit"
WHEEL_PREFIX = DIST_NAME.replace("-", "_")
CHECKPOINT = Path("evalkit/codecs/qincodec/weights/qincodec-small.pt")


def _source_files() -> set[str]:
    """Every file of the evalkit package in this checkout, as ``evalkit/...`` (compiled files left out)."""
    return {str(p.relative_to(SRC.parent)) for p in SRC.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _run(args: list, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Wheel and sdist built offline from a copy of the checkout (so the build writes nothing into it)."""
    root = tmp_path_factory.mktemp("build")
    tree = root / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = root / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree], cwd=root)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_and_sdist_are_named_codec_evalkit_and_hold_every_file(built):
    import evalkit

    wheel, sdist = built["wheel"], built["sdist"]
    assert wheel.name == f"{WHEEL_PREFIX}-{evalkit.__version__}-py3-none-any.whl"
    assert sdist.name == f"{WHEEL_PREFIX}-{evalkit.__version__}.tar.gz"
    expected = _source_files()
    assert str(CHECKPOINT) in expected and "evalkit/reports/templates/report.html.j2" in expected
    assert {"evalkit/listening/web/player.mjs", "evalkit/listening/web/player.css"} <= expected
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(f"{WHEEL_PREFIX}-{evalkit.__version__}.dist-info/METADATA").decode()
        entry_points = zf.read(f"{WHEEL_PREFIX}-{evalkit.__version__}.dist-info/entry_points.txt").decode()
        shipped = zf.read(str(CHECKPOINT))
    assert expected - names == set()  # every package, module and data file (checkpoint, templates, .mjs, .css)
    assert f"Name: {DIST_NAME}\n" in metadata and f"Version: {evalkit.__version__}\n" in metadata
    assert "evalkit = evalkit.cli:main" in entry_points
    assert hashlib.sha256(shipped).digest() == hashlib.sha256((SRC.parent / CHECKPOINT).read_bytes()).digest()
    with tarfile.open(sdist) as tf:
        top = f"{WHEEL_PREFIX}-{evalkit.__version__}"
        in_sdist = {n.removeprefix(f"{top}/src/") for n in tf.getnames() if n.startswith(f"{top}/src/evalkit")}
    assert expected - in_sdist == set()


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed (no index, no dependencies), dependencies from this one."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", built["wheel"]], cwd=venv.parent)
    # Only after the install, so that pip never sees this checkout's own (editable) install as installed there.
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=venv.parent).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "zz_dependencies_from_test_venv.pth").write_text("".join(f"{p}\n" for p in ours))
    return venv


@pytest.fixture
def outside(tmp_path) -> tuple[Path, dict]:
    """A working folder outside the checkout, and an environment without this checkout's ``src`` on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    assert not tmp_path.resolve().is_relative_to(REPO)
    return tmp_path, env


def test_installed_wheel_is_what_evalkit_imports(venv, outside):
    cwd, env = outside
    done = _run([venv / "bin" / "python", "-c", "import evalkit, importlib.metadata as m, json; print(json.dumps("
                 f"[evalkit.__file__, evalkit.__version__, m.version({DIST_NAME!r})]))"], cwd, env)
    file, version, dist_version = json.loads(done.stdout)
    assert Path(file).resolve().is_relative_to(venv.resolve()), file
    assert not Path(file).resolve().is_relative_to(REPO)
    assert version == dist_version


def test_installed_command_help_and_codecs_list(venv, outside):
    cwd, env = outside
    evalkit_cmd = venv / "bin" / "evalkit"
    assert evalkit_cmd.is_file()
    assert _run([evalkit_cmd, "--help"], cwd, env).stdout.startswith("usage: evalkit")
    families = {f["name"]: f for f in json.loads(_run([evalkit_cmd, "codecs", "list", "--json"], cwd, env).stdout)}
    assert {"qincodec", "qincodec-rvq", "lowpass"} <= set(families)
    assert "qincodec:" in _run([evalkit_cmd, "codecs", "list"], cwd, env).stdout


def test_installed_command_scores_a_pair(venv, outside):
    cwd, env = outside
    rate = 16_000
    t = np.arange(rate) / rate
    reference = 0.5 * np.sin(2 * np.pi * 500 * t)
    # an orthogonal error at 1/10 of the reference's amplitude: SI-SDR = 20 log10(10) = 20 dB exactly
    sf.write(cwd / "ref.wav", reference, rate, subtype="FLOAT")
    sf.write(cwd / "deg.wav", reference + 0.05 * np.cos(2 * np.pi * 500 * t), rate, subtype="FLOAT")
    done = _run([venv / "bin" / "evalkit", "score", "ref.wav", "deg.wav", "--metric", "si_sdr", "--json"], cwd, env)
    assert json.loads(done.stdout)["si_sdr"] == pytest.approx(20.0, abs=0.05)


def test_installed_shipped_qincodec_checkpoint_codes_audio(venv, outside):
    cwd, env = outside
    script = (
        "import json, numpy as np, evalkit\n"
        "from evalkit.codecs.qincodec.checkpoint import SHIPPED\n"
        "codec = evalkit.build_codec('qincodec')\n"
        "x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4800) / 24000)).astype('float32')[None]\n"
        "out = codec.reconstruct(x, 24000)\n"
        "print(json.dumps({'shipped': str(SHIPPED), 'shape': list(out.audio.shape),"
        " 'finite': bool(np.isfinite(out.audio).all()), 'codes': out.encoded is not None, 'sha256': codec.sha256}))\n")
    result = json.loads(_run([venv / "bin" / "python", "-c", script], cwd, env).stdout)
    assert Path(result["shipped"]).resolve().is_relative_to(venv.resolve())
    assert result["shape"] == [1, 4800] and result["finite"] and result["codes"]
    assert result["sha256"] == hashlib.sha256((SRC.parent / CHECKPOINT).read_bytes()).hexdigest()
