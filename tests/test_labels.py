"""Short labels: the forms the issues name, overrides, uniqueness."""

import pytest

from evalkit.labels import labels_for, parse_label_options, short_label


@pytest.mark.parametrize(("spec", "label"), [
    ("qincodec?beam=0&bitrate_kbps=8&candidates=0&checkpoint=shipped&n_steps=8", "QinCodec 8 kbps"),
    ("opus?application=audio&bitrate_kbps=12", "Opus 12 kbps"),
    ("lowpass?cutoff_hz=3500", "3.5 kHz anchor"),
    ("lowpass?cutoff_hz=7000", "7 kHz anchor"),
    ("lowpass?cutoff_hz=2000", "2 kHz low-pass"),  # only BS.1534-3's two cut-offs are its anchors
    ("dac-44khz?n_codebooks=9&seed=0&weights=pretrained", "DAC 44.1 kHz 7.75 kbps"),
    ("opus?application=voip&bitrate_kbps=6", "Opus 6 kbps (application=voip)"),
    ("encodec-48khz?bandwidth=24&seed=3&weights=random", "EnCodec 48 kHz 24 kbps (random weights, seed 3)"),
])
def test_short_labels(spec, label):
    assert short_label(spec) == label


def test_overrides_match_canonical_specs_and_labels_stay_unique():
    specs = ["opus?application=audio&bitrate_kbps=12", "opus?application=voip&bitrate_kbps=12"]
    labels = labels_for(specs, {"opus?bitrate_kbps=12": "Mine"})
    assert labels[specs[0]] == "Mine"
    clash = labels_for(specs, {specs[0]: "Same", specs[1]: "Same"})
    assert len(set(clash.values())) == 2


def test_label_option_parsing_rejects_missing_name():
    assert parse_label_options(["mp3?bitrate_kbps=64=MP3"]) == {"mp3?bitrate_kbps=64": "MP3"}
    with pytest.raises(ValueError, match="expected SPEC=NAME"):
        parse_label_options(["=x"])
