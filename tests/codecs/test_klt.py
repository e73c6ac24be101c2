"""KLT-truncated RVQ: exactness, statistics, accounting, spec validation, estimators, exports."""

import json
import re

import numpy as np
import pytest
import torch

from evalkit.cli import main
from evalkit.codecs import build_codec, parse_spec
from evalkit.codecs.klt import (
    CalibrationError,
    EuclideanKlt,
    KltTransform,
    check_calibration,
    codebook_statistics,
    greedy_rvq,
    latent_statistics,
)
from evalkit.codecs.klt_report import format_analysis
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_dim_for_variance_stays_between_1_and_D():
    # ten equal eigenvalues of 0.1: their running sum ends at 0.9999999999999999 while the total is 1.0
    flat = KltTransform(torch.zeros(10, dtype=torch.float64), torch.eye(10, dtype=torch.float64),
                        torch.full((10,), 0.1, dtype=torch.float64), 10)
    assert flat.dim_for_variance(1.0) == 10 and flat.dim_for_variance(0.95) == 10
    assert flat.dim_for_variance(0.3) == 3 and flat.dim_for_variance(0.31) == 4
    steep = KltTransform(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64),
                         torch.tensor([3.0, 1.0, 0.0, 0.0], dtype=torch.float64), 4)
    assert [steep.dim_for_variance(s) for s in (0.5, 0.75, 0.76, 1.0)] == [1, 1, 2, 2]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="share must be in"):
            steep.dim_for_variance(bad)


def test_accounting_counts_what_encodec_stores():
    # EnCodec 24 kHz stores 32 codebooks of 1024 x 128 and no projections; bandwidth 6 uses 8 of them
    acc = build_codec("klt?base=encodec-24khz&bandwidth=6&weights=random&dim=72", device="cpu").accounting()
    assert (acc.stored_codebooks, acc.used_codebooks) == (32, 8)
    assert (acc.codebook_floats_full, acc.codebook_floats) == (4_194_304, 2_359_296)  # 32*1024*128, 32*1024*72
    assert (acc.projection_floats_full, acc.projection_floats) == (0, 0)
    assert (acc.transform_floats, acc.transform_floats_stored, acc.mean_floats) == (16_384, 9_216, 128)
    assert (acc.total_floats_full, acc.total_floats, acc.total_floats_stored) == (4_194_304, 2_375_808, 2_368_640)
    assert (acc.search_macs_full, acc.search_macs) == (1_048_576, 599_040)  # 8*1024*128; 128*72 + 8*1024*72
    assert round(100 * acc.saving_codebooks, 2) == 43.75
    assert round(100 * acc.saving_total, 2) == 43.36  # the paper's figure (transform counted as 128 x 128)
    assert round(100 * acc.saving_total_stored, 2) == 43.53
    assert round(100 * acc.saving_search, 2) == 42.87


def test_accounting_counts_what_dac_stores():
    # dac-44khz: 9 stages, each an 8-d codebook of 1024 (8,192 floats) and weight-normed 1x1 convs
    # 1024 -> 8 (v 8,192 + g 8 + bias 8) and 8 -> 1024 (v 8,192 + g 1,024 + bias 1,024): 18,448 floats.
    # KLT at d = 72 keeps the codebooks and folds the projections: 8*72 + 8 and 72*8 + 72 = 1,232 per stage.
    acc = build_codec("klt?base=dac-44khz&n_codebooks=9&weights=random&dim=72&n_cov=9", device="cpu").accounting()
    assert (acc.stored_codebooks, acc.used_codebooks, acc.code_dim) == (9, 9, 8)
    assert (acc.codebook_floats_full, acc.codebook_floats) == (73_728, 73_728)
    assert (acc.projection_floats_full, acc.projection_floats) == (166_032, 11_088)
    assert (acc.transform_floats, acc.transform_floats_stored, acc.mean_floats) == (1_048_576, 73_728, 1_024)
    assert (acc.total_floats_full, acc.total_floats, acc.total_floats_stored) == (239_760, 1_134_416, 159_568)
    # per stage: in-projection 8*1024, scores 1024*8, out-projection 1024*8; KLT: 1024*72 once, 576 + 8192 + 576
    assert (acc.search_macs_full, acc.search_macs) == (221_184, 157_824)
    assert acc.saving_codebooks == 0
    assert round(100 * acc.saving_total, 2) == -373.15 and round(100 * acc.saving_total_stored, 2) == 33.45
    # the stored count is what DAC's own quantizer holds
    from dac.nn.quantize import ResidualVectorQuantize

    quantizer = ResidualVectorQuantize(input_dim=1024, n_codebooks=9, codebook_size=1024, codebook_dim=8)
    assert sum(p.numel() for p in quantizer.parameters()) == 239_760
    fewer = build_codec("klt?base=dac-44khz&n_codebooks=4&weights=random&dim=32&n_cov=4", device="cpu").accounting()
    assert fewer.total_floats_full == 239_760 and fewer.search_macs_full == 4 * 24_576

