"""A small real run for the report: 0.6 s excerpts of three demo items (speech, music, other) through the anchors,
Opus, the QinCodec RVQ baseline at two bitrates, its KLT variant and a random-weight EnCodec (codes, random
flag), scored with fast metrics plus DNSMOS (a speech metric with reference rows)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from evalkit import audio

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
ITEMS = {"talk.wav": ("speech_demo-congrats", "speech"), "tune.wav": ("music_guit_em9", "music"),
         "hiss.wav": ("other_vinyl_hiss", "other")}
CODECS = ["lowpass?cutoff_hz=3500", "lowpass?cutoff_hz=7000", "opus?bitrate_kbps=6", "opus?bitrate_kbps=12",
          "qincodec-rvq?bitrate_kbps=4", "qincodec-rvq?bitrate_kbps=8", "klt?base=qincodec-rvq&bitrate_kbps=8&dim=32",
          "encodec-24khz?bandwidth=1.5&weights=random"]
METRICS = ["si_sdr", "mel_distance", "stft_distance", "dnsmos_ovrl"]


# 0.6 s, not 1 s: speechmos doubles a short signal until one 9.01 s DNSMOS window fits, so 0.6 s is one window
# per score (9.6 s) where 1 s was eight (16 s), most of this fixture's cost
def make_report_run(root: Path, seconds: float = 0.6, codecs: list[str] = CODECS,
                    metrics: list[str] = METRICS) -> Path:
    """Write the items and a config under ``root`` and run it (``codecs`` x ``metrics``); returns the run folder."""
    from evalkit.runner import load_config, run_evaluation

    data = root / "data"
    data.mkdir(parents=True)
    lines = ["file,category"]
    for name, (source, category) in ITEMS.items():
        clip = audio.load(DEMO / f"{source}.flac", channel_policy="mono")
        start = clip.sample_rate  # skip the first second (fade-in, silence)
        sf.write(data / name, clip.samples[0, start: start + int(seconds * clip.sample_rate)], clip.sample_rate,
                 subtype="FLOAT")
        lines.append(f"{name},{category}")
    (data / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    grid = "\n".join(f'  - spec: "{s}"' for s in codecs)
    config = root / "run.yaml"
    config.write_text(f'dataset: {{folder: data, glob: "*.wav"}}\ncodecs:\n{grid}\n'
                      f"metrics: [{', '.join(metrics)}]\noutput: run\nworkers: 0\n")
    cfg, specs = load_config(config)
    run_evaluation(cfg, specs, progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def report_run(tmp_path_factory) -> Path:
    return make_report_run(tmp_path_factory.mktemp("report-run"))
