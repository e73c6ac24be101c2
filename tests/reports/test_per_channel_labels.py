"""A mono codec coding a stereo item channel by channel spends its nominal rate per channel: every label people
read says ``kbps/ch`` (summary, its JSON, report tables and figures, the listening test prepared from the run),
joint-stereo codecs and runs with mono items only keep ``kbps``; the kbps column stays the measured rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evalkit.cli import main
from evalkit.reports.rundata import load_run

RATE = 24000
MONO_CODEC = "encodec-24khz?bandwidth=1.5&weights=random"  # a mono model: stereo items go channel by channel
JOINT_CODEC = "opus?bitrate_kbps=12"  # codes stereo jointly


def _run(root: Path, stereo: bool = True) -> Path:
    """A mono and (``stereo``) a stereo 1 s item through a mono codec, a joint-stereo codec and an anchor."""
    from evalkit.runner import load_config, run_evaluation

    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(3)
    t = np.arange(RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(RATE)
    sf.write(data / "mono.wav", tone.astype(np.float32), RATE)
    if stereo:
        sf.write(data / "stereo.wav", np.stack([tone, np.roll(tone, 120) * 0.5], axis=1).astype(np.float32), RATE)
    specs = [MONO_CODEC, JOINT_CODEC, "lowpass?cutoff_hz=3500"]
    codecs = "\n".join(f'  - spec: "{s}"' for s in specs)
    (root / "run.yaml").write_text(f'dataset: {{folder: data, glob: "*.wav"}}\ncodecs:\n{codecs}\n'
                                   "metrics: [si_sdr]\noutput: run\nworkers: 0\n")
    run_evaluation(*load_config(root / "run.yaml"), progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def stereo_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("per-channel"))


def _spec(run, family: str) -> str:
    return next(s for s in run.summary["codec_spec"].unique() if s.startswith(family))


@pytest.mark.slow  # runs EnCodec on stereo items
def test_run_labels_say_per_channel_for_a_mono_codec_on_stereo_items(stereo_run):
    run = load_run(stereo_run)
    mono, joint = _spec(run, "encodec-24khz"), _spec(run, "opus")
    assert run.per_channel_specs == {mono}
    labels = run.labels()
    assert labels[mono] == "EnCodec 24 kHz 1.5 kbps/ch (random weights)"
    assert labels[joint] == "Opus 12 kbps"
    assert run.bitrates[mono] == pytest.approx((1.5 + 2 * 1.5) / 2)  # measured: 1.5 (mono) and 3.0 (stereo)


@pytest.mark.slow  # runs EnCodec on stereo items
def test_summary_table_and_json_label_per_channel(stereo_run, capsys):
    assert main(["summary", str(stereo_run)]) == 0
    table = capsys.readouterr().out
    assert "EnCodec 24 kHz 1.5 kbps/ch" in table and "Opus 12 kbps/ch" not in table
    assert main(["summary", str(stereo_run), "--json"]) == 0
    labels = {v["codec_spec"]: v["label"] for v in json.loads(capsys.readouterr().out)["variants"]}
    assert labels[next(s for s in labels if s.startswith("encodec"))].startswith("EnCodec 24 kHz 1.5 kbps/ch")
    assert labels[next(s for s in labels if s.startswith("opus"))] == "Opus 12 kbps"


@pytest.mark.slow  # runs EnCodec on stereo items
def test_report_tables_and_figures_label_per_channel(stereo_run):
    from evalkit.reports import plots, tables
    from evalkit.reports.scoreboard import variant_labels

    run = load_run(stereo_run)
    mono = _spec(run, "encodec-24khz")
    labels = variant_labels(run)
    assert labels[mono].startswith("EnCodec 24 kHz 1.5 kbps/ch")
    assert next(r for r in tables.metric_table(run, labels=labels)["rows"] if r["spec"] == mono)["label"] == \
        labels[mono]
    assert next(r for r in tables.speed_rows(run)[0] if r["spec"] == mono)["label"] == labels[mono]
    ticks = [t.get_text() for t in plots.metric_figure(run, "si_sdr").axes[0].get_yticklabels()]
    assert any("1.5 kbps/ch" in t for t in ticks) and not any("12 kbps/ch" in t for t in ticks)
    legend = plots.perplexity_figure(run).axes[0].get_legend_handles_labels()[1]
    assert any("1.5 kbps/ch" in t for t in legend)


@pytest.mark.slow  # runs EnCodec on stereo items
def test_listening_test_prepared_from_the_run_labels_per_channel(stereo_run, tmp_path, capsys):
    out = tmp_path / "test"
    assert main(["listen", "prepare", "--run", str(stereo_run), "--design", "mushra", "--listeners", "2",
                 "--out", str(out)]) == 0
    labels = json.loads((out / "test.json").read_text())["labels"]
    mono = next(n for n in labels if n.startswith("encodec"))
    assert labels[mono] == "EnCodec 24 kHz 1.5 kbps/ch (random weights)"
    assert labels[next(n for n in labels if n.startswith("opus"))] == "Opus 12 kbps"
    # the report's listening section and its figures show the test's labels
    from evalkit.listening.model import STORE_FILE, load_definition
    from evalkit.listening.storage import ListeningStore
    from evalkit.reports.listening_data import load_listening
    from evalkit.reports.listening_section import listening_context
    from tests.listening.storage.test_storage import _events

    definition = load_definition(out)
    with ListeningStore(out / STORE_FILE) as store:
        for _ in range(2):
            p = store.create_participant(definition)
            for index, trial in enumerate(definition.trials_for(p.slot)):
                scores = {sid: 100.0 if definition.stimuli[sid].condition == "reference" else 40.0
                          for sid in trial.stimuli}
                store.submit(definition, p, index, scores=scores, events=_events(trial))
    context = listening_context(load_listening(out, load_run(stereo_run)))
    assert labels[mono] in {row["label"] for row in context["rows"]}
    assert any(labels[mono] in figure["svg"] for figure in context["figures"])


@pytest.mark.slow  # runs EnCodec on stereo items
def test_mono_items_keep_the_plain_rate(tmp_path, capsys):
    run = load_run(_run(tmp_path, stereo=False))
    assert run.per_channel_specs == set()
    assert run.labels()[_spec(run, "encodec-24khz")] == "EnCodec 24 kHz 1.5 kbps (random weights)"
    assert main(["summary", str(run.run_dir)]) == 0
    assert "kbps/ch" not in capsys.readouterr().out
