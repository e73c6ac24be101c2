#!/usr/bin/env bash
# Create .venv and install evalkit with every dependency, working around the install traps of this platform:
#   * torch is pinned to 2.13.0 (a CPU build pip finds on local disk; other specs pull multi-GB CUDA builds);
#   * PyPI's torchaudio is CUDA-linked: install it --no-deps and delete its compiled libraries, so that
#     encodec/dac (which import it) run it in pure-Python mode;
#   * descript-audiotools pins protobuf<3.20 but streamlit needs >=5.26: dac/audiotools/argbind go in --no-deps
#     with their runtime dependencies listed in requirements/base.txt.
# Idempotent: a stamp holding the hash of every install input skips the work when nothing changed.
# Last, it fills numba's on-disk caches, so that the first run compiles nothing.
# Fails loudly if a smoke import fails or ViSQOL would run without numba.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
  done
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }

inputs_hash=$(cat scripts/setup_env.sh pyproject.toml requirements/*.txt | sha256sum | cut -c1-16)
stamp="$VENV/.evalkit-setup-$inputs_hash"
if [ -f "$stamp" ]; then
  exit 0
fi

echo "setup: creating $VENV and installing dependencies (a few minutes the first time)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
quiet() { "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; return "${PIPESTATUS[0]}"; }

quiet "${PIP[@]}" install --upgrade "pip>=24"
quiet "${PIP[@]}" install "torch==2.13.0"
quiet "${PIP[@]}" install -r requirements/base.txt -r requirements/dev.txt
quiet "${PIP[@]}" install --no-deps -r requirements/nodeps.txt
# torchaudio's compiled extension cannot load beside CPU torch; without it torchaudio imports in pure-Python mode.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -f "$site"/torchaudio/lib/*.so
# Until 0.1.0 the distribution was named evalkit (the name of an unrelated PyPI project): drop that old install.
if "$VENV/bin/python" -m pip show -q evalkit >/dev/null 2>&1; then quiet "${PIP[@]}" uninstall -y evalkit; fi
quiet "${PIP[@]}" install --no-deps -e .

echo "setup: smoke imports"
"$VENV/bin/python" - <<'PY'
import importlib
import sys
import warnings

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # webrtcvad's import, setuptools < 81
failed = []
for name in ("torch", "encodec", "dac", "audiotools", "streamlit", "pesq", "visqol", "pystoi", "soxr",
             "soundfile", "pyloudnorm", "torchmetrics", "dask.distributed", "faiss", "selenium", "av", "evalkit",
             "speechmos.dnsmos", "onnxruntime", "resemblyzer", "pocketsphinx", "jiwer", "wandb", "tensorboard"):
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every failure, not just the first
        failed.append(f"  {name}: {type(exc).__name__}: {exc}")
from visqol.numba_accel import has_numba

if not has_numba():
    failed.append("  visqol: numba acceleration is not active (ViSQOL would be ~13x slower)")
if failed:
    print("setup: smoke imports FAILED:\n" + "\n".join(failed), file=sys.stderr)
    sys.exit(1)
import torch

print(f"setup: ok (torch {torch.__version__}, cuda available: {torch.cuda.is_available()})")
PY
# numba compiles ViSQOL's and librosa's kernels on first use: ~100 s on a fresh install, paid by every worker
# of the first run at once. Compile them now into numba's on-disk cache (the packages' __pycache__ inside
# $VENV, or $NUMBA_CACHE_DIR when set), which every later process, pool workers included, loads in a second.
echo "setup: warming the numba caches (once per install)"
"$VENV/bin/python" -W ignore -m evalkit.metrics.jit_cache
rm -f "$VENV"/.evalkit-setup-*
touch "$stamp"
