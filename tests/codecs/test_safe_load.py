"""Pretrained weights files never run code: torch.package/TorchScript archives and pickled objects are refused with
one line naming the file; DAC is built from evalkit's own table and loaded strictly from a plain state dict."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from evalkit.cli import main
from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.qincodec.checkpoint import CheckpointError, load_checkpoint
from evalkit.codecs.rvq import fold_weight_norm
from evalkit.codecs.safe_load import WeightsFileError, code_archive_kind
from evalkit.codecs.weights import get_entry
from evalkit.runner.plan import plan_variant

SRC = Path(__file__).resolve().parents[2] / "src"
DAC44_FILE = get_entry("dac_44khz").filename  # weights_44khz_8kbps_0.0.1.pth


def package_archive(path: Path, marker: Path) -> Path:
    """A real ``torch.package`` archive laid out as ``DAC.save`` writes one (resource ``DAC/DAC.pth``); unpickling
    that resource imports the interned module ``planted``, whose top-level code creates ``marker``."""
    from torch.package import PackageExporter

    source = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n\n\nclass Model:\n    pass\n"
    with PackageExporter(str(path)) as exporter:
        exporter.save_source_string("planted", source)  # interned: its code travels inside the archive
        exporter.save_binary("DAC", "DAC.pth", b"\x80\x02cplanted\nModel\n)\x81.")  # pickle of planted.Model()
    return path


class Planted:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture(scope="module")
def dac16_checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A dac-16khz checkpoint written by the ``dac`` library's own ``DAC.save(package=False)`` at random weights,
    with the state dict it holds."""
    model = build_codec("dac-16khz?weights=random&seed=2", device="cpu").build_loaded_model()  # as DAC saves it
    path = tmp_path_factory.mktemp("dac") / "dac16.pth"
    model.save(str(path), package=False)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def _folded(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state a loaded dac-16khz holds for the file state ``state``: encoder and decoder weight norms folded."""
    model = build_codec("dac-16khz?weights=random", device="cpu").build_model()
    model.load_state_dict(state)
    for part in (model.encoder, model.decoder):
        fold_weight_norm(part)
    return model.state_dict()


def test_the_archive_runs_its_code_under_dacs_own_loader(tmp_path):
    """The control: ``DAC.load`` (what evalkit called before) imports the archive's module."""
    from dac import DAC

    marker = tmp_path / "ran"
    path = package_archive(tmp_path / "evil.pth", marker)
    loaded = DAC.load(str(path))
    assert marker.exists()
    assert type(loaded).__name__ == "Model"  # the planted class, handed back as if it were the model


def test_an_explicit_package_archive_is_refused_unopened(tmp_path):
    marker = tmp_path / "ran"
    path = package_archive(tmp_path / "evil.pth", marker)
    assert code_archive_kind(path) == "a torch.package archive"
    with pytest.raises(WeightsFileError) as info:
        build_codec(f"dac-44khz?weights={path}", device="cpu").load()
    assert one_line(str(info.value)).startswith(f"{path} is a torch.package archive: it carries Python code")
    with pytest.raises(WeightsFileError, match="evil.pth is a torch.package archive"):
        plan_variant(parse_spec(f"dac-44khz?weights={path}"))  # config time, before any unit
    with pytest.raises(WeightsFileError, match="evil.pth is a torch.package archive"):
        build_codec(f"encodec-24khz?weights={path}", device="cpu").load()
    assert not marker.exists()


def test_a_package_archive_planted_in_evalkit_weights_is_refused_unopened(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    folder = tmp_path / "weights"
    folder.mkdir()
    planted = package_archive(folder / DAC44_FILE, marker)
    monkeypatch.setenv("EVALKIT_WEIGHTS", str(folder))
    with pytest.raises(WeightsFileError, match=re.escape(f"{planted} is a torch.package archive")):
        build_codec("dac-44khz", device="cpu").load()
    variant = plan_variant(parse_spec("dac-44khz?n_codebooks=4"))
    assert variant.skipped == (f"weights refused: {planted} is a torch.package archive: it carries Python code, "
                               f"which evalkit never runs; give a plain state dict "
                               f"(torch.save(model.state_dict(), FILE))")
    assert not marker.exists()


def _dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(folder / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(4410).astype(np.float32), 44100)
    return folder


def _config(tmp_path: Path, spec: str) -> Path:
    raw = {"dataset": {"folder": str(_dataset(tmp_path)), "glob": "*.wav"}, "codecs": [{"spec": spec}],
           "metrics": ["si_sdr"], "output": str(tmp_path / "out"), "workers": 0}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_evalkit_run_with_an_explicit_package_archive_is_one_line_exit_2(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = package_archive(tmp_path / "evil.pth", marker)
    assert main(["run", str(_config(tmp_path, f"dac-44khz?weights={path}"))]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"evalkit: error: {tmp_path / 'run.yaml'}: codecs.0: dac-44khz?")
    assert line.endswith(f"{path} is a torch.package archive: it carries Python code, which evalkit never runs; "
                         f"give a plain state dict (torch.save(model.state_dict(), FILE))")
    assert not marker.exists() and not (tmp_path / "out" / "results.sqlite").exists()


def test_evalkit_run_skips_a_variant_whose_planted_weights_are_refused(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "ran"
    folder = tmp_path / "weights"
    folder.mkdir()
    planted = package_archive(folder / DAC44_FILE, marker)
    monkeypatch.setenv("EVALKIT_WEIGHTS", str(folder))
    assert main(["run", str(_config(tmp_path, "dac-44khz?n_codebooks=2"))]) == 0
    out = capsys.readouterr().out
    assert f"skipped dac-44khz?n_codebooks=2&seed=0&weights=pretrained: weights refused: {planted} is a " \
           f"torch.package archive" in out
    assert not marker.exists()


@pytest.mark.parametrize("protocol,why", [
    (2, "refused: it holds objects other than tensors and plain data, which loading could run (Trying to load "
        "unsupported GLOBAL posix.system whose module posix is blocked.)"),
    (5, "is unreadable as a torch.save file (Unsupported operand 149)"),  # torch's unpickler stops at FRAME
])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_plain_pickle_with_a_reduce_payload_is_refused_and_not_run(tmp_path, protocol, why):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {}, "metadata": Planted(marker)}, fh, protocol=protocol)
    for spec in (f"dac-44khz?weights={path}", f"encodec-24khz?weights={path}"):
        with pytest.raises(WeightsFileError) as info:
            build_codec(spec, device="cpu").load()
        assert one_line(str(info.value)) == f"{path}{':' if why.startswith('refused') else ''} {why}"
    assert not marker.exists()


def test_a_torch_save_with_a_planted_object_is_refused_at_config_time(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "metadata": {"kwargs": {}}, "x": Planted(marker)}, path)
    assert main(["run", str(_config(tmp_path, f"dac-44khz?weights={path}"))]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.endswith(f"{path}: refused: it holds objects other than tensors and plain data, which loading could "
                         f"run (Trying to load unsupported GLOBAL posix.system whose module posix is blocked.)")
    assert not marker.exists()


def test_a_torchscript_archive_is_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    with pytest.raises(WeightsFileError, match=r"scripted.pt is a TorchScript archive: it carries Python code"):
        build_codec(f"encodec-24khz?weights={path}", device="cpu").load()


@pytest.mark.slow
def test_truncated_and_garbage_files_are_one_line(tmp_path, dac16_checkpoint):
    good, _ = dac16_checkpoint
    files = {"truncated.pth": good.read_bytes()[: good.stat().st_size // 2], "garbage.pth": b"not a checkpoint",
             "empty.pth": b""}
    reasons = {"truncated.pth": "central directory",  # torch's words for a zip cut short
               "garbage.pth": "Unsupported operand 110",  # "n" is no pickle opcode
               "empty.pth": "(EOFError)"}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightsFileError) as info:
            build_codec(f"dac-16khz?weights={path}", device="cpu").load()
        line = one_line(str(info.value))
        assert line.startswith(f"{path} is unreadable as a torch.save file (") and reasons[name] in line


@pytest.mark.slow
def test_dac_save_format_loads_strictly_into_evalkits_architecture(tmp_path, dac16_checkpoint):
    path, reference = dac16_checkpoint
    loaded = build_codec(f"dac-16khz?n_codebooks=4&weights={path}", device="cpu")
    assert plan_variant(loaded.spec).skipped is None  # the config-time check accepts it
    state, expected = loaded.load().model.state_dict(), _folded(reference)
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    # built on the meta device: nothing is left there, the weights the quantizers' hooks keep included
    held = [(name, t) for layer in loaded.model.modules() for name, t in vars(layer).items()
            if isinstance(t, torch.Tensor)]
    assert held and not any(t.is_meta for _, t in held)
    projection = loaded.model.quantizer.quantizers[0].in_proj
    assert torch.equal(projection.weight, torch._weight_norm(projection.weight_v, projection.weight_g, 0))
    bare = tmp_path / "bare.pth"  # a plain state dict (no metadata) loads as well
    torch.save(reference, bare)
    state = build_codec(f"dac-16khz?weights={bare}", device="cpu").load().model.state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected)


LOAD_PEAK = """
import sys

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field + ":"))

from evalkit import native_memory
native_memory.own_process()  # as in a worker
import torch
from evalkit.codecs import build_codec
codec = build_codec(sys.argv[1], device="cpu")
import dac  # the library's own modules are not the model
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # the high-water mark starts again from here
model = codec.load().model
held = sum(t.untyped_storage().nbytes() for t in [*model.parameters(), *model.buffers()])
print(status("VmHWM") - before, held, int("sympy" in sys.modules))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_loading_a_checkpoint_holds_about_one_copy_of_the_model(dac16_checkpoint):
    """Built on the meta device (shapes only: torch's Python meta kernels, 73 MiB with sympy, stay unloaded) and
    given the file's tensors, folded as they come: the peak while loading is about the model (measured: 1.3x),
    where building a model, copying the file into it and folding reached 3.2x."""
    import subprocess
    import sys

    path, _ = dac16_checkpoint
    out = subprocess.run([sys.executable, "-c", LOAD_PEAK, f"dac-16khz?weights={path}"], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    peak, held, sympy = (int(v) for v in out.stdout.split())
    assert held > 250e6  # the folded model (74 M parameters)
    assert peak < 1.5 * held, (peak / held, out.stderr[-500:])
    assert not sympy


@pytest.mark.slow
def test_checking_a_weights_file_at_plan_time_leaves_torchs_meta_kernels_unloaded(dac16_checkpoint):
    import subprocess
    import sys

    path, _ = dac16_checkpoint
    check = ("import sys, torch\nfrom evalkit.codecs import parse_spec\nfrom evalkit.runner.plan import plan_variant\n"
             f"assert plan_variant(parse_spec('dac-16khz?weights={path}')).skipped is None\n"
             "print(int('sympy' in sys.modules))")  # torch imported: the check runs in this process
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.stdout.split() == ["0"]  # 73 MiB the process would hold


@pytest.mark.slow
def test_a_process_without_torch_checks_weights_files_in_a_child_with_the_same_answers(tmp_path, dac16_checkpoint):
    """A run's coordinator does not import torch (200 MiB for the whole run) to check a weights file at plan time."""
    import subprocess
    import sys

    good, reference = dac16_checkpoint
    odd = dict(reference)
    del odd["encoder.block.0.bias"]
    bad = tmp_path / "odd.pth"
    torch.save({"state_dict": odd, "metadata": {"kwargs": {"n_codebooks": 12, "sample_rate": 16000}}}, bad)
    check = ("import json, sys\nfrom evalkit.codecs import parse_spec\nfrom evalkit.runner.plan import plan_variant\n"
             "from evalkit.codecs.safe_load import WeightsFileError\nanswers = []\n"
             "for path in sys.argv[1:]:\n"
             "    try:\n        answers.append(plan_variant(parse_spec(f'dac-16khz?weights={path}')).skipped)\n"
             "    except WeightsFileError as exc:\n        answers.append(str(exc))\n"
             "print(json.dumps([answers, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", check, str(good), str(bad)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    answers, torch_imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert not torch_imported
    assert answers[0] is None
    with pytest.raises(WeightsFileError) as here:  # this process has torch: the check runs in it
        plan_variant(parse_spec(f"dac-16khz?weights={bad}"))
    assert answers[1] == str(here.value) and "missing keys: encoder.block.0.bias" in answers[1]


@pytest.mark.slow
def test_a_model_value_missing_from_the_file_is_an_error_not_a_meta_tensor(dac16_checkpoint, monkeypatch):
    from dac import DAC

    path, _ = dac16_checkpoint
    built = DAC.__init__

    def with_a_buffer(self, *args, **kwargs):  # a buffer no state dict holds
        built(self, *args, **kwargs)
        self.register_buffer("window", torch.ones(4), persistent=False)

    monkeypatch.setattr(DAC, "__init__", with_a_buffer)
    with pytest.raises(RuntimeError, match="^dac-16khz: no value in the weights file for window$"):
        build_codec(f"dac-16khz?weights={path}", device="cpu").load()


@pytest.mark.slow  # builds a full-size EnCodec twice
def test_a_half_precision_file_loads_as_copying_it_into_the_model_did(tmp_path):
    reference = build_codec("encodec-24khz?weights=random&seed=4", device="cpu").build_loaded_model()
    half = {k: v.half() if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    path = tmp_path / "half.th"
    torch.save(half, path)
    reference.load_state_dict(half)  # what loading did: the file copied into the float32 model, then folded
    for part in (reference.encoder, reference.decoder):
        fold_weight_norm(part)
    state = build_codec(f"encodec-24khz?weights={path}", device="cpu").load().model.state_dict()
    expected = reference.state_dict()
    assert state.keys() == expected.keys()
    assert all(state[k].dtype == expected[k].dtype and torch.equal(state[k], expected[k]) for k in expected)


@pytest.mark.slow
def test_dac_metadata_of_another_architecture_is_one_line_naming_the_file(dac16_checkpoint):
    path, _ = dac16_checkpoint
    with pytest.raises(WeightsFileError) as info:
        build_codec(f"dac-24khz?weights={path}", device="cpu").load()
    assert one_line(str(info.value)) == (f"{path}: its metadata describes another model than dac-24khz: n_codebooks "
                                         f"12 (official 32); sample_rate 16000 (official 24000)")


def test_dac_metadata_that_is_not_plain_is_one_line(tmp_path):
    state = {"w": torch.zeros(1)}
    for name, metadata, why in [
        ("list.pth", [1, 2], "DAC checkpoint metadata is not a mapping with a 'kwargs' mapping"),
        ("tensor.pth", {"kwargs": {"n_codebooks": torch.tensor([9, 9])}},
         "its metadata describes another model than dac-44khz: n_codebooks tensor([9, 9]) (official 9)"),
    ]:
        path = tmp_path / name
        torch.save({"state_dict": state, "metadata": metadata}, path)
        with pytest.raises(WeightsFileError) as info:
            build_codec(f"dac-44khz?weights={path}", device="cpu").load()
        assert one_line(str(info.value)) == f"{path}: {why}"


@pytest.mark.slow
def test_missing_unexpected_and_misshapen_keys_are_one_line(tmp_path, dac16_checkpoint):
    _, reference = dac16_checkpoint
    state = dict(reference)
    del state["encoder.block.0.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["quantizer.quantizers.0.codebook.weight"] = torch.zeros(512, 8)
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": state, "metadata": {"kwargs": {"n_codebooks": 12, "sample_rate": 16000}}}, path)
    message = (f"{path} does not fit dac-16khz: missing keys: encoder.block.0.bias; unexpected keys: extra.weight; "
               f"shape mismatches: quantizer.quantizers.0.codebook.weight [512, 8] (model [1024, 8])")
    with pytest.raises(WeightsFileError) as info:
        build_codec(f"dac-16khz?weights={path}", device="cpu").load()
    assert one_line(str(info.value)) == message
    with pytest.raises(WeightsFileError, match=re.escape(message)):
        plan_variant(parse_spec(f"dac-16khz?weights={path}"))  # found at config time from the meta-device model


@pytest.mark.slow  # builds a full-size EnCodec
def test_encodec_state_dict_with_a_missing_key_is_one_line(tmp_path):
    state = build_codec("encodec-24khz?weights=random", device="cpu").build_loaded_model().state_dict()
    del state["decoder.model.0.conv.conv.bias"]
    path = tmp_path / "enc.th"
    torch.save(state, path)
    with pytest.raises(WeightsFileError, match=r"^\S*enc.th does not fit encodec-24khz: missing keys: "
                                               r"decoder.model.0.conv.conv.bias$"):
        build_codec(f"encodec-24khz?weights={path}", device="cpu").load()


def test_a_package_archive_as_qincodec_checkpoint_is_refused_unopened(tmp_path):
    marker = tmp_path / "ran"
    path = package_archive(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="evil.pt is a torch.package archive"):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_no_code_running_loader_in_evalkit():
    """Audit: no loader that can import or unpickle arbitrary code, and numpy never unpickles."""
    forbidden = re.compile(r"DAC\.load\(|\.load_package|PackageImporter\(|torch\.hub\.load|load_state_dict_from_url|"
                           r"jit\.load|allow_pickle=True|pickle\.loads?\(|from_pretrained|\.load_model\(")
    hits, np_loads = [], []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        hits += [(path.name, m.group()) for m in forbidden.finditer(text)]
        np_loads += [(path.name, line) for line in text.splitlines() if "np.load(" in line]
    assert not hits, hits
    assert np_loads and all("allow_pickle=False" in line for _, line in np_loads), np_loads
