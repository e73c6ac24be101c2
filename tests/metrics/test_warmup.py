"""Warm-up runs once per process and per metric, before the first item, and is reported apart from it."""

import numpy as np

from evalkit.metrics import Reference, score_pair
from evalkit.metrics.registry import ChannelMode, Metric, MetricInfo, MetricKind
from evalkit.metrics.warmup import synthetic_pair


class Counting(Metric):
    def __init__(self, name: str):
        self.info = MetricInfo(name, "", MetricKind.REFERENCE, "", True, 16_000, 0.0, ChannelMode.MONO, "evalkit",
                               "", "")
        self.inputs: list[int] = []

    def compute(self, reference, degraded, cache):
        self.inputs.append(reference.shape[1])
        return 1.0


def test_first_use_warms_up_once_and_reports_it_apart(rng):
    metric = Counting("counting_for_warmup_test")
    ref = (0.1 * rng.standard_normal((1, 8000))).astype(np.float32)
    first = score_pair(Reference(ref, 16_000), ref, 16_000, [metric])[0]
    second = score_pair(Reference(ref, 16_000), ref, 16_000, [metric])[0]
    # one call on the 1 s synthetic pair at the metric's rate, then one per 0.5 s item
    assert metric.inputs == [16_000, 8000, 8000] and synthetic_pair(16_000)[0].shape == (1, 16_000)
    assert first.warmup_s > 0 and second.warmup_s == 0.0 and first.value == second.value == 1.0
