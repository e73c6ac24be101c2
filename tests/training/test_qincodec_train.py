"""QinCodec training: the pipeline (tiny config, synthetic audio; trained once, ``qincodec_run``), resume, run
folders, ``--init``, the quantizer and finetuning stages' gains, the packaged checkpoint and ``evalkit qincodec``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from evalkit.cli import main
from evalkit.codecs import build_codec
from evalkit.codecs.qincodec.checkpoint import load_checkpoint
from evalkit.codecs.qincodec.model import Decoder
from evalkit.metrics.spectral import mel_distance
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.autoencoder_stage import init_state, load_autoencoder
from evalkit.training.qincodec.data import audio_files, is_validation
from evalkit.training.qincodec.finetune import load_quantizers, quantize_latents
from evalkit.training.qincodec.packaging import save_checkpoint
from evalkit.training.qincodec.recipes import get_config
from evalkit.training.qincodec.schedule import StageStopped
from evalkit.training.qincodec.train import Context, run_training
from tests.qincodec_fixtures import RATE, held_out_latents

pytestmark = pytest.mark.slow  # QinCodec training runs


@pytest.fixture
def run(qincodec_run):
    return qincodec_run


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


def test_init_starts_the_autoencoder_from_a_packaged_checkpoint(run, tmp_path, capsys):
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


def test_the_latents_stage_alone_takes_a_kept_autoencoder_and_refuses_a_missing_one(run, tmp_path, capsys):
    packaged = run.out / "qincodec.pt"
    config = get_config("tiny")
    both = Context(config, run.data, tmp_path / "both", torch.device("cpu"), progress=False, init=packaged,
                   keep_autoencoder=True)
    alone = Context(config, run.data, tmp_path / "alone", torch.device("cpu"), progress=False, init=packaged,
                    keep_autoencoder=True)
    run_training(both, ("ae", "latents"))
    run_training(alone, ("latents",))
    assert schedule.load(tmp_path / "alone" / "ae.pt")["kept_from"]["sha256"] == load_checkpoint(
        str(packaged))["sha256"]
    for split in ("train", "val"):
        assert np.array_equal(np.load(tmp_path / "alone" / "latents.npz")[split],
                              np.load(tmp_path / "both" / "latents.npz")[split])
    assert main(["qincodec", "train", "--data", str(run.data), "--out", str(tmp_path / "none"), "--config", "tiny",
                 "--stage", "latents"]) == 2
    assert "the autoencoder stage is not done; run it first (--stage ae)" in capsys.readouterr().err
    assert not (tmp_path / "none" / "latents.npz").exists()
