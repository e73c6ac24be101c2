"""A worker's codec cache: one loaded model for variants that differ only in codebooks, and a memory bound."""

import numpy as np
import pytest
import torch

from evalkit.codecs import build_codec
from evalkit.runner.codec_cache import CodecCache, model_bytes

SPECS = ["encodec-24khz?bandwidth=1.5&weights=random", "encodec-24khz?bandwidth=6&weights=random",
         "klt?base=encodec-24khz&bandwidth=3&weights=random&dim=64"]


@pytest.mark.slow  # builds full-size codec models
def test_variants_differing_in_codebooks_share_one_model_and_code_as_a_fresh_codec():
    cache = CodecCache()
    codecs = [cache.get(spec, "cpu") for spec in SPECS]
    assert len(cache.models) == 1
    model = next(iter(cache.models.values()))
    assert codecs[0].model is model and codecs[1].model is model and codecs[2].base.model is model
    x = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 2400)).astype(np.float32)
    for spec, shared in list(zip(SPECS, codecs, strict=True))[1:]:  # each selects its own codebooks per call
        a, b = shared.reconstruct(x, 24000), build_codec(spec, device="cpu").reconstruct(x, 24000)
        assert torch.equal(a.encoded.codes, b.encoded.codes), spec
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-6)
    assert codecs[0].reconstruct(x, 24000).encoded.codes.shape[1] == 2
    assert cache.get(SPECS[0], "cpu") is codecs[0]


@pytest.mark.slow  # builds full-size codec models
def test_cache_is_bounded_by_model_bytes_and_releases_evicted_models():
    cache = CodecCache()
    a = cache.get("encodec-24khz?bandwidth=1.5&weights=random&seed=1", "cpu")
    cache.max_model_bytes = int(1.5 * model_bytes(a.model))
    cache.get("lowpass?cutoff_hz=3500", "cpu")  # holds no model
    cache.get("encodec-24khz?bandwidth=1.5&weights=random&seed=2", "cpu")
    assert len(cache.models) == 1 and a.model_key not in cache.models
    assert "encodec-24khz?bandwidth=1.5&weights=random&seed=1" not in {spec for spec, _ in cache.codecs}
    assert ("lowpass?cutoff_hz=3500", "cpu") in cache.codecs
    small = CodecCache(max_codecs=2)
    for cutoff in (3000, 3500, 7000):
        small.get(f"lowpass?cutoff_hz={cutoff}", "cpu")
    assert list(small.codecs) == [("lowpass?cutoff_hz=3500", "cpu"), ("lowpass?cutoff_hz=7000", "cpu")]


@pytest.mark.slow  # builds full-size codec models
def test_drop_forgets_a_codec_and_its_model_once_no_kept_codec_uses_it():
    cache = CodecCache()
    first, second = (cache.get(spec, "cpu") for spec in SPECS[:2])  # one shared model
    cache.get("lowpass?cutoff_hz=3500", "cpu")
    cache.drop(SPECS[0], "cpu")
    assert (SPECS[0], "cpu") not in cache.codecs and list(cache.models) == [first.model_key]  # still used
    cache.drop(SPECS[1], "cpu")
    assert cache.models == {} and list(cache.codecs) == [("lowpass?cutoff_hz=3500", "cpu")]
    cache.drop("never-loaded", "cpu")  # nothing to forget: no error
    assert cache.get(SPECS[1], "cpu") is not second  # built and loaded again
