"""Intelligibility through speech recognition: WER/CER against the item's transcript, and dWER.

PocketSphinx (CMU, BSD-2-Clause) decodes 16 kHz speech with the US-English acoustic model, dictionary and
language model inside its wheel; English only. Its transcripts of synthetic or telephone-band speech are rough,
so the number that matters for a codec is the *difference* it makes: ``dwer`` is the WER of the decoded
audio's transcript against the reference audio's transcript (0 = the codec changed no recognised word), and
needs no transcript. ``wer``/``cer`` compare the decoded audio's transcript with the manifest's ``text``.
Both texts are normalised the same way (lower case, words of letters and apostrophes) before jiwer scores
them. One transcript per signal serves all three metrics; the reference's is made once per item.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

from evalkit.metrics.registry import ChannelMode, Metric, MetricFailure, MetricInfo, MetricKind
from evalkit.metrics.speech import SPEECH, SPEECH_RATE, SignalMemo, mono

PAPER = "Huggins-Daines et al., PocketSphinx, ICASSP 2006; WER/CER as jiwer (Levenshtein alignment)"
_MEMO = SignalMemo()


def normalize_text(text: str) -> str:
    """Lower case, keep words made of letters and apostrophes, single spaces.

    >>> normalize_text("Congratulations.  You have installed the Asterisk PBX!")
    'congratulations you have installed the asterisk pbx'
    """
    return " ".join(re.findall(r"[a-z']+", text.lower()))


def to_pcm16(signal: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as the little-endian 16-bit PCM PocketSphinx reads (rounded, clipped)."""
    return np.clip(np.round(signal * 32768.0), -32768, 32767).astype("<i2").tobytes()


@lru_cache(maxsize=1)
def _decoder() -> Any:
    """PocketSphinx's default US-English decoder at 16 kHz (loaded once per process)."""
    from pocketsphinx import Decoder

    return Decoder(samprate=SPEECH_RATE, loglevel="FATAL")


def transcribe(signal: np.ndarray) -> str:
    """PocketSphinx's best hypothesis for a 16 kHz mono float32 signal decoded as one utterance ('' if none).

    The decoder's feature extraction is reset first, so the transcript is the one a freshly loaded decoder gives,
    whatever was decoded before.
    """
    def analyse(x: np.ndarray) -> str:
        decoder = _decoder()
        decoder.reinit_feat()  # else the cepstral mean of earlier utterances changes this transcript
        decoder.start_utt()
        decoder.process_raw(to_pcm16(x), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    return _MEMO.get(signal, analyse)


def error_rate(reference_text: str, hypothesis_text: str, unit: str) -> float:
    """jiwer's word (``unit="word"``) or character error rate of normalised texts.

    Raises:
        MetricFailure: the normalised reference text has no words.

    >>> error_rate("the cat sat", "the hat sat down", "word")
    0.6666666666666666
    """
    import jiwer

    reference, hypothesis = normalize_text(reference_text), normalize_text(hypothesis_text)
    if not reference:
        raise MetricFailure("the reference text has no words")
    return float(jiwer.wer(reference, hypothesis) if unit == "word" else jiwer.cer(reference, hypothesis))


def _info(name: str, variant: str, unit: str, description: str, needs_text: bool, display_name: str) -> MetricInfo:
    return MetricInfo(
        name=name, variant=f"{variant}; PocketSphinx en-US, 16 kHz", kind=MetricKind.REFERENCE, unit=unit,
        higher_is_better=False, sample_rate=SPEECH_RATE, min_duration_s=0.3, channels=ChannelMode.MONO,
        library="pocketsphinx", paper=PAPER, description=f"{description} (English-only ASR)",
        value_range=(0.0, None), aligns_internally=True, applies_to=SPEECH, needs_text=needs_text,
        dependencies=("jiwer",),
        display_name=display_name)


class TranscriptError(Metric):
    """WER or CER of the decoded signal's transcript against the item's transcript (manifest ``text``)."""

    def __init__(self, unit: str):
        self.unit = unit
        word = unit == "word"
        self.info = _info("wer" if word else "cer", "vs the manifest transcript",
                          "word error rate" if word else "character error rate",
                          "errors of the decoded audio's transcript against the item's known text", True,
                          "WER" if word else "CER")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any], *, text: str) -> float:
        return error_rate(text, transcribe(mono(degraded, "degraded")), self.unit)


class DeltaWer(Metric):
    """dWER: WER of the decoded signal's transcript against the reference signal's transcript."""

    def __init__(self) -> None:
        self.info = _info("dwer", "decoded vs reference transcript", "word error rate",
                          "words the codec changed: WER of the decoded audio's transcript against the "
                          "reference audio's transcript", False, "dWER")

    def compute(self, reference: np.ndarray, degraded: np.ndarray, cache: dict[Any, Any]) -> float:
        if "transcript" not in cache:  # once per item: the whole reference is the same for every variant
            cache["transcript"] = transcribe(mono(reference, "reference"))
        if not normalize_text(cache["transcript"]):
            raise MetricFailure("the recogniser found no words in the reference")
        return error_rate(cache["transcript"], transcribe(mono(degraded, "degraded")), "word")
