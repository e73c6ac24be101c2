import pytest

from evalkit.codecs import FAMILIES, build_codec, parse_spec
from evalkit.codecs.spec import SpecError


def test_canonical_spec_fills_defaults_and_sorts():
    spec = parse_spec("encodec-24khz?weights=random&bandwidth=6.0")
    assert str(spec) == "encodec-24khz?bandwidth=6&seed=0&weights=random"
    assert parse_spec(str(spec)) == spec
    assert spec.short(FAMILIES["encodec-24khz"].defaults) == "encodec-24khz?weights=random"
    assert parse_spec("dac-44khz?n_codebooks=4").params["n_codebooks"] == 4


@pytest.mark.parametrize("text,message", [
    ("encodex-24khz", "unknown codec family 'encodex-24khz'; known: encodec-24khz"),
    ("encodec-24khz?bandwidth=5", r"bandwidth=5 is not one of 1.5, 3, 6, 12, 24"),
    ("encodec-48khz?bandwidth=1.5", r"bandwidth=1.5 is not one of 3, 6, 12, 24"),
    ("encodec-24khz?bitrate=6", "unknown parameter 'bitrate'; valid: bandwidth, seed, weights"),
    ("dac-44khz?n_codebooks=10", "n_codebooks=10 is above the maximum 9"),
    ("dac-44khz?n_codebooks=0", "n_codebooks=0 is below the minimum 1"),
    ("dac-44khz?n_codebooks=2.5", "n_codebooks='2.5' is not a valid int"),
    ("dac-44khz?n_codebooks", "expected key=value"),
    ("dac-44khz?n_codebooks=2&n_codebooks=3", "given twice"),
    ("lowpass?cutoff_hz=abc", "cutoff_hz='abc' is not a valid float"),
    ("", "empty codec spec"),
])
def test_bad_specs_raise_with_clear_message(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


@pytest.mark.parametrize("spec,bps", [
    ("encodec-24khz?bandwidth=1.5", 1500.0), ("encodec-24khz?bandwidth=3", 3000.0),
    ("encodec-24khz?bandwidth=6", 6000.0), ("encodec-24khz?bandwidth=12", 12000.0),
    ("encodec-24khz?bandwidth=24", 24000.0),
    ("dac-44khz?n_codebooks=9", 44100 / 512 * 9 * 10), ("dac-44khz?n_codebooks=1", 44100 / 512 * 10),
    ("dac-24khz", 24000 / 320 * 32 * 10), ("dac-16khz", 16000 / 320 * 12 * 10),
    ("dac-44khz-16kbps", 44100 / 512 * 18 * 10),
])
def test_bitrate_is_frame_rate_times_bits(spec, bps):
    codec = build_codec(spec, device="cpu")
    assert codec.bitrate_bps == pytest.approx(bps, rel=1e-12)


def test_encodec_48khz_side_information_is_stated():
    codec = build_codec("encodec-48khz?bandwidth=6", device="cpu")
    assert codec.code_bitrate_bps == 6000.0 and codec.num_codebooks == 4 and codec.frame_rate == 150
    # one 32-bit float gain per segment; segments start every 0.99 s (47520 samples at 48 kHz)
    assert codec.side_info_bps == pytest.approx(32 * 48000 / 47520)
    assert codec.bitrate_bps == pytest.approx(6000 + 32 / 0.99)


def test_dac_44khz_bitrate_is_7_75_kbps():
    assert round(build_codec("dac-44khz", device="cpu").bitrate_bps / 1000, 2) == 7.75
