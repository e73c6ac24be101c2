"""Label helpers that need no codec knowledge (:mod:`evalkit.labels`): the ``--label`` option and the
per-channel flag of a unit's reconstruction report."""

import pytest

from evalkit.labels import coded_per_channel, parse_label_options


def test_label_option_parsing_rejects_missing_name():
    assert parse_label_options(["mp3?bitrate_kbps=64=MP3"]) == {"mp3?bitrate_kbps=64": "MP3"}
    with pytest.raises(ValueError, match="expected SPEC=NAME"):
        parse_label_options(["=x"])


def test_coded_per_channel_reads_a_units_reconstruction_report():
    assert coded_per_channel('{"channel_handling": "per-channel (2 x mono)", "input_channels": 2}')
    assert coded_per_channel({"channel_handling": "per-channel (3 x mono)"})
    for other in ('{"channel_handling": "as-is"}', '{"channel_handling": "downmix 2->1"}',
                  '{"channel_handling": "upmix 1->2, output averaged"}', "not json", None, "{}"):
        assert not coded_per_channel(other)
