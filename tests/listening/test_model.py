"""The test definition's record (:mod:`evalkit.listening.model`): built from named fields only, and saved and
loaded back unchanged."""

from __future__ import annotations

import json

import pytest

from evalkit.listening import model
from evalkit.listening.model import DEFINITION_FILE, Design, Stimulus, Trial, load_definition


def _fields() -> dict:
    stimuli = {"s1": Stimulus("s1", "i0", "c1", 16000, 1, 16000), "s2": Stimulus("s2", "i0", "c2", 16000, 1, 16000)}
    return {"design": Design.AB, "seed": 3, "run_dir": "run", "items": ("i0",), "conditions": {"c1": "c1", "c2": "c2"},
            "stimuli": stimuli, "slots": ((Trial("i0", ("s1", "s2")),),), "pairs": (("c1", "c2"),),
            "labels": {"c1": "one", "c2": "two"}}


def test_a_definition_is_built_from_named_fields_only():
    fields = _fields()
    with pytest.raises(TypeError, match="positional"):
        model.TestDefinition(*fields.values())
    assert model.TestDefinition(**fields).pairs == (("c1", "c2"),)


def test_a_saved_definition_loads_back_equal(tmp_path):
    definition = model.TestDefinition(**_fields())
    definition.save(tmp_path)
    assert json.loads((tmp_path / DEFINITION_FILE).read_text())["design"] == "ab"
    assert load_definition(tmp_path, check_files=False) == definition
