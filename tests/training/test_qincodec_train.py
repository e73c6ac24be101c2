"""QinCodec: the training pipeline (tiny config, synthetic audio), QINCo2's search, the adapters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from evalkit.cli import main
from evalkit.codecs import SpecError, build_codec, parse_spec
from evalkit.codecs.qincodec.checkpoint import load_checkpoint, save_checkpoint
from evalkit.codecs.qincodec.config import QuantizerConfig, get_config
from evalkit.codecs.qincodec.model import Decoder
from evalkit.codecs.qincodec.qinco2 import Qinco2
from evalkit.metrics.spectral import mel_distance
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.data import audio_files, is_validation
from evalkit.training.qincodec.finetune import load_quantizers, quantize_latents
from evalkit.training.qincodec.train import Context, StageStopped, load_autoencoder, run_training

RATE = 16_000


def synthetic_corpus(folder, files: int = 8, seconds: float = 3.0) -> None:
    """Harmonic tones with vibrato, noise bursts and chirps: enough structure for a tiny codec to learn."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    folder.mkdir(parents=True)
    for i in range(files):
        f0 = 110 * 2 ** (i / 4) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 6))
        x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + i)) + 0.05 * rng.standard_normal(len(t))
        x[int(RATE * 1.5): int(RATE * 1.7)] += 0.3 * rng.standard_normal(int(RATE * 0.2))
        sf.write(folder / f"clip{i}.wav", (0.2 * x / np.abs(x).max()).astype(np.float32), RATE)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`evalkit qincodec train --config tiny` through every stage, via the command line."""
    root = tmp_path_factory.mktemp("qincodec")
    synthetic_corpus(root / "data")
    threads = torch.get_num_threads()
    try:  # one thread: tiny tensors gain nothing from more, and a busy machine makes them wait
        assert main(["qincodec", "train", "--data", str(root / "data"), "--out", str(root / "run"),
                     "--config", "tiny", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return Context(get_config("tiny"), root / "data", root / "run", torch.device("cpu"), progress=False)


def test_the_split_holds_out_files(run):
    names = [p.relative_to(run.data).as_posix() for p in audio_files(run.data)]
    held_out = [n for n in names if is_validation(n, run.config.train.val_fraction)]
    assert 0 < len(held_out) < len(names)
    assert run.corpus.val_seconds == pytest.approx(3.0 * len(held_out))


def test_training_writes_every_stage_and_provenance(run):
    for name in ("ae.pt", "latents.npz", "rvq.pt", "quantizer.pt", "qincodec.pt", "train.log"):
        assert (run.out / name).is_file(), name
    assert not list(run.out.glob("*_last.pt"))  # finished stages leave no resume state
    prov = load_checkpoint(str(run.out / "qincodec.pt"))["provenance"]
    assert prov["ae_steps"] == run.config.train.ae_steps
    assert prov["command"].startswith("evalkit qincodec train --data")
    assert prov["train_minutes"] == pytest.approx(run.corpus.train_seconds / 60, abs=0.01)


def test_an_interrupted_stage_resumes_to_the_same_weights(run, tmp_path):
    ctx = Context(run.config, run.data, tmp_path / "again", torch.device("cpu"), budget_s=0.0, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the fixture's run: the same summation order, so bitwise-equal weights
    try:
        with pytest.raises(StageStopped, match="ae: stopped at step 1/"):
            run_training(ctx, ("ae",))
        assert schedule.load(tmp_path / "again" / "ae_last.pt")["step"] == 1
        ctx.budget_s = None
        run_training(ctx, ("ae",))
    finally:
        torch.set_num_threads(threads)
    resumed = schedule.load(tmp_path / "again" / "ae.pt")["model"]
    straight = schedule.load(run.out / "ae.pt")["model"]
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)


def test_a_run_folder_refuses_another_config(run, tmp_path):
    other = Context(get_config("tiny", ae_steps=31), run.data, run.out, torch.device("cpu"), progress=False)
    with pytest.raises(ValueError, match="other settings"):
        run_training(other, ("ae",))


def exhaustive_greedy(model: Qinco2, x: torch.Tensor) -> torch.Tensor:
    """Reference search: at every step evaluate f_m on all K codewords, one vector at a time."""
    codes = []
    for v in x:
        partial = torch.zeros_like(v)
        chosen = []
        for m in range(model.steps):
            words = model.codebooks[m]
            new = words.clone() if m == 0 else partial + model.step(m, words, partial.expand_as(words))
            k = int(((v - new) ** 2).sum(-1).argmin())
            chosen.append(k)
            partial = new[k]
        codes.append(chosen)
    return torch.tensor(codes)


def random_qinco(dim=6, steps=3, size=8, seed=0) -> Qinco2:
    torch.manual_seed(seed)
    model = Qinco2(dim, QuantizerConfig(steps=steps, codebook_size=size, embed_dim=4, hidden_dim=10, blocks=2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return model


def test_qinco2_with_all_candidates_and_one_beam_is_exhaustive_greedy_search():
    model = random_qinco()
    x = torch.randn(40, 6)
    with torch.no_grad():
        expected = exhaustive_greedy(model, x)
        assert torch.equal(model.encode_normalized(x, candidates=8, beam=1), expected)
        # pre-selecting fewer candidates (with random pre-selection codebooks) finds other codes
        assert not torch.equal(model.encode_normalized(x, candidates=2, beam=1), expected)


def test_untrained_qinco2_is_plain_residual_quantization():
    from evalkit.codecs.qincodec.qinco2 import ResidualVQ

    torch.manual_seed(1)
    rvq = ResidualVQ(6, 3, 8)
    with torch.no_grad():
        rvq.codebooks.copy_(torch.randn(3, 8, 6))
    model = Qinco2(6, QuantizerConfig(steps=3, codebook_size=8, embed_dim=4, hidden_dim=10, blocks=2))
    model.init_from_rq(rvq)
    x = torch.randn(30, 6)
    codes = model.encode(x, candidates=8, beam=1)
    assert torch.equal(codes, rvq.encode(x))
    torch.testing.assert_close(model.decode(codes), rvq.decode(codes))


def held_out_latents(run) -> torch.Tensor:
    return torch.from_numpy(np.load(run.out / "latents.npz")["val"])


def prefix_errors(quantizer, x: torch.Tensor, codes: torch.Tensor) -> list[float]:
    return [float((quantizer.decode(codes[:, :m]) - x).pow(2).mean()) for m in range(1, codes.shape[1] + 1)]


def test_prefix_decodes_have_non_increasing_latent_error(run):
    qinco, rvq = load_quantizers(run)
    x = held_out_latents(run)
    q = run.config.quantizer
    for errors in (prefix_errors(qinco, x, qinco.encode(x, q.candidates, q.beam)),
                   prefix_errors(rvq, x, rvq.encode(x))):
        assert all(b <= a * (1 + 1e-6) for a, b in zip(errors, errors[1:], strict=False)), errors
        assert errors[-1] < errors[0]


def test_trained_qinco2_beats_residual_quantization_on_held_out_latents(run):
    qinco, rvq = load_quantizers(run)
    x = held_out_latents(run)
    q = run.config.quantizer
    mse_qinco = float((qinco.decode(qinco.encode(x, q.candidates, q.beam)) - x).pow(2).mean())
    mse_rvq = float((rvq.decode(rvq.encode(x)) - x).pow(2).mean())
    assert mse_qinco < mse_rvq


def test_finetuning_lowers_the_mel_distance_of_quantized_reconstructions(run):
    ae = load_autoencoder(run)  # the decoder before finetuning
    finetuned = Decoder(run.config.model)
    finetuned.load_state_dict(load_checkpoint(str(run.out / "qincodec.pt"))["decoder"])
    qinco, _ = load_quantizers(run)
    q = run.config.quantizer
    before = after = 0.0
    with torch.no_grad():
        for signal in run.corpus.val:
            x = torch.from_numpy(signal[: len(signal) // 160 * 160]).view(1, 1, -1)
            zq = quantize_latents(ae.encode(x), qinco, q.steps // 2, q.candidates, q.beam)
            ref = x[0].numpy()
            before += mel_distance(ref, ae.decoder(zq)[0].numpy(), RATE)
            after += mel_distance(ref, finetuned(zq)[0].numpy(), RATE)
    assert after < before


def test_reconstruct_reproduces_codes_after_saving_and_loading(run, tmp_path):
    path = str(run.out / "qincodec.pt")
    clip = run.corpus.val[0][None, : int(0.7 * RATE)]
    first = build_codec(f"qincodec?checkpoint={path}&n_steps=3", "cpu").reconstruct(clip, RATE)
    bundle = load_checkpoint(path)
    copy = save_checkpoint(tmp_path / "copy.pt", bundle["config"],
                           {k: bundle[k] for k in ("encoder", "decoder", "rvq", "qinco2")}, bundle["provenance"])
    again = build_codec(f"qincodec?checkpoint={copy}&n_steps=3", "cpu").reconstruct(clip, RATE)
    assert first.encoded.codes.shape == (1, 3, math.ceil(clip.shape[1] / 160))
    assert torch.equal(first.encoded.codes, again.encoded.codes)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.audio.shape == clip.shape


def test_rvq_baseline_adapter_decodes_its_codebooks_sums(run):
    path = str(run.out / "qincodec.pt")
    codec = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").load()
    latent = held_out_latents(run)[:50].T.contiguous()[None]
    codes = codec.quantize(latent)
    books = codec.codebooks()
    by_hand = sum(books[m][codes[0, m]] for m in range(4)).T[None]
    torch.testing.assert_close(codec.dequantize(codes), by_hand, rtol=1e-5, atol=1e-5)


def test_spec_resolves_bitrate_and_steps_both_ways(run):
    path = str(run.out / "qincodec.pt")
    # tiny: 16 kHz / hop 160 = 100 frames/s, K = 16 → 0.4 kbps per step
    by_rate = parse_spec(f"qincodec?checkpoint={path}&bitrate_kbps=1.2")
    assert by_rate.params["n_steps"] == 3
    by_steps = parse_spec(f"qincodec?checkpoint={path}&n_steps=2")
    assert by_steps.params["bitrate_kbps"] == pytest.approx(0.8)
    codec = build_codec(by_rate, "cpu")
    assert codec.bitrate_bps == pytest.approx(100 * 3 * 4)
    assert parse_spec(str(by_rate)) == by_rate
    with pytest.raises(SpecError, match=r"bitrate_kbps=1 is not available from this checkpoint; valid: 0.4, 0.8"):
        parse_spec(f"qincodec?checkpoint={path}&bitrate_kbps=1")
    with pytest.raises(SpecError, match="contradicts n_steps=2"):
        parse_spec(f"qincodec?checkpoint={path}&n_steps=2&bitrate_kbps=1.2")
    with pytest.raises(SpecError, match="above the checkpoint's 4 steps"):
        parse_spec(f"qincodec-rvq?checkpoint={path}&n_steps=5")
    with pytest.raises(SpecError, match="nope.pt not found"):
        parse_spec("qincodec?checkpoint=/nope.pt")


def test_info_prints_the_provenance(run, capsys):
    assert main(["qincodec", "info", str(run.out / "qincodec.pt")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["name"] == "tiny"
    assert len(info["sha256"]) == 64


def test_training_rejects_a_missing_data_folder(tmp_path, capsys):
    assert main(["qincodec", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                 "--config", "tiny"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_klt_at_full_dimension_reproduces_the_rvq_baseline(run):
    path = str(run.out / "qincodec.pt")
    clip = run.corpus.val[0][None, : int(0.5 * RATE)]
    base = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").reconstruct(clip, RATE)
    full = build_codec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&dim=8&n_cov=4", "cpu")
    out = full.reconstruct(clip, RATE)
    assert torch.equal(out.encoded.codes, base.encoded.codes)
    np.testing.assert_allclose(out.audio, base.audio, atol=1e-5)
    reduced = build_codec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&dim=3&n_cov=4", "cpu")
    assert reduced.accounting().codebook_floats == 4 * 16 * 3


def test_the_checkpoint_hash_is_part_of_the_unit_identity(run, tmp_path):
    from evalkit.runner.plan import plan_variant

    path = run.out / "qincodec.pt"
    bundle = load_checkpoint(str(path))
    parts = {k: bundle[k] for k in ("encoder", "decoder", "rvq", "qinco2")}
    a = save_checkpoint(tmp_path / "c.pt", bundle["config"], parts, {"note": "a"})
    ident_a = plan_variant(parse_spec(f"qincodec-rvq?checkpoint={a}&n_steps=2")).identity
    save_checkpoint(a, bundle["config"], parts, {"note": "b"})  # same path, other bytes
    ident_b = plan_variant(parse_spec(f"qincodec-rvq?checkpoint={a}&n_steps=2")).identity
    assert ident_a != ident_b
    assert load_checkpoint(str(a))["sha256"] in ident_b


def test_init_starts_the_autoencoder_from_a_packaged_checkpoint(run, tmp_path, capsys):
    from evalkit.training.qincodec.train import init_state

    packaged = run.out / "qincodec.pt"
    ctx = Context(get_config("tiny", ae_steps=1), run.data, tmp_path / "warm", torch.device("cpu"), progress=False,
                  init=packaged)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_training(ctx, ("ae",))
    finally:
        torch.set_num_threads(threads)
    start, after = init_state(packaged), schedule.load(tmp_path / "warm" / "ae.pt")["model"]
    # one step of AdamW from the packaged weights: every tensor close to them, not to a fresh initialisation
    for key, value in start.items():
        assert (after[key] - value).abs().max() < 5 * get_config("tiny").train.ae_lr, key
    recorded = json.loads((tmp_path / "warm" / "run.json").read_text())["init"]
    assert recorded == {"path": str(packaged), "sha256": load_checkpoint(str(packaged))["sha256"]}
    other = Context(ctx.config, run.data, tmp_path / "warm", torch.device("cpu"), progress=False)
    with pytest.raises(ValueError, match="another --init checkpoint"):
        run_training(other, ("ae",))
    assert main(["qincodec", "train", "--data", str(run.data), "--out", str(tmp_path / "x"), "--config", "small",
                 "--init", str(packaged)]) == 2
    assert "is not the one of config 'small'" in capsys.readouterr().err


def random_rvq(dim=5, steps=3, size=4, seed=3):
    from evalkit.codecs.qincodec.qinco2 import ResidualVQ

    torch.manual_seed(seed)
    rvq = ResidualVQ(dim, steps, size)
    with torch.no_grad():
        rvq.codebooks.copy_(torch.randn(steps, size, dim) / torch.arange(1, steps + 1)[:, None, None])
    return rvq


def test_rvq_beam_search_with_every_path_kept_finds_the_best_code_combination():
    import itertools

    rvq = random_rvq()
    x = torch.randn(30, 5)
    books = rvq.codebooks.detach().numpy()
    combos = np.array(list(itertools.product(range(4), repeat=3)))  # all K^M codes, exhaustively
    sums = sum(books[m][combos[:, m]] for m in range(3))  # [64, D]
    best = ((x.numpy()[:, None] - sums[None]) ** 2).sum(-1).argmin(1)
    codes = rvq.encode_normalized(x, beam=16)  # B = K^(M-1): no path is ever dropped
    np.testing.assert_array_equal(codes.numpy(), combos[best])
    # B = 1 is the greedy search: nearest codeword of each residual in turn
    residual, greedy = x.numpy().copy(), []
    for m in range(3):
        idx = ((residual[:, None] - books[m][None]) ** 2).sum(-1).argmin(1)
        residual -= books[m][idx]
        greedy.append(idx)
    np.testing.assert_array_equal(rvq.encode_normalized(x, beam=1).numpy(), np.stack(greedy, 1))
    assert not torch.equal(rvq.encode_normalized(x, beam=2), rvq.encode_normalized(x, beam=1))


def test_rvq_adapter_beam_is_a_spec_parameter(run):
    path = str(run.out / "qincodec.pt")
    x = held_out_latents(run)[:200]
    beamed = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4&beam=2", "cpu").load()
    rvq = beamed.parts[2]  # the checkpoint's (float16-stored) codebooks; the search is checked on its own above
    assert beamed.spec.params["beam"] == 2 and beamed.info()["beam"] == 2
    codes = beamed.quantize(x.T.contiguous()[None])[0].T
    assert torch.equal(codes, rvq.encode(x, 4, beam=2))
    greedy = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").load()
    assert greedy.beam == 1 and torch.equal(greedy.quantize(x.T.contiguous()[None])[0].T, rvq.encode(x, 4))
    mse = [float((rvq.decode(c) - x).pow(2).mean()) for c in (rvq.encode(x, 4), codes)]
    assert mse[1] < mse[0]
    with pytest.raises(SpecError, match="beam"):
        parse_spec(f"qincodec-rvq?checkpoint={path}&n_steps=4&beam=0")
    with pytest.raises(SpecError, match="searches greedily; use beam=1"):
        parse_spec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&beam=2&dim=3")
