"""Adversarial stage-1 training: multi-period + multi-resolution discriminators and their losses (as DAC/Vocos).

* Multi-period discriminator (HiFi-GAN, used by DAC and Vocos): for each period p the waveform ``[B, 1, T]`` is
  folded into ``[B, 1, T/p, p]`` and scored by strided ``(5, 1)`` 2-D convolutions, so each column sees every
  p-th sample (periodic structure).
* Multi-resolution discriminator (UnivNet, used by Vocos): 2-D convolutions over the log-free magnitude STFT at
  several FFT sizes (hop = n_fft / 4), so each one sees one time-frequency trade-off.

Losses are least-squares GAN (DAC, HiFi-GAN): the discriminators minimise ``Σ_d mean((1 − D(x))²) +
mean(D(x̂)²)``, the generator ``Σ_d mean((1 − D(x̂))²)`` plus feature matching ``Σ_d mean_l |F_l(x̂) − F_l(x)|``
(L1 between every intermediate map for real and decoded audio, real maps detached).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from evalkit.training.qincodec import schedule

SLOPE = 0.1


def conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv layers then ``post``: flattened logits and every intermediate map (for feature matching)."""
    features = []
    for conv in convs:
        x = nn.functional.leaky_relu(conv(x), SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """One period of the multi-period discriminator; channels ``w, 4w, 16w, 32w, 32w`` (DAC/HiFi-GAN: w = 32)."""

    def __init__(self, period: int, width: int):
        super().__init__()
        self.period = period
        chans = [1, width, 4 * width, 16 * width, 32 * width]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
                                   for a, b in zip(chans, chans[1:], strict=False))
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        extra = (-x.shape[-1]) % self.period
        x = nn.functional.pad(x, (0, extra), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)
        return conv_stack(self.convs, self.post, x)


class ResolutionDiscriminator(nn.Module):
    """One FFT size of the multi-resolution discriminator (UnivNet/Vocos layout, ``width`` channels)."""

    def __init__(self, n_fft: int, width: int):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, width, (3, 9), padding=(1, 4))),
            *(weight_norm(nn.Conv2d(width, width, (3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)),
            weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, self.n_fft // 4, window=self.window,
                          center=True, return_complex=True).abs()
        x = spec.transpose(1, 2).unsqueeze(1)  # [B, 1, frames, bins]
        return conv_stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """All sub-discriminators; ``forward`` returns their logits and feature maps."""

    def __init__(self, periods: tuple[int, ...], fft_sizes: tuple[int, ...], width: int):
        super().__init__()
        self.subs = nn.ModuleList([*(PeriodDiscriminator(p, width) for p in periods),
                                   *(ResolutionDiscriminator(n, width) for n in fft_sizes)])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [sub(x) for sub in self.subs]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """``Σ_d mean((1 − D(x))²) + mean(D(x̂)²)`` (``fake`` computed on detached audio)."""
    return sum(((1 - r).pow(2).mean() + f.pow(2).mean()) for (r, _), (f, _) in zip(real, fake, strict=True))


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial ``Σ_d mean((1 − D(x̂))²)`` and feature matching ``Σ_d mean_l mean|F_l(x̂) − F_l(x)|``."""
    adversarial = sum((1 - f).pow(2).mean() for f, _ in fake)
    matching = sum(sum((a - b.detach()).abs().mean() for a, b in zip(ff, rf, strict=True)) / len(ff)
                   for (_, ff), (_, rf) in zip(fake, real, strict=True))
    return adversarial, matching


class Adversary:
    """The discriminators of an adversarial stage 1, their optimiser and one training step (DAC/Vocos)."""

    def __init__(self, t, device: torch.device):
        self.t = t
        self.disc = Discriminators(tuple(t.discriminator_periods), tuple(t.discriminator_fft_sizes),
                                   t.discriminator_width).to(device)
        self.opt = torch.optim.AdamW(self.disc.parameters(), lr=t.discriminator_lr, betas=(0.8, 0.99))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: schedule.warmup_cosine(s, max(1, t.ae_steps - t.gan_start_step), t.warmup_steps))

    def step(self, recon: torch.Tensor, batch: torch.Tensor, loss: torch.Tensor, parts: dict
             ) -> tuple[torch.Tensor, dict]:
        """Update the discriminators on (``batch``, detached ``recon``); return the generator's loss with the
        adversarial and feature-matching terms added."""
        d_loss = discriminator_loss(self.disc(batch), self.disc(recon.detach()))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.disc.parameters(), self.t.grad_clip * 10)
        self.opt.step()
        self.sched.step()
        with torch.no_grad():
            real = self.disc(batch)
        adversarial, matching = generator_losses(real, self.disc(recon))
        total = loss + self.t.adversarial_weight * adversarial + self.t.feature_matching_weight * matching
        return total, {**parts, "disc": d_loss.item(), "adv": adversarial.item(), "fm": matching.item()}

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
