"""The quick commands import neither torch nor scipy nor pandas, and their --json output is clean JSON."""

import json
import subprocess
import sys

import pytest

from evalkit.codecs.qincodec.checkpoint import SHIPPED

HEAVY = ("torch", "scipy", "pandas")
PROBE = """
import contextlib, io, json, sys
HEAVY = sys.argv.pop(1).split(",")
from evalkit.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps({"code": code, "stdout": out.getvalue(), "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _probe(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *argv], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["codecs", "list"], ["metrics", "list", "--json"],
                                  ["weights", "status", "--json"]])
def test_quick_commands_do_not_import_heavy_libraries(argv):
    result = _probe(*argv)
    assert result["loaded"] == []
    assert result["code"] == 0 or (argv == ["codecs", "list"] and not SHIPPED.is_file())  # see the skip below


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped QinCodec checkpoint: `codecs list` cannot list it")
def test_codecs_list_prints_json(capsys):
    from evalkit.cli import main
    from evalkit.codecs import FAMILIES

    assert main(["codecs", "list", "--json"]) == 0
    families = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in families] == list(FAMILIES)
    encodec = families[0]
    assert [v["bitrate_kbps"] for v in encodec["variants"]] == [1.5, 3.0, 6.0, 12.0, 24.0]


def test_metrics_and_weights_lists_print_json(capsys):
    from evalkit.cli import main
    from evalkit.codecs.weights import WEIGHTS
    from evalkit.metrics import ALL_INFO

    assert main(["metrics", "list", "--json"]) == 0
    metrics = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert list(metrics) == list(ALL_INFO)
    assert metrics["pesq_nb"]["aligns_internally"] and metrics["pesq_nb"]["fallback_rates"] == [8000]
    assert metrics["pesq_nb"]["library_version"] == ALL_INFO["pesq_nb"].library_version()
    assert not metrics["si_sdr"]["aligns_internally"]
    assert main(["weights", "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(WEIGHTS) and all(r["path"] is None for r in rows)  # private caches


def test_torch_hub_folder_matches_torch_without_importing_it(monkeypatch, tmp_path):
    import torch.hub

    from evalkit.codecs import weights

    for env in ({"TORCH_HOME": str(tmp_path / "th")}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {}):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        expected = weights.torch_hub_checkpoints()  # torch.hub is imported: its own answer
        monkeypatch.delitem(sys.modules, "torch.hub")
        assert weights.torch_hub_checkpoints() == expected == weights.Path(torch.hub.get_dir()) / "checkpoints"
        monkeypatch.undo()


def test_qincodec_header_reads_without_torch(tmp_path):
    import torch

    from evalkit.codecs.qincodec.checkpoint import PARTS, load_checkpoint
    from evalkit.training.qincodec.packaging import save_checkpoint

    config = {"name": "tiny", "model": {"sample_rate": 16000, "strides": [4, 5]}, "quantizer": {"steps": 2}}
    path = save_checkpoint(tmp_path / "c.pt", config, {k: {"w": torch.ones(2, 3)} for k in PARTS}, {"seed": 1})
    probe = ("import json, sys; from evalkit.codecs.qincodec.checkpoint import read_header; "
             "h = read_header(sys.argv[1]); print(json.dumps({**h, 'torch': 'torch' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    header = json.loads(done.stdout)
    full = load_checkpoint(str(path))
    assert header == {"format": full["format"], "config": full["config"], "provenance": full["provenance"],
                      "sha256": full["sha256"], "parts": list(PARTS), "torch": False}
