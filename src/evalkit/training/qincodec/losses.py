"""Training losses: DAC's multi-scale log-mel L1 (the ``mel_distance`` metric, differentiable) + waveform L1."""

from __future__ import annotations

import torch
from torch import nn

from evalkit.metrics.spectral import MEL_BANDS, MEL_WINDOWS, mel_filters

CLAMP = 1e-5


class MelLoss(nn.Module):
    """``Σ_scales mean |log10 max(M(x), 1e-5) − log10 max(M(y), 1e-5)|`` over 7 scales (windows 32…2048)."""

    def __init__(self, sample_rate: int):
        super().__init__()
        for w, n in zip(MEL_WINDOWS, MEL_BANDS, strict=True):
            self.register_buffer(f"fb{w}", mel_filters(sample_rate, w, n).clone(), persistent=False)
            self.register_buffer(f"win{w}", torch.hann_window(w), persistent=False)

    def log_mels(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.reshape(-1, x.shape[-1])
        out = []
        for w in MEL_WINDOWS:
            mag = torch.stft(x, w, w // 4, window=getattr(self, f"win{w}"), center=True, pad_mode="reflect",
                             return_complex=True).abs()
            out.append(torch.matmul(getattr(self, f"fb{w}"), mag).clamp(min=CLAMP).log10())
        return out

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum((a - b).abs().mean() for a, b in zip(self.log_mels(estimate), self.log_mels(target), strict=True))


class ReconstructionLoss(nn.Module):
    """``mel + l1_weight × mean |x − y|``; returns the total and its parts (floats) for logging."""

    def __init__(self, sample_rate: int, l1_weight: float):
        super().__init__()
        self.mel = MelLoss(sample_rate)
        self.l1_weight = l1_weight

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        mel = self.mel(estimate, target)
        l1 = (estimate - target).abs().mean()
        return mel + self.l1_weight * l1, {"mel": mel.item(), "l1": l1.item()}
