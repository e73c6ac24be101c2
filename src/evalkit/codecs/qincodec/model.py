"""QinCodec's continuous autoencoder: a strided ConvNeXt encoder and a Vocos decoder (ConvNeXt + ISTFT head).

The encoder maps ``[B, 1, T]`` (T a multiple of the hop) to latents ``[B, D, T / hop]``; the decoder maps latents
back to ``[B, 1, T]``. No quantizer lives here: latents are quantized offline (:mod:`.qinco2`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from evalkit.codecs.qincodec.config import ModelConfig


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) → LayerNorm → pointwise MLP (×4, GELU) → layer scale, with a residual."""

    def __init__(self, channels: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, 4 * channels)
        self.pw2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class Downsample(nn.Module):
    """Strided conv (kernel 2s, padded by s in total): length ``L`` → ``L / s`` exactly."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.pad = (stride // 2, stride - stride // 2)
        self.conv = nn.Conv1d(c_in, c_out, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        chans = cfg.encoder_channels
        layers: list[nn.Module] = [nn.Conv1d(1, chans[0], 7, padding=3)]
        n_blocks = max(1, sum(cfg.encoder_blocks))
        for i, stride in enumerate(cfg.strides):
            c_in = chans[i]
            c_out = chans[i + 1] if i + 1 < len(chans) else chans[-1]
            layers += [ConvNeXtBlock(c_in, 1 / n_blocks) for _ in range(cfg.encoder_blocks[i])]
            if not cfg.encoder_blocks[i]:
                layers.append(nn.GELU())
            layers.append(Downsample(c_in, c_out, stride))
        layers += [nn.GELU(), nn.Conv1d(chans[-1], cfg.latent_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net(wav)


class Decoder(nn.Module):
    """Vocos: ConvNeXt blocks at the latent frame rate, then a linear head to log-magnitude and phase, ISTFT."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        width = cfg.decoder_channels
        self.hop = cfg.hop_length
        self.n_fft = cfg.n_fft
        self.embed = nn.Conv1d(cfg.latent_dim, width, 7, padding=3)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(width, 1 / cfg.decoder_blocks) for _ in range(cfg.decoder_blocks))
        self.final_norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, cfg.n_fft + 2)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(latent).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # [B, n_fft + 2, frames]
        log_mag, phase = h.chunk(2, dim=1)
        mag = torch.exp(log_mag.clamp(max=8.0))
        spec = torch.polar(mag, phase)
        frames = latent.shape[-1]
        wav = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=frames * self.hop)
        return wav.unsqueeze(1)


class Autoencoder(nn.Module):
    """Encoder + decoder; :meth:`forward` pads to a whole number of frames and crops back."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def pad(self, wav: torch.Tensor) -> torch.Tensor:
        extra = (-wav.shape[-1]) % self.cfg.hop_length
        return F.pad(wav, (0, extra)) if extra else wav

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T]`` → ``[B, D, ceil(T / hop)]``."""
        return self.encoder(self.pad(wav))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encode(wav)
        return self.decode(latent)[..., : wav.shape[-1]], latent