def test_spec_parsing_and_bad_parameters():
    spec = parse_spec("klt?base=encodec-24khz&bandwidth=6&dim=72&n_cov=2&estimator=codebook")
    assert spec.params["dim"] == 72 and spec.params["bandwidth"] == 6.0 and spec.params["base"] == "encodec-24khz"
    assert parse_spec(str(spec)) == spec
    for text, message in [
        ("klt?base=encodec-24khz&dim=129", r"dim=129 is outside 1..128"),
        ("klt?base=dac-44khz&dim=2000", r"dim=2000 is outside 1..1024"),
        # DAC's codebook estimator sums n_cov covariances of rank <= 8: dim above 8 x n_cov is refused at once
        ("klt?base=dac-44khz&dim=72", r"dim=72 exceeds the rank 16 of the covariance estimate \(estimator "
                                      r"codebook, n_cov=2; dac-44khz: rank <= 8 x n_cov\).*use dim <= 16"),
        ("klt?base=encodec-24khz&bandwidth=1.5&n_cov=3", "n_cov=3 exceeds the 2 codebooks in use"),
        ("klt?base=lowpass", "base 'lowpass' has no quantizer"),
        ("klt?base=vorbis", "base 'vorbis' is not a codec family"),
        ("klt?base=mp3", "base 'mp3' has no quantizer"),  # reference codecs have no codebooks
        ("klt?base=encodec-24khz&bitrate=6", "encodec-24khz: unknown parameter 'bitrate'"),
        ("klt?base=encodec-24khz&dim=big", "dim='big' is not an integer or 'full'"),
        ("klt?base=encodec-24khz&estimator=usage", "estimator=usage needs calibration=FOLDER"),
        ("klt?base=encodec-24khz&estimator=pca", "estimator=pca is not one of codebook, usage, data"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_spec(text)


def write_clips(folder, rate, n=2, seconds=0.5):
    from evalkit import audio

    clips = []
    for i in range(n):
        x = np.random.default_rng(10 + i).uniform(-0.3, 0.3, (1, int(rate * seconds))).astype(np.float32)
        audio.save(folder / f"c{i}.wav", x, rate)
        clips.append(torch.from_numpy(x)[None])
    return clips


def weighted_reference(books, counts):
    """numpy: per-stage usage-weighted means and the summed weighted covariance."""
    p = counts / counts.sum(axis=1, keepdims=True)
    means = np.einsum("nk,nkd->nd", p, books)
    cov = sum((books[k] - means[k]).T @ ((books[k] - means[k]) * p[k][:, None]) for k in range(len(books)))
    return means.sum(0), cov


@pytest.mark.slow
@pytest.mark.parametrize("estimator,base,rate", [("usage", "dac-16khz&n_codebooks=2", 16000),
                                                  ("data", "encodec-24khz&bandwidth=1.5", 24000)])
def test_calibration_uses_the_audio_and_skips_an_unreadable_file(tmp_path, caplog, estimator, base, rate):
    clips = write_clips(tmp_path, rate)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    codec = build_codec(f"klt?base={base}&weights=random&dim=12&n_cov=2&estimator={estimator}"
                        f"&calibration={tmp_path}", device="cpu")
    with caplog.at_level("WARNING"):
        codec.load()
    skipped = [r.getMessage() for r in caplog.records if "calibration" in r.getMessage()]
    assert len(skipped) == 1 and "broken.wav" in skipped[0]
    model = codec.base.model  # the library's model: the references come from its own calls
    with torch.inference_mode():
        if estimator == "usage":  # DAC: codes from its quantizer, latent codewords from its out-projections
            latents = [model.encoder(model.preprocess(x, rate)) for x in clips]
            codes = torch.cat([model.quantizer(z, n_quantizers=2)[1][0] for z in latents], dim=1).numpy()
            counts = np.stack([np.bincount(c, minlength=1024) for c in codes]).astype(np.float64)
            stages = model.quantizer.quantizers[:2]
            books = np.stack([q.out_proj(q.codebook.weight.T[None])[0].T.double().numpy() for q in stages])
            mean, cov = weighted_reference(books, counts)
            uniform_mean, _ = weighted_reference(books, np.ones_like(counts))
            assert not np.allclose(uniform_mean, mean, rtol=0.1, atol=0)  # calibration changes the estimate
        else:  # EnCodec: the encoder's latents
            frames = torch.cat([model.encoder(x)[0].T for x in clips]).double().numpy()  # [frames, 128]
            mean, cov = frames.mean(0), np.cov(frames.T, bias=True)
    expected = np.linalg.eigvalsh(cov)[::-1]
    np.testing.assert_allclose(codec.transform.eigenvalues.numpy(), expected, rtol=1e-5, atol=1e-6 * expected[0])
    np.testing.assert_allclose(codec.transform.mean.numpy(), mean, rtol=1e-5, atol=1e-6 * np.abs(mean).max())


@pytest.mark.slow
def test_calibration_without_usable_audio_is_a_config_error(tmp_path, capsys):
    from evalkit import audio

    (tmp_path / "notes.txt").write_text("no audio here")
    usage = f"klt?base=encodec-24khz&bandwidth=1.5&weights=random&estimator=usage&calibration={tmp_path}"
    folder = re.escape(str(tmp_path))
    with pytest.raises(CalibrationError, match=f"calibration folder {folder} has no usable audio"):
        check_calibration(build_codec(usage, device="cpu"))
    with pytest.raises(CalibrationError, match=folder):
        build_codec(usage, device="cpu").load()  # used to fall back silently to the codebook estimator
    (tmp_path / "broken.flac").write_bytes(b"fLaC but nothing else")
    audio.save(tmp_path / "silent.wav", np.zeros((1, 2400), dtype=np.float32), 24000)
    data = usage.replace("estimator=usage", "estimator=data")
    with pytest.raises(CalibrationError, match=r"has no usable audio \(2 "):
        check_calibration(build_codec(data, device="cpu"))
    with pytest.raises(ValueError, match=folder):
        build_codec(data, device="cpu").load()
    assert check_calibration(build_codec(usage.replace("estimator=usage", "estimator=codebook"), device="cpu")) is None
    assert check_calibration(build_codec("encodec-24khz?weights=random", device="cpu")) is None
    assert main(["klt", "analyze", usage]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no usable audio" in err


@pytest.mark.slow
def test_dac_data_estimator_offsets_come_from_the_calibration_residuals(tmp_path):
    """With estimator=data, each stage's truncated in-projection is unbiased on the calibration frames: its mean
    equals the mean of DAC's own in-projection of the residuals DAC's own quantizer leaves."""
    clips = write_clips(tmp_path, 16000)
    codec = build_codec(f"klt?base=dac-16khz&n_codebooks=3&weights=random&dim=12&estimator=data"
                        f"&calibration={tmp_path}", device="cpu").load()
    model, quantizer = codec.base.model, codec.quantizer
    u = quantizer.u.double()
    residuals = [[], [], []]
    with torch.inference_mode():
        for x in clips:
            residual = model.encoder(model.preprocess(x, 16000))
            for k, stage in enumerate(model.quantizer.quantizers[:3]):
                residuals[k].append(residual)
                residual = residual - stage(residual)[0]
        for k, stage in enumerate(model.quantizer.quantizers[:3]):
            r = torch.cat(residuals[k], dim=-1)  # [1, 1024, frames]
            original = stage.in_proj(r).double().mean(-1)
            mean = r[0].double().mean(-1)
            if k == 0:  # stage 1 sees U_d^T (z - mu); later stages the reduced residual U_d^T r
                np.testing.assert_allclose(codec.transform.mean.numpy(), mean.numpy(), atol=1e-6)
            reduced = torch.einsum("dk,bdt->bkt", u, r.double() - (mean[:, None] if k == 0 else 0))
            truncated = (quantizer.w_in[k].double() @ reduced.mean(-1)[0] + quantizer.b_in[k].double())[None]
            np.testing.assert_allclose(truncated.numpy(), original.numpy(), atol=2e-4 * float(original.abs().max()))

@pytest.mark.slow
def test_klt_analyze_cli(capsys):
    assert main(["klt", "analyze", "encodec-24khz?bandwidth=24&weights=random", "--dim", "72", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dim"] == 72 and result["full_dim"] == 128
    assert result["saving_codebooks"] == pytest.approx(0.4375) and round(result["saving_total"], 4) == 0.4336
    assert len(result["eigenvalues"]) == 128 and result["cumulative_variance"][-1] == pytest.approx(1.0)
    assert main(["klt", "analyze", "klt?base=encodec-24khz&weights=random&dim=64"]) == 0
    out = capsys.readouterr().out
    assert "saving, with transform (paper, D x D) and mean: 49.61 %" in out and "kept d = 64" in out
    assert main(["klt", "analyze", "lowpass"]) == 2
    assert "has no quantizer" in capsys.readouterr().err


@pytest.mark.slow
def test_klt_analyze_prints_the_dac_finding(capsys):
    args = ["klt", "analyze", "dac-44khz?n_codebooks=9&weights=random", "--dim", "72", "--n-cov", "9"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["codebook_floats_full"], result["projection_floats_full"]) == (73_728, 166_032)
    assert (result["transform_floats"], result["transform_floats_stored"]) == (1_048_576, 73_728)
    assert result["saving_codebooks"] == 0 and result["saving_total"] < 0  # was reported as an 81.8 % saving
    out = format_analysis(result)  # the text `klt analyze` prints without --json (one model load, not two)
    assert "finding: the codebooks are 8-dimensional and KLT does not shrink them (0.00 %)" in out
    assert "finding: KLT saves no storage with the transform as the paper counts it (D x D): it needs 373.15 %" in out
    assert "random (seed 0) - NOT a pretrained model" in out


@pytest.mark.slow
def test_dim_above_the_rank_of_a_data_estimate_is_refused_when_the_rank_is_known(tmp_path, capsys):
    # 0.5 s of calibration audio = 38 EnCodec frames: their covariance has rank <= 37 < dim = 72 < D = 128
    (tmp_path / "cal").mkdir()
    write_clips(tmp_path / "cal", 24000, n=1, seconds=0.5)
    spec = f"klt?base=encodec-24khz&weights=random&dim=72&estimator=data&calibration={tmp_path / 'cal'}"
    codec = build_codec(spec, device="cpu")
    from evalkit.codecs.klt import KltRankError

    with pytest.raises(KltRankError, match=r"^klt: dim=72 exceeds the rank (3[0-7]) of the covariance estimate "
                                           r"\(estimator data, n_cov=2\).*use dim <= \1, dim=128"):
        codec.load()
    with pytest.raises(KltRankError) as refused:
        codec.load()
    rank = int(re.search(r"rank (\d+)", str(refused.value)).group(1))
    from evalkit.codecs.klt.calibration import calibration_clips, gather

    base = codec.base.load()
    clips = calibration_clips(str(tmp_path / "cal"), base.sample_rate, base.channels, 60.0, base.min_samples)
    _, latents = gather(clips, base.encode_with, base.quantize, base.num_codebooks, with_latents=True)
    centred = latents.double().numpy() - latents.double().numpy().mean(0)
    assert rank == np.linalg.matrix_rank(centred.T @ centred / len(centred))  # numpy's rank of the same estimate
    # dim at the rank works; the command line gives one line and exit 2
    build_codec(spec.replace("dim=72", f"dim={rank}"), device="cpu").load()
    assert main(["klt", "analyze", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"dim=72 exceeds the rank {rank}" in err


@pytest.mark.slow
def test_klt_analyze_refuses_dac_dim_above_eight_per_covariance_codebook(capsys):
    assert main(["klt", "analyze", "dac-44khz?n_codebooks=9&weights=random", "--dim", "32", "--n-cov", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dim=32 exceeds the rank 16" in err
    assert main(["klt", "analyze", "dac-44khz?n_codebooks=9&weights=random", "--dim", "16", "--n-cov", "2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rank"] == 16
