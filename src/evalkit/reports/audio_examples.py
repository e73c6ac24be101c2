"""Audio examples for the report: the same excerpt of a few items, reference and every decoded variant, each
compressed with Opus (PyAV, in memory) and inlined as a ``data:`` URI, so the HTML file needs no other file.

The excerpt is the loudest ``excerpt_s`` window of the reference (RMS, 0.25 s steps), with 10 ms fades. Opus at
64 kbps per channel is near-transparent but still a second lossy step: the report says so, and the
exact decoded audio stays in the run's ``cache/decoded``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit import audio
from evalkit.reports.rundata import REFERENCE_SPEC, RunData

OPUS_RATE = 48_000
OPUS_KBPS_PER_CHANNEL = 64
FADE_S = 0.01


@dataclass(frozen=True)
class Clip:
    codec_spec: str  # "reference" for the original
    weights: str
    data_uri: str
    kbytes: float


@dataclass(frozen=True)
class Example:
    item: str
    category: str
    start_s: float
    seconds: float
    clips: tuple[Clip, ...]
    missing: tuple[str, ...]  # variants whose decoded audio could not be read


def loudest_window(x: np.ndarray, sample_rate: int, seconds: float, step_s: float = 0.25) -> int:
    """Start sample of the ``seconds`` window with the highest RMS (0 when the signal is shorter).

    >>> x = np.zeros((1, 1000)); x[0, 600:700] = 1.0
    >>> loudest_window(x, 1000, 0.2, step_s=0.1)
    500
    """
    length, step = int(seconds * sample_rate), max(1, int(step_s * sample_rate))
    if x.shape[-1] <= length:
        return 0
    energy = np.concatenate([[0.0], np.cumsum((x.astype(np.float64) ** 2).sum(axis=0))])
    starts = np.arange(0, x.shape[-1] - length + 1, step)
    return int(starts[np.argmax(energy[starts + length] - energy[starts])])


def _faded(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(FADE_S * sample_rate), x.shape[-1] // 2)
    if n:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        x = x.copy()
        x[..., :n] *= ramp
        x[..., -n:] *= ramp[::-1]
    return x


def opus_data_uri(x: np.ndarray, sample_rate: int) -> str:
    """``[channels, samples]`` (mono or stereo) → ``data:audio/ogg;codecs=opus;base64,...``."""
    from evalkit.runner.transcode import opus_packets

    channels = min(x.shape[0], 2)
    x = x[:2] if x.shape[0] > 2 else x
    wav = audio.resample(x.astype(np.float32), sample_rate, OPUS_RATE) if sample_rate != OPUS_RATE else x
    data = opus_packets(np.clip(wav, -1, 1).astype(np.float32), OPUS_RATE, OPUS_KBPS_PER_CHANNEL * channels)
    return "data:audio/ogg;codecs=opus;base64," + base64.b64encode(data).decode("ascii")


def choose_items(run: RunData, max_items: int) -> list[str]:
    """Up to ``max_items`` items, one per category first (in id order), among items with decoded units."""
    if run.units.empty or "status" not in run.units:
        return []
    ok = run.units[(run.units["status"] == "ok") & (run.units["codec_spec"] != REFERENCE_SPEC)]
    if ok.empty:
        return []
    per_item = ok.groupby("item_id")["codec_spec"].nunique()
    complete = sorted(per_item[per_item == per_item.max()].index)
    categories = ok.drop_duplicates("item_id").set_index("item_id")["category"].fillna("")
    chosen: list[str] = []
    for category in dict.fromkeys(categories[complete]):
        chosen.append(next(i for i in complete if categories[i] == category))
    chosen += [i for i in complete if i not in chosen]
    return chosen[:max_items]


def audio_examples(run: RunData, max_items: int = 3, excerpt_s: float = 5.0) -> list[Example]:
    """The report's inline examples (empty when the run has no decoded audio)."""
    examples = []
    for item in choose_items(run, max_items):
        rows = run.units[(run.units["item_id"] == item) & (run.units["status"] == "ok")
                         & (run.units["codec_spec"] != REFERENCE_SPEC)].to_dict("records")
        ref_path = Path(rows[0]["item_path"])
        try:
            ref = audio.load(ref_path if ref_path.is_absolute() else run.run_dir / ref_path)
        except (audio.AudioError, OSError, RuntimeError):
            continue
        # decoded audio covers what the unit coded (the first segment with dataset.segment_seconds)
        coded = min(ref.samples.shape[-1], int(round(float(rows[0]["input_seconds"]) * ref.sample_rate)))
        ref = type(ref)(ref.samples[:, :coded], ref.sample_rate) if coded < ref.samples.shape[-1] else ref
        start = loudest_window(ref.samples, ref.sample_rate, excerpt_s)
        stop = start + int(excerpt_s * ref.sample_rate)
        cut = slice(start, stop)
        clips = [Clip(REFERENCE_SPEC, "none", uri := opus_data_uri(_faded(ref.samples[:, cut], ref.sample_rate),
                                                                     ref.sample_rate), len(uri) * 3 / 4 / 1000)]
        missing = []
        for row in sorted(rows, key=lambda r: r["codec_spec"]):
            path = run.reader.decoded_path(row)
            if path is None:
                missing.append(row["codec_spec"])
                continue
            try:
                decoded = audio.load(path, allow_silent=True)
            except (audio.AudioError, OSError, RuntimeError):
                missing.append(row["codec_spec"])
                continue
            if decoded.samples.shape[-1] < ref.samples.shape[-1]:
                missing.append(row["codec_spec"])  # shorter than the reference it should match
                continue
            uri = opus_data_uri(_faded(decoded.samples[:, cut], decoded.sample_rate), decoded.sample_rate)
            clips.append(Clip(row["codec_spec"], row.get("weights") or "none", uri, len(uri) * 3 / 4 / 1000))
        seconds = min(excerpt_s, ref.samples.shape[-1] / ref.sample_rate)
        examples.append(Example(item, str(rows[0].get("category") or ""), start / ref.sample_rate, seconds,
                                tuple(clips), tuple(missing)))
    return examples
