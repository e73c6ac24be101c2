"""KLT-truncated RVQ: exactness, statistics, accounting, spec validation, estimators, exports."""

import json

import numpy as np
import pytest
import torch

from evalkit.cli import main
from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.klt import (
    EuclideanKlt,
    KltAccounting,
    KltTransform,
    codebook_statistics,
    greedy_rvq,
    latent_statistics,
)
from evalkit.codecs.spec import SpecError


def numpy_greedy_rvq(latent, books):
    """Independent brute-force reference: latent [T, D], books [N, K, D] -> codes [N, T]."""
    residual, codes = latent.copy(), []
    for book in books:
        d = ((residual[:, None, :] - book[None]) ** 2).sum(-1)
        idx = d.argmin(1)
        residual -= book[idx]
        codes.append(idx)
    return np.stack(codes)


@pytest.fixture
def correlated():
    """4 codebooks of 64 codewords in D = 16 with a steep eigen-spectrum (variance 4^-i along a rotation);
    the first stage carries the latent's offset, residual stages are zero-mean (as in trained RVQs)."""
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    scales = 2.0 ** -np.arange(16)
    books = np.stack([(rng.standard_normal((64, 16)) * scales * 0.5 ** n) @ rotation.T for n in range(4)])
    books -= books.mean(axis=1, keepdims=True)
    books[0] += 1.2
    latent = (rng.standard_normal((500, 16)) * scales) @ rotation.T + 1.2
    return books, latent


def test_statistics_are_sums_of_per_codebook_moments(correlated):
    books, _ = correlated
    means, cov = codebook_statistics(torch.from_numpy(books), n_cov=2)
    np.testing.assert_allclose(means.numpy(), books[:2].mean(axis=1), atol=1e-12)
    expected = sum(np.cov(books[k].T, bias=True) for k in range(2))
    np.testing.assert_allclose(cov.numpy(), expected, atol=1e-12)
    weights = torch.ones(4, 64, dtype=torch.float64)
    weights[0, :32] = 3  # usage weights: first half three times as frequent
    wmeans, _ = codebook_statistics(torch.from_numpy(books), 1, weights)
    np.testing.assert_allclose(wmeans[0].numpy(), (3 * books[0, :32].sum(0) + books[0, 32:].sum(0)) / 128)
    lat_mean, lat_cov = latent_statistics(torch.from_numpy(books[0]))
    np.testing.assert_allclose(lat_cov.numpy(), np.cov(books[0].T, bias=True), atol=1e-12)
    np.testing.assert_allclose(lat_mean.numpy(), books[0].mean(0))


def test_full_dimension_is_exact_and_truncation_keeps_the_variance(correlated):
    books, latent = correlated
    t_books = torch.from_numpy(books)
    means, cov = codebook_statistics(t_books, 2)
    transform = KltTransform.from_statistics(means.sum(0), cov, 16)
    values = np.linalg.eigvalsh(cov.numpy())[::-1]
    np.testing.assert_allclose(transform.eigenvalues.numpy(), values, rtol=1e-9, atol=1e-15)
    assert transform.variance_kept(4) > 0.99  # steep spectrum: 4 of 16 dimensions hold > 99 %
    z = torch.from_numpy(latent.T[None].copy())  # [1, D, T]
    full = EuclideanKlt(transform, t_books, dtype=torch.float64)
    reference = numpy_greedy_rvq(latent, books)
    codes = full.quantize(z)
    np.testing.assert_array_equal(codes[0].numpy(), reference)
    np.testing.assert_allclose(full.dequantize(codes)[0].numpy().T, sum(books[k][reference[k]] for k in range(4)),
                               atol=1e-12)
    truncated = EuclideanKlt(KltTransform(transform.mean, transform.basis, transform.eigenvalues, 4), t_books,
                             dtype=torch.float64)
    err_full = np.mean((full.dequantize(codes)[0].numpy().T - latent) ** 2)
    err_trunc = np.mean((truncated.dequantize(truncated.quantize(z))[0].numpy().T - latent) ** 2)
    assert err_trunc < 1.05 * err_full + 1e-3 * np.mean((latent - latent.mean(0)) ** 2)


def test_greedy_rvq_matches_bruteforce(rng):
    books = rng.standard_normal((3, 32, 8))
    latent = rng.standard_normal((40, 8))
    codes, quantized = greedy_rvq(torch.from_numpy(latent.T[None].copy()), torch.from_numpy(books))
    ref = numpy_greedy_rvq(latent, books)
    np.testing.assert_array_equal(codes[0].numpy(), ref)
    np.testing.assert_allclose(quantized[0].numpy().T, sum(books[k][ref[k]] for k in range(3)))


@pytest.mark.parametrize("base,rate,channels", [("encodec-24khz?bandwidth=24", 24000, 1),
                                                ("encodec-48khz?bandwidth=6", 48000, 2)])
def test_encodec_full_dimension_reproduces_codes_and_audio(base, rate, channels):
    family, _, query = base.partition("?")
    codec = build_codec(f"{base}&weights=random", device="cpu")
    klt = build_codec(f"klt?base={family}&{query}&weights=random&dim=128&n_cov=2", device="cpu")
    x = torch.from_numpy(np.random.default_rng(1).uniform(-0.3, 0.3, (1, channels, int(1.2 * rate)))
                         .astype(np.float32))
    with torch.inference_mode():
        a, b = codec.encode(x), klt.encode(x)
        assert torch.equal(a.codes, b.codes)
        torch.testing.assert_close(klt.decode(b), codec.decode(a), rtol=0, atol=1e-5)
    assert klt.bitrate_bps == codec.bitrate_bps and klt.codebooks().shape == (codec.num_codebooks, 1024, 128)


