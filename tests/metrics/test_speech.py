"""Speech metrics (DNSMOS, speaker similarity, WER/CER/dWER) against their libraries called directly.

Clips are 1 s of demo speech at 16 kHz (DNSMOS: 0.6 s, which the library tiles into exactly one 9.01 s window),
passed at 16 kHz so that evalkit and the direct calls see the same arrays.
"""

import numpy as np
import pytest

from evalkit import audio
from evalkit.codecs.anchors import lowpass
from evalkit.metrics import MetricKind, Reference, applicable_metrics, get_metric, score_pair
from evalkit.metrics.asr import error_rate, normalize_text
from tests.conftest import DEMO

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")  # webrtcvad, imported by resemblyzer
RATE = 16_000
SPEECH_METRICS = ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "speaker_similarity", "wer", "cer",
                  "dwer"]


def _clip(name: str, start_s: float = 1.0, seconds: float = 1.0) -> np.ndarray:
    clip = audio.load(DEMO / f"{name}.flac", channel_policy="mono")
    x = audio.resample(clip.samples, clip.sample_rate, RATE)
    return np.ascontiguousarray(x[:, int(start_s * RATE): int((start_s + seconds) * RATE)])


@pytest.fixture(scope="module")
def voices():
    """1 s of the Asterisk voice (recorded, female), its 3.5 kHz low-passed copy, 1 s of Festival's SLT voice."""
    female = _clip("speech_demo-congrats")
    return female, lowpass(female, 3500, RATE).astype(np.float32), _clip("speech_slt_stella")


def _score(names, ref, deg, text=None):
    results = score_pair(Reference(ref, RATE, text=text), deg, RATE, [get_metric(n) for n in names])
    return {r.metric: r for r in results}


@pytest.mark.slow
def test_dnsmos_equals_speechmos_run():
    from speechmos import dnsmos

    x = _clip("speech_demo-congrats", 1.0, 0.6)
    ours = _score(SPEECH_METRICS[:4], x, x)
    direct = dnsmos.run(x[0], RATE)
    for name, key in zip(SPEECH_METRICS[:4], ["ovrl_mos", "sig_mos", "bak_mos", "p808_mos"], strict=True):
        assert ours[name].ok and ours[name].value == pytest.approx(float(direct[key]), abs=1e-5), name
        assert 1.0 < ours[name].value < 5.0
    assert ours["dnsmos_ovrl"].preparation.resampler is None and ours["dnsmos_ovrl"].preparation.rate == RATE


@pytest.mark.slow  # loads a speech model (Resemblyzer or PocketSphinx)
def test_speaker_similarity_equals_resemblyzer(voices):
    from resemblyzer import VoiceEncoder, preprocess_wav

    female, _, slt = voices
    encoder = VoiceEncoder("cpu", verbose=False)
    a, b = (encoder.embed_utterance(preprocess_wav(x[0])) for x in (female, slt))
    direct = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert _score(["speaker_similarity"], female, slt)["speaker_similarity"].value == pytest.approx(direct, abs=1e-5)


@pytest.mark.slow  # loads a speech model (Resemblyzer or PocketSphinx)
def test_speaker_similarity_identity_and_voices(voices):
    female, female_lowpassed, slt = voices
    same = _score(["speaker_similarity"], female, female)["speaker_similarity"].value
    lowpassed = _score(["speaker_similarity"], female, female_lowpassed)["speaker_similarity"].value
    other_voice = _score(["speaker_similarity"], female, slt)["speaker_similarity"].value
    assert same == pytest.approx(1.0, abs=1e-5)
    assert other_voice < lowpassed - 0.1, (other_voice, lowpassed)


def _pocketsphinx(x: np.ndarray) -> str:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RATE, loglevel="FATAL")  # fresh: no state from earlier utterances
    decoder.start_utt()
    decoder.process_raw(np.clip(np.round(x[0] * 32768), -32768, 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


@pytest.mark.slow
def test_asr_metrics_equal_pocketsphinx_and_jiwer(voices):
    import jiwer

    female, female_lowpassed, _ = voices
    text = "You have successfully installed"
    ours = _score(["wer", "cer", "dwer"], female, female_lowpassed, text=text)
    ref_words, deg_words = _pocketsphinx(female), _pocketsphinx(female_lowpassed)
    assert deg_words  # the recogniser hears something in 1 s of clean speech
    truth = " ".join(text.lower().split())
    assert ours["wer"].value == pytest.approx(jiwer.wer(truth, deg_words), abs=1e-12)
    assert ours["cer"].value == pytest.approx(jiwer.cer(truth, deg_words), abs=1e-12)
    assert ours["dwer"].value == pytest.approx(jiwer.wer(ref_words, deg_words), abs=1e-12)
    assert _score(["dwer"], female, female)["dwer"].value == 0.0


@pytest.mark.slow  # loads a speech model (Resemblyzer or PocketSphinx)
def test_transcript_does_not_depend_on_earlier_utterances(voices):
    from evalkit.metrics import asr

    female, _, slt = voices
    asr.transcribe(female)  # the shared decoder has heard another voice first
    asr._MEMO._results.clear()
    assert asr.transcribe(slt) == _pocketsphinx(slt)


def test_wer_cer_hand_computed():
    # "the cat sat on the mat" -> "the cat sit on mat": 1 substitution + 1 deletion over 6 words
    assert error_rate("The cat sat on the mat.", "the cat sit on mat", "word") == pytest.approx(2 / 6)
    # "abc abd" (7 characters) -> "abc ab": 1 deletion
    assert error_rate("abc abd", "abc ab", "char") == pytest.approx(1 / 7)
    # 1 insertion over 2 words; an empty hypothesis deletes everything
    assert error_rate("press one", "press one two", "word") == pytest.approx(1 / 2)
    assert error_rate("press one", "", "word") == 1.0
    assert normalize_text("Waldo's  premier-provider, PBX!") == "waldo's premier provider pbx"


@pytest.mark.slow  # loads a speech model (Resemblyzer or PocketSphinx)
def test_failures_are_nan_with_reasons(voices):
    female = voices[0]
    silent = np.zeros_like(female)
    results = _score(SPEECH_METRICS, female, silent)
    assert all(np.isnan(r.value) and "silent" in r.reason for n, r in results.items() if n not in ("wer", "cer"))
    assert all("no transcript" in results[n].reason for n in ("wer", "cer"))  # no text given
    short = _score(["dnsmos_ovrl", "speaker_similarity", "dwer"], female[:, :2000], female[:, :2000])
    assert all(np.isnan(r.value) and "too short" in r.reason for r in short.values())
    with pytest.raises(Exception, match="reference text has no words"):
        error_rate("...", "hello", "word")


def test_metadata_and_applicability():
    infos = {n: get_metric(n).info for n in SPEECH_METRICS}
    assert all(i.sample_rate == RATE and i.applies_to == "speech" and i.aligns_internally for i in infos.values())
    assert {n for n, i in infos.items() if i.kind is MetricKind.NO_REFERENCE} == set(SPEECH_METRICS[:4])
    assert {n for n, i in infos.items() if i.needs_text} == {"wer", "cer"}
    assert all("English" in infos[n].description for n in ("wer", "cer", "dwer"))
    assert "onnxruntime" in infos["dnsmos_ovrl"].library_version()
    speech = {m.info.name for m in applicable_metrics(44_100, category="speech")}
    music = {m.info.name for m in applicable_metrics(44_100, category="music")}
    assert set(SPEECH_METRICS) <= speech and not set(SPEECH_METRICS) & music and "mel_distance" in music
