"""The real weight-loading path, exercised with checkpoints saved in the official formats."""

import io
import urllib.request

import numpy as np
import pytest
import torch

from evalkit.cli import main
from evalkit.codecs import build_codec
from evalkit.codecs.weights import WeightsNotFound, get_entry, torch_hub_checkpoints


def _signal():
    return np.random.default_rng(3).uniform(-0.3, 0.3, (1, 16000)).astype(np.float32)


@pytest.mark.slow  # builds and runs two full-size EnCodec models
def test_encodec_loads_official_filename_from_torch_hub_cache():
    random_codec = build_codec("encodec-24khz?weights=random&seed=5", device="cpu").load()
    path = torch_hub_checkpoints() / "encodec_24khz-d7cc33bc.th"
    path.parent.mkdir(parents=True)
    torch.save(random_codec.build_loaded_model().state_dict(), path)  # as published: weight norms not folded
    loaded = build_codec("encodec-24khz", device="cpu")
    assert loaded.weights_label == "pretrained"
    a = random_codec.reconstruct(_signal(), 24000)
    b = loaded.reconstruct(_signal(), 24000)
    assert torch.equal(a.encoded.codes, b.encoded.codes)
    np.testing.assert_allclose(a.audio, b.audio, atol=1e-6)
    assert get_entry("encodec_24khz").checksum_status(path) == "custom"


@pytest.mark.slow
def test_dac_loads_official_checkpoint_format_from_descript_cache(offline_and_private_caches):
    random_codec = build_codec("dac-16khz?weights=random&seed=2", device="cpu").load()
    path = offline_and_private_caches / ".cache" / "descript" / "dac" / "weights_16khz_8kbps_0.0.5.pth"
    path.parent.mkdir(parents=True)
    random_codec.build_loaded_model().save(str(path), package=False)  # audiotools' format: state_dict + kwargs
    loaded = build_codec("dac-16khz?n_codebooks=4", device="cpu")
    a = build_codec("dac-16khz?n_codebooks=4&weights=random&seed=2", device="cpu").reconstruct(_signal(), 16000)
    b = loaded.reconstruct(_signal(), 16000)
    assert loaded.weights_label == "pretrained"
    assert torch.equal(a.encoded.codes, b.encoded.codes)
    np.testing.assert_allclose(a.audio, b.audio, atol=1e-6)
    other = build_codec("dac-16khz?n_codebooks=4&weights=random&seed=3", device="cpu").reconstruct(_signal(), 16000)
    assert not torch.equal(other.encoded.codes, b.encoded.codes)  # the comparison can tell weights apart


def test_explicit_weights_path_that_does_not_exist_is_an_error_not_a_skip(tmp_path):
    from evalkit.codecs import parse_spec
    from evalkit.runner.plan import plan_variant

    with pytest.raises(WeightsNotFound, match=r"weights file .*nope\.th does not exist"):
        plan_variant(parse_spec(f"encodec-24khz?weights={tmp_path / 'nope.th'}"))
    assert plan_variant(parse_spec("encodec-24khz")).skipped  # the search path (no explicit file) still skips


def test_search_order_explicit_then_env_then_cache(tmp_path, monkeypatch):
    entry = get_entry("encodec_48khz")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / entry.filename).write_bytes(b"x")
    cache = torch_hub_checkpoints() / entry.filename
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"y")
    assert entry.resolve() == cache
    monkeypatch.setenv("EVALKIT_WEIGHTS", str(env_dir))
    assert entry.resolve() == env_dir / entry.filename
    explicit = tmp_path / "mine.th"
    explicit.write_bytes(b"z")
    assert entry.resolve(explicit) == explicit
    with pytest.raises(WeightsNotFound, match="does not exist"):
        entry.resolve(tmp_path / "nope.th")


def test_missing_weights_offline_names_file_and_places():
    with pytest.raises(WeightsNotFound, match=r"encodec_24khz-d7cc33bc.th not found.*Searched:\n.*checkpoints"):
        build_codec("encodec-24khz", device="cpu").load()


def test_download_verifies_checksum(monkeypatch):
    entry = get_entry("encodec_24khz")
    payload = b"not the official file"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    monkeypatch.setenv("EVALKIT_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # a host name that resolves offline
    with pytest.raises(WeightsNotFound, match="checksum mismatch"):
        entry.resolve(allow_download=True)
    assert not (torch_hub_checkpoints() / entry.filename).exists()
    dac = get_entry("dac_24khz")  # DAC publishes no digest: the file is kept
    assert dac.resolve(allow_download=True).read_bytes() == payload


def test_weights_status_cli_lists_missing_and_found(capsys):
    assert main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    assert "encodec_24khz" in out and "MISSING" in out and "dac_44khz_16kbps" in out
    path = torch_hub_checkpoints() / "encodec_48khz-7e698e3e.th"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert main(["weights", "status"]) == 0
    assert str(path) in capsys.readouterr().out


def test_weights_fetch_unknown_model_is_a_clear_error(capsys):
    assert main(["weights", "fetch", "encodec_96khz"]) == 2
    assert "unknown model 'encodec_96khz'" in capsys.readouterr().err
