"""A unit's records are stored as JSON through a shallow conversion: it must write what ``dataclasses.asdict``
(the conversion it replaces) writes, for every kind of value the records hold."""

import dataclasses
import json
from pathlib import Path

import numpy as np

from evalkit.codecs.base import ReconstructionReport
from evalkit.metrics.prepare import AlignedBy, Preparation
from evalkit.runner.store import to_json


@dataclasses.dataclass
class _Inner:
    values: tuple
    where: Path


@dataclasses.dataclass
class _Outer:
    inner: _Inner
    items: list
    table: dict
    nothing: None = None


def _asdict_json(obj) -> str:
    return json.dumps(dataclasses.asdict(obj), default=str)


def test_reconstruction_report_json_equals_asdict():
    report = ReconstructionReport("opus?bitrate_kbps=12", "n/a", "cpu", 44100, 48000, "soxr_vhq", 2, "per-channel",
                                  44100, 48000, 48312, 312, 0, 44100, 0.01, np.float64(0.02), 0.03,
                                  measured_bitrate_bps=np.float32(11987.5), chunked={"chunk_s": 10.0, "context_s": 1})
    assert to_json(report) == _asdict_json(report)


def test_preparation_json_equals_asdict():
    prep = Preparation(16000, 44100, 48000, "soxr_vhq", "mono", np.int64(-12), 16000, 3, 5, AlignedBy.METRIC,
                       delay_confidence=np.float32(0.75), delay_note="no reliable delay", segment_s=10.0)
    assert to_json(prep) == _asdict_json(prep)


def test_nested_records_json_equals_asdict():
    record = _Outer(_Inner((1, 2.5, "x"), Path("/tmp/a.wav")), [_Inner((), Path("b")), {"k": (3, 4)}],
                    {"a": [1, 2], "b": {"c": np.float32(1.5)}, 3: "int key"})
    assert to_json(record) == _asdict_json(record)
    assert to_json({"plain": [1, 2]}) == json.dumps({"plain": [1, 2]})


def test_a_whole_pairs_preparation_json_is_asdict_without_the_segment_fields():
    from evalkit.runner.work import SEGMENT_FIELDS, _preparation_json

    prep = Preparation(16000, 44100, 48000, "soxr_vhq", "mono", np.int64(-12), 16000, 3, 5, AlignedBy.EVALKIT,
                       delay_confidence=np.float32(0.75), delay_note=None)
    expected = {k: v for k, v in dataclasses.asdict(prep).items() if k not in SEGMENT_FIELDS}
    assert _preparation_json(prep) == json.dumps(expected, default=str)
