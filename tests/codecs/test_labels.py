"""Short labels made from spec strings (:mod:`evalkit.codecs.labels`): the forms the issues name, overrides,
uniqueness."""

import pytest

from evalkit.codecs.labels import labels_for, short_label


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


def test_per_channel_rates_are_labelled_per_channel_and_nothing_else_changes():
    assert short_label("qincodec?bitrate_kbps=8&checkpoint=shipped", per_channel=True) == "QinCodec 8 kbps/ch"
    assert short_label("encodec-24khz?bandwidth=1.5&weights=random", per_channel=True) == \
        "EnCodec 24 kHz 1.5 kbps/ch (random weights)"
    assert short_label("klt?base=encodec-24khz&bandwidth=6&dim=72", per_channel=True) == \
        "EnCodec 24 kHz 6 kbps/ch, KLT d=72"
    assert short_label("lowpass?cutoff_hz=3500", per_channel=True) == "3.5 kHz anchor"  # no rate to qualify
    specs = ["qincodec?bitrate_kbps=8", "opus?bitrate_kbps=12"]
    assert labels_for(specs, per_channel={specs[0]}) == {specs[0]: "QinCodec 8 kbps/ch", specs[1]: "Opus 12 kbps"}
    assert labels_for(specs, {specs[0]: "Mine"}, per_channel={specs[0]}) == {specs[0]: "Mine",
                                                                              specs[1]: "Opus 12 kbps"}
