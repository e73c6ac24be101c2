"""What the speech metrics share: 16 kHz mono input, the ``speech`` category, and a memo of model outputs.

The speech metrics (:mod:`~evalkit.metrics.dnsmos`, :mod:`~evalkit.metrics.speaker`, :mod:`~evalkit.metrics.asr`)
run pretrained models that ship inside their PyPI wheels. Each model is loaded once per process (on first use,
never at import). Several metrics read one model pass (the four DNSMOS scores; WER, CER and dWER read one
transcript), so a pass is memoised by the content of the signal it analysed: a degraded signal is analysed
once per unit, whatever the number of metrics reading it.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from evalkit.metrics.registry import MetricFailure

SPEECH = "speech"  # the manifest category the speech metrics apply to (`metrics: applicable`)
SPEECH_RATE = 16_000  # every model here is trained on 16 kHz audio


def mono(signal: np.ndarray, what: str) -> np.ndarray:
    """The single channel of a prepared ``[1, samples]`` signal as contiguous float32.

    Raises:
        MetricFailure: the signal is all zeros (no model output means anything for silence).

    >>> mono(np.ones((1, 3)), "degraded").dtype
    dtype('float32')
    """
    x = np.ascontiguousarray(signal[0], dtype=np.float32)
    if not np.any(x):
        raise MetricFailure(f"{what} signal is silent (all samples are zero)")
    return x


def model_threads() -> int:
    """Threads for model inference: ``OMP_NUM_THREADS`` when set, else 1.

    The models are small (one 9 s window, a few 1.6 s windows): on a shared machine more threads mostly wait
    for each other (GE2E on 8 s of speech, loaded 2-core machine: 0.3 s with 1 thread, 4-12 s with 2).
    """
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads inside the block, restoring the previous setting after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SignalMemo:
    """Results of one analysis (a model pass) for the few most recently analysed signals, keyed by content.

    Bounded (least recently used first out), per process. The reference of an item is asked for by every
    variant, so it stays while the variants' signals come and go.

    >>> memo, calls = SignalMemo(2), []
    >>> x = np.zeros(4, np.float32)
    >>> memo.get(x, lambda s: calls.append(1) or len(s)), memo.get(x.copy(), lambda s: calls.append(1)), calls
    (4, 4, [1])
    """

    def __init__(self, size: int = 16):
        self.size = size
        self._results: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, signal: np.ndarray, analyse: Callable[[np.ndarray], Any]) -> Any:
        key = hashlib.blake2b(np.ascontiguousarray(signal).tobytes(), digest_size=16,
                              person=str(signal.dtype).encode()[:16]).digest()
        if key in self._results:
            self._results.move_to_end(key)
            return self._results[key]
        result = analyse(signal)
        self._results[key] = result
        if len(self._results) > self.size:
            self._results.popitem(last=False)
        return result