def test_dac_full_dimension_and_rank():
    n = 3
    base = build_codec(f"dac-16khz?n_codebooks={n}&weights=random", device="cpu")
    x = torch.from_numpy(np.random.default_rng(2).uniform(-0.3, 0.3, (1, 1, 8000)).astype(np.float32))
    full = build_codec(f"klt?base=dac-16khz&n_codebooks={n}&weights=random&n_cov={n}&dim=1024", device="cpu")
    at_rank = build_codec(f"klt?base=dac-16khz&n_codebooks={n}&weights=random&n_cov={n}", device="cpu").load()
    assert at_rank.transform.rank == at_rank.dim == 8 * n  # R has rank 8 per codebook
    with torch.inference_mode():
        a = base.encode(x)
        b = full.encode(x)
        assert torch.equal(a.codes, b.codes)
        torch.testing.assert_close(full.decode(b), base.decode(a), rtol=0, atol=1e-5)
        # d = rank: the decoder input (hence the audio) of the same codes is reproduced
        torch.testing.assert_close(at_rank.quantizer.dequantize(a.codes), base.dequantize(a.codes), rtol=0, atol=1e-4)
        torch.testing.assert_close(at_rank.decode(a), base.decode(a), rtol=0, atol=1e-5)
        # and latents inside mu + span(U_d) get exactly the original codes
        t = at_rank.transform
        coeff = torch.randn(2, t.dim, 60, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        spread = coeff * t.eigenvalues[: t.dim, None].sqrt()
        z = t.mean[None, :, None] + torch.einsum("dk,bkt->bdt", t.projection, spread)
        assert torch.equal(at_rank.quantizer.quantize(z.float()), base.quantize(z.float()))


def test_accounting_matches_the_paper_numbers():
    acc = KltAccounting(stored_codebooks=32, used_codebooks=32, cardinality=1024, full_dim=128, dim=72)
    assert acc.saving_codebooks == pytest.approx(0.4375)
    assert acc.saving_total == pytest.approx(1 - (32 * 1024 * 72 + 128 * 128 + 128) / (32 * 1024 * 128))
    assert round(100 * acc.saving_total, 2) == 43.36
    assert acc.search_macs == 128 * 72 + 32 * 1024 * 72 and acc.search_macs_full == 32 * 1024 * 128
    codec = build_codec("klt?base=encodec-24khz&bandwidth=6&weights=random&dim=72", device="cpu")
    assert codec.accounting().stored_codebooks == 32 and codec.accounting().used_codebooks == 8
    assert codec.accounting().saving_total == pytest.approx(acc.saving_total)


def test_spec_parsing_and_bad_parameters():
    spec = parse_spec("klt?base=encodec-24khz&bandwidth=6&dim=72&n_cov=2&estimator=codebook")
    assert spec.params["dim"] == 72 and spec.params["bandwidth"] == 6.0 and spec.params["base"] == "encodec-24khz"
    assert parse_spec(str(spec)) == spec
    for text, message in [
        ("klt?base=encodec-24khz&dim=129", r"dim=129 is outside 1..128"),
        ("klt?base=dac-44khz&dim=2000", r"dim=2000 is outside 1..1024"),
        ("klt?base=encodec-24khz&bandwidth=1.5&n_cov=3", "n_cov=3 exceeds the 2 codebooks in use"),
        ("klt?base=lowpass", "base 'lowpass' has no quantizer"),
        ("klt?base=mp3", "base 'mp3' is not a codec family"),
        ("klt?base=encodec-24khz&bitrate=6", "encodec-24khz: unknown parameter 'bitrate'"),
        ("klt?base=encodec-24khz&dim=big", "dim='big' is not an integer or 'full'"),
        ("klt?base=encodec-24khz&estimator=usage", "estimator=usage needs calibration=FOLDER"),
        ("klt?base=encodec-24khz&estimator=pca", "estimator=pca is not one of codebook, usage, data"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_spec(text)


@pytest.mark.parametrize("estimator", ["usage", "data"])
def test_calibration_estimators(tmp_path, estimator):
    from evalkit import audio

    for i in range(2):
        audio.save(tmp_path / f"c{i}.wav", np.random.default_rng(i).uniform(-0.3, 0.3, (1, 12000)), 24000)
    codec = build_codec(f"klt?base=encodec-24khz&bandwidth=1.5&weights=random&dim=64&estimator={estimator}"
                        f"&calibration={tmp_path}", device="cpu").load()
    eig = codec.transform.eigenvalues
    assert eig.shape == (128,) and torch.all(eig[:-1] >= eig[1:]) and float(eig.min()) >= 0
    assert 0 < codec.transform.variance_kept() < 1
    x = torch.from_numpy(np.random.default_rng(5).uniform(-0.3, 0.3, (1, 1, 4800)).astype(np.float32))
    with torch.inference_mode():
        assert codec.decode(codec.encode(x)).shape == x.shape


def test_klt_analyze_cli(capsys):
    assert main(["klt", "analyze", "encodec-24khz?bandwidth=24&weights=random", "--dim", "72", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dim"] == 72 and result["full_dim"] == 128
    assert result["saving_codebooks"] == pytest.approx(0.4375) and round(result["saving_total"], 4) == 0.4336
    assert len(result["eigenvalues"]) == 128 and result["cumulative_variance"][-1] == pytest.approx(1.0)
    assert main(["klt", "analyze", "klt?base=encodec-24khz&weights=random&dim=64"]) == 0
    out = capsys.readouterr().out
    assert "saving, with transform and mean" in out and "kept d = 64" in out
    assert main(["klt", "analyze", "lowpass"]) == 2
    assert "has no quantizer" in capsys.readouterr().err
