"""Temporary names: every writer's, and the forms the run folder's checks recognise as the run's own."""

import os
from pathlib import Path

from evalkit.runner.layout import CODES_CACHE, DECODED_CACHE, temporary_path
from evalkit.runner.output import CACHE_FILES, TEMPORARY_EXPORTED_PLAN
from evalkit.runner.store import EXPORTED_PLAN_NAME


def test_a_temporary_name_is_hidden_beside_its_file_and_names_the_writer():
    final = Path("/run/cache/decoded") / ("ab" * 16 + ".wav")
    tmp = temporary_path(final)
    assert tmp.parent == final.parent and tmp.name == f".{final.name}.{os.getpid()}.tmp"
    assert tmp.name.startswith(".") and tmp.match(".*.tmp")  # what a starting run sweeps


def test_the_run_folder_recognises_every_temporary_name_as_its_own():
    key = "0123456789abcdef" * 2
    for folder, suffix in ((DECODED_CACHE, ".wav"), (CODES_CACHE, ".npy")):
        assert CACHE_FILES[folder].fullmatch(temporary_path(Path(*folder, key + suffix)).name)
    assert TEMPORARY_EXPORTED_PLAN.fullmatch(temporary_path(Path(EXPORTED_PLAN_NAME)).name)
