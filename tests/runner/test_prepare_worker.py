"""A pool worker loads the run's array transforms while the coordinator plans; model codecs wait for a unit."""

import subprocess
import sys

import pytest

from evalkit.runner import work


def test_prepare_worker_loads_ffmpeg_codecs_and_anchors_only(monkeypatch):
    monkeypatch.setattr(work, "CODECS", type(work.CODECS)())
    work.prepare_worker(("lowpass?cutoff_hz=3500", "opus?bitrate_kbps=12", "encodec-24khz?bandwidth=1.5",
                                "nosuchfamily?x=1"), "auto")
    assert sorted(spec for spec, _ in work.CODECS.codecs) == ["lowpass?cutoff_hz=3500", "opus?bitrate_kbps=12"]
    assert not work.CODECS.models  # no model loaded, and an unknown spec is left for its units to report


@pytest.mark.parametrize(("specs", "torch"), [(["opus?bitrate_kbps=12"], False),
                                              (["opus?bitrate_kbps=12", "encodec-24khz?bandwidth=1.5"], True)])
def test_prepare_worker_imports_torch_only_for_a_model_codec(specs, torch):
    probe = ("import sys; from evalkit.runner.work import prepare_worker; "
             f"prepare_worker({tuple(specs)!r}, 'auto'); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(torch)


def test_prepare_worker_imports_what_the_metrics_import_on_first_use():
    probe = ("import sys; from evalkit.runner.work import prepare_worker; "
             "prepare_worker(('lowpass?cutoff_hz=3500',), 'auto', ('si_sdr', 'no_such_metric')); "
             "a = 'torch' in sys.modules; "
             "prepare_worker((), 'auto', ('mel_distance',)); print(a, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_prepare_worker_imports_stoi_and_visqol_libraries_out_of_the_first_units_warm_up():
    """pystoi and visqol-python import scipy.signal (and numba): over half a second each, before the first task."""
    probe = ("import sys; from evalkit.runner.work import prepare_worker; "
             "names = ('pystoi', 'visqol'); a = [n in sys.modules for n in names]; "
             "prepare_worker((), 'auto', ('estoi', 'visqol_speech')); print(*a, *[n in sys.modules for n in names])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True", "True"]
