"""Variant records: one per family, built from the spec in ``codecs/`` (labels, curve, role, nominal rate,
channels, weights), stable through JSON."""

from __future__ import annotations

import pytest

from evalkit.codecs.records import VariantRecord, VariantRole, describe
from tests.plugin_fixtures import write_plugin_file


@pytest.mark.parametrize(("spec", "label", "curve", "role", "kbps", "channels"), [
    ("encodec-24khz?bandwidth=6&seed=0&weights=random", "EnCodec 24 kHz 6 kbps (random weights)",
     "encodec-24khz:weights=random", VariantRole.CODEC, 6.0, 1),
    ("dac-44khz?n_codebooks=9&seed=0&weights=pretrained", "DAC 44.1 kHz 7.75 kbps", "dac-44khz",
     VariantRole.CODEC, 9 * 10 * 44100 / 512 / 1000, 1),  # 9 codebooks x 10 bits x 86.13 frames/s
    ("qincodec?bitrate_kbps=8", "QinCodec 8 kbps", "qincodec", VariantRole.CODEC, 8.0, 1),
    ("opus?bitrate_kbps=12", "Opus 12 kbps", "opus", VariantRole.CODEC, 12.0, None),
    ("aac?bitrate_kbps=64", "AAC 64 kbps", "aac", VariantRole.CODEC, 64.0, None),
    ("mp3?bitrate_kbps=64", "MP3 64 kbps", "mp3", VariantRole.CODEC, 64.0, None),
    ("lowpass?cutoff_hz=7000", "7 kHz anchor", "lowpass", VariantRole.ANCHOR, None, None),
    ("decoded?bitrate_kbps=6&family=mine&folder=/d&label=mine 6 kbps&length_tolerance_s=0.1", "mine 6 kbps",
     "decoded:mine", VariantRole.DECODED, 6.0, None),
    ("reference", "Reference", "reference", VariantRole.REFERENCE, None, None),
])
def test_records_of_every_builtin_family(spec, label, curve, role, kbps, channels):
    record = describe(spec, "per_channel")
    assert (record.label, record.curve, record.role, record.channels) == (label, curve, role, channels)
    assert record.nominal_kbps == (pytest.approx(kbps) if kbps is not None else None)
    assert record.rate_per_channel == (channels == 1)  # a mono model codes a stereo item channel by channel
    if channels == 1:
        assert record.per_channel_label == label.replace(" kbps", " kbps/ch", 1)
    assert VariantRecord.from_json(record.to_json()) == record


def test_random_weights_and_decoded_folders_say_so():
    random = describe("encodec-24khz?bandwidth=6&seed=0&weights=random")
    assert random.random_weights and random.weights.startswith("random (seed 0)")
    assert not describe("encodec-24khz?bandwidth=6").random_weights
    decoded = describe("decoded?folder=/d&label=theirs&length_tolerance_s=0.1")
    assert decoded.weights == "decoded folder" and decoded.nominal_kbps is None and decoded.curve == "decoded:theirs"


def test_klt_record_holds_its_base_and_kept_dimension():
    record = describe("klt?base=encodec-24khz&bandwidth=6&dim=72&estimator=codebook&n_cov=2")
    assert record.label == "EnCodec 24 kHz 6 kbps, KLT d=72"
    assert (record.curve, record.curve_name) == ("klt:encodec-24khz:dim=72", "EnCodec 24 kHz KLT d=72")
    assert (record.kept_dim, record.statistics, record.group) == ("72", "codebook", "EnCodec 24 kHz KLT")
    assert record.base.codec_spec == "encodec-24khz?bandwidth=6"
    assert record.base.label == "EnCodec 24 kHz 6 kbps" and record.nominal_kbps == pytest.approx(6.0)
    assert VariantRecord.from_json(record.to_json()) == record


def test_anchor_records_carry_the_cut_off():
    assert describe("lowpass?cutoff_hz=3500").anchor_cutoff_hz == 3500.0
    assert describe("opus?bitrate_kbps=12").anchor_cutoff_hz is None


def test_plugin_codec_record_uses_its_display_name_and_source(tmp_path):
    from evalkit.codecs import FAMILIES, load_plugin_file

    path = write_plugin_file(tmp_path, family="toy-record")
    load_plugin_file(path)
    try:
        record = describe("toy-record?bits=6")
        assert record.label == "Toy file 48 kbps" and record.nominal_kbps == pytest.approx(48.0)
        assert record.source == f"file {path.resolve()}" and record.sweep == "bits"
        assert (record.curve, record.group, record.role) == ("toy-record", "Toy file", VariantRole.CODEC)
    finally:
        FAMILIES.unregister("toy-record")
    unknown = describe("toy-record?bits=6")  # the plugin gone: labelled by its spec, never an error
    assert unknown.label == "toy-record?bits=6" and unknown.nominal_kbps is None
