"""DNSMOS: Microsoft's no-reference speech quality models (P.835 SIG/BAK/OVRL and P.808), via ``speechmos``.

The ONNX models ship inside the ``speechmos`` wheel (MIT) and run with onnxruntime on the CPU. The library's
own scoring is used unchanged: 9.01 s windows hopped by 1 s (a shorter signal is repeated until it fills one
window), P.835's polynomial mapping, and the mean over windows. One pass gives all four scores; the four
metrics read it from a memo, so a signal is scored once. DNSMOS is no-reference: the runner also scores each
item's reference once, and the exports show the codec's delta.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.metrics.registry import ChannelMode, Metric, MetricInfo, MetricKind
from evalkit.metrics.speech import SPEECH, SPEECH_RATE, SignalMemo, model_threads, mono

P835_PAPER = "Reddy, Gopal & Cutler, DNSMOS P.835, ICASSP 2022"
P808_PAPER = "Reddy, Gopal & Cutler, DNSMOS, ICASSP 2021"
SCORES = {  # metric suffix -> (speechmos key, variant, paper)
    "ovrl": ("ovrl_mos", "P.835 overall quality (OVRL)", P835_PAPER),
    "sig": ("sig_mos", "P.835 speech signal quality (SIG)", P835_PAPER),
    "bak": ("bak_mos", "P.835 background noise (BAK)", P835_PAPER),
    "p808": ("p808_mos", "P.808 overall quality", P808_PAPER),
}
_MEMO = SignalMemo()


@lru_cache(maxsize=1)
def _model() -> Any:
    """The library's DNSMOS scorer with its two ONNX sessions limited to this worker's threads (once per process)."""
    import onnxruntime as ort
    from speechmos import dnsmos

    models = Path(dnsmos.__file__).parent / "dnsmos_models"  # the paths `speechmos.dnsmos.run` uses

    class Scorer(dnsmos.DNSMOS):
        def __init__(self) -> None:  # the library's constructor, with session options
            options = ort.SessionOptions()
            options.intra_op_num_threads = model_threads()
            options.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            self.primary_model_path = str(models / "sig_bak_ovr.onnx")
            self.onnx_sess = ort.InferenceSession(self.primary_model_path, options, providers=providers)
            self.p808_onnx_sess = ort.InferenceSession(str(models / "model_v8.onnx"), options, providers=providers)

    return Scorer()


def dnsmos_scores(signal: np.ndarray) -> dict[str, float]:
    """All four DNSMOS scores of one 16 kHz mono float32 signal (the library's ``dnsmos.run(x, 16000)``).

    Samples beyond ±1 are clipped first, as writing the signal to a 16-bit file would (the library rejects them).
    """
    def analyse(x: np.ndarray) -> dict[str, float]:
        result = _model()(np.clip(x, -1.0, 1.0), SPEECH_RATE, False)
        return {key: float(result[key]) for key, _, _ in SCORES.values()}

    return _MEMO.get(signal, analyse)


class Dnsmos(Metric):
    """One of the four DNSMOS scores of the degraded signal (no reference)."""

    # speechmos doubles a short signal until one 9.01 s window fits: 4.6 s becomes 9.2 s, one window of both
    # models (a 1 s warm-up pair becomes 16 s: seven windows, several seconds before the first unit)
    warmup_seconds = 4.6

    def __init__(self, score: str):
        key, variant, paper = SCORES[score]
        self.key = key
        self.info = MetricInfo(
            name=f"dnsmos_{score}", variant=f"{variant}, 16 kHz, speechmos ONNX models", kind=MetricKind.NO_REFERENCE,
            unit="MOS", higher_is_better=True, sample_rate=SPEECH_RATE, min_duration_s=0.5,
            channels=ChannelMode.MONO, library="speechmos", paper=paper,
            description="no-reference speech quality predicted by DNSMOS (trained on noisy and enhanced speech; "
                        "samples beyond ±1 clipped)",
            value_range=(1.0, 5.0), aligns_internally=True, applies_to=SPEECH,
            dependencies=("onnxruntime", "librosa"),
            display_name=f"DNSMOS {'P.808' if score == 'p808' else score.upper()}")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        return dnsmos_scores(mono(degraded, "degraded"))[self.key]
