"""Adversarial stage 1 (multi-period + multi-resolution discriminators, feature matching): losses, structure, and
a few tiny training steps with resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from evalkit.codecs.qincodec.config import QinConfig
from evalkit.training.qincodec import schedule
from evalkit.training.qincodec.adversarial import (
    Discriminators,
    PeriodDiscriminator,
    discriminator_loss,
    generator_losses,
)
from evalkit.training.qincodec.recipes import CONFIGS, get_config
from evalkit.training.qincodec.schedule import StageStopped
from evalkit.training.qincodec.train import Context, run_training

TINY_GAN = {"adversarial": True, "discriminator_width": 2, "discriminator_periods": (2, 3),
            "discriminator_fft_sizes": (256, 128), "ae_steps": 3}


def test_least_squares_losses_match_hand_computed_values():
    real = [(torch.tensor([[1.0, 0.5]]), []), (torch.tensor([[0.0]]), [])]
    fake = [(torch.tensor([[0.0, 1.0]]), []), (torch.tensor([[2.0]]), [])]
    # D: mean((1-r)^2) + mean(f^2) per discriminator: (0 + 0.25)/2 + (0 + 1)/2 = 0.625; (1)^2 + 2^2 = 5
    assert float(discriminator_loss(real, fake)) == pytest.approx(0.625 + 5.0)
    # G: mean((1-f)^2): (1 + 0)/2 + 1 = 1.5
    a = torch.tensor([[1.0, 3.0]], requires_grad=True)
    b = torch.tensor([[1.0, 1.0]], requires_grad=True)
    adversarial, matching = generator_losses([(torch.zeros(1, 1), [b]), (torch.zeros(1, 1), [b])],
                                             [(torch.tensor([[0.0, 1.0]]), [a]), (torch.tensor([[2.0]]), [a])])
    assert float(adversarial) == pytest.approx(1.5)
    assert matching.item() == pytest.approx(2 * 1.0)  # mean |a - b| = 1 for each of the two discriminators
    matching.backward()
    assert a.grad is not None and b.grad is None  # real feature maps are targets, not trained through


def test_a_period_discriminator_keeps_the_columns_of_its_period_apart():
    torch.manual_seed(0)
    disc = PeriodDiscriminator(5, width=2)
    x = torch.randn(1, 1, 600)
    y = x.clone()
    y[..., 237] += 1.0  # sample 237 lies in column 237 % 5 = 2
    with torch.no_grad():
        first_x, first_y = disc.convs[0](x.view(1, 1, -1, 5)), disc.convs[0](y.view(1, 1, -1, 5))
    changed = (first_x - first_y).abs().sum(dim=(0, 1, 2))
    assert changed[2] > 0 and torch.all(changed[[0, 1, 3, 4]] == 0)


def test_discriminators_score_every_sub_discriminator_and_return_their_features():
    disc = Discriminators((2, 3), (256, 128), width=2)
    out = disc(torch.randn(2, 1, 4000))
    assert len(out) == 4
    for logits, features in out:
        assert logits.shape[0] == 2 and len(features) >= 5


def test_paper_trains_adversarially_and_small_states_its_choice():
    assert CONFIGS["paper"].train.adversarial and not CONFIGS["small"].train.adversarial
    t = CONFIGS["paper"].train
    assert (t.discriminator_periods, t.discriminator_fft_sizes) == ((2, 3, 5, 7, 11), (2048, 1024, 512))
    # the periods survive a JSON round trip of the configuration (run.json, checkpoint headers)
    again = QinConfig.from_dict(json.loads(json.dumps(CONFIGS["paper"].as_dict())))
    assert again == CONFIGS["paper"]


@pytest.mark.slow  # adversarial training steps
def test_a_few_tiny_adversarial_steps_train_and_resume(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    t = np.arange(16_000 * 2) / 16_000
    for i in range(3):
        x = 0.2 * np.sin(2 * np.pi * (200 + 100 * i) * t) + 0.02 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(data / f"c{i}.wav", x.astype(np.float32), 16_000)
    config = get_config("tiny", **TINY_GAN)
    ctx = Context(config, data, tmp_path / "run", torch.device("cpu"), budget_s=0.0, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(StageStopped, match="ae: stopped at step 1/3"):
            run_training(ctx, ("ae",))
        state = schedule.load(tmp_path / "run" / "ae_last.pt")  # weights_only: the discriminator state is plain
        assert set(state["gan"]) == {"disc", "opt", "sched"} and state["gan"]["opt"]["state"]
        ctx.budget_s = None
        run_training(ctx, ("ae",))
    finally:
        torch.set_num_threads(threads)
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    steps = [h for h in history if h.get("stage") == "ae" and "step" in h]
    assert steps and all(np.isfinite(h[k]) and h[k] >= 0 for h in steps for k in ("disc", "adv", "fm", "mel"))
    assert (tmp_path / "run" / "ae.pt").is_file()
