"""QinCodec configuration: what a checkpoint records about its model, quantizers and training.

A configuration fixes everything that shapes a checkpoint: the autoencoder (rate, strides, widths), the latent
quantizers (M steps of K codewords; QINCo2 widths) and the three training stages. Bitrate at M steps is
``frame_rate × M × log2 K``; ``frame_rate = sample_rate / Π strides``. The named recipes (``tiny``, ``small``,
``paper``) are in ``evalkit.training.qincodec.recipes``.

>>> model = ModelConfig()
>>> model.frame_rate, model.hop_length
(100.0, 240)
>>> QuantizerConfig().bitrate_kbps(model.frame_rate, 8)
8.0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """ConvNeXt encoder (strided) → continuous latent ``[D, frames]`` → Vocos decoder (ConvNeXt + ISTFT head)."""

    sample_rate: int = 24_000
    strides: tuple[int, ...] = (4, 4, 5, 3)
    encoder_channels: tuple[int, ...] = (16, 32, 96, 192)  # width before each downsampling
    encoder_blocks: tuple[int, ...] = (0, 0, 1, 1)  # ConvNeXt blocks per level (none at the costly high rates)
    latent_dim: int = 64
    decoder_channels: int = 256
    decoder_blocks: int = 5
    n_fft: int = 960  # ISTFT head; hop = Π strides

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


@dataclass(frozen=True)
class QuantizerConfig:
    """QINCo2 (and its plain-RVQ baseline) over normalised latents: M steps of K codewords."""

    steps: int = 16  # M
    codebook_size: int = 1024  # K
    embed_dim: int = 64  # d_e (= latent_dim: identity in/out projections)
    hidden_dim: int = 128  # d_h
    blocks: int = 2  # L residual MLP blocks per step
    train_candidates: int = 16  # A while training (the reference trains with its test-time A and B)
    train_beam: int = 4  # B while training
    candidates: int = 16  # A at inference (raise for better codes)
    beam: int = 4  # B at inference

    def bitrate_kbps(self, frame_rate: float, steps: int) -> float:
        return frame_rate * steps * math.log2(self.codebook_size) / 1000


@dataclass(frozen=True)
class TrainConfig:
    """Budgets and optimiser settings of the three stages."""

    segment_s: float = 1.0
    batch_size: int = 16
    ae_steps: int = 5000
    ae_lr: float = 1e-3
    l1_weight: float = 10.0  # without the waveform L1 term the phase never aligns
    warmup_steps: int = 500
    grad_clip: float = 1.0
    # Adversarial stage 1 (DAC/Vocos): multi-period + multi-resolution discriminators, least-squares GAN, feature
    # matching; weights relative to the mel distance as DAC's 15 : 1 : 2 (mel : adversarial : feature matching).
    # Off in `small`: on this 2-core CPU (1 thread) a step of 16 x 1 s took 5.8 s plain and 522 s with the
    # DAC-width discriminators (41.4 M parameters), 89x (benchmarks/qincodec_gan_bench.py, one run, machine shared):
    # the 5000 steps of the small recipe would take about 30 days instead of 8 hours.
    adversarial: bool = False
    adversarial_weight: float = 1 / 15
    feature_matching_weight: float = 2 / 15
    discriminator_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    discriminator_fft_sizes: tuple[int, ...] = (2048, 1024, 512)
    discriminator_width: int = 32  # MPD channels w, 4w, 16w, 32w, 32w (DAC/HiFi-GAN: 32); MRD: w throughout
    discriminator_lr: float = 1e-4
    gan_start_step: int = 0  # plain reconstruction steps before the discriminators join
    quantizer_vectors: int = 100_000  # training latents for k-means / QINCo2 (sampled)
    quantizer_val_vectors: int = 10_000  # held-out latents scored after every QINCo2 epoch
    kmeans_iters: int = 12
    quantizer_epochs: int = 6
    quantizer_batch: int = 1024
    # QINCo2 optimiser as the reference (facebookresearch/Qinco config/qinco_cfg.yaml): AdamW lr 8e-4, weight
    # decay 0.1, gradient clipping by value 0.1, codebooks = RQ + 0.1 x std noise, cosine to lr x 1e-3
    quantizer_lr: float = 8e-4
    quantizer_weight_decay: float = 0.1
    quantizer_grad_clip_value: float = 0.1
    quantizer_lr_floor: float = 1e-3
    quantizer_warmup_fraction: float = 0.05  # the reference ramps 3 of 60 epochs
    codebook_noise_init: float = 0.1
    finetune_steps: int = 500
    finetune_lr: float = 2e-4
    finetune_min_steps: int = 4  # quantized latents use a random prefix of M' ∈ [min, M] steps
    val_fraction: float = 0.08
    val_segments: int = 32
    checkpoint_every_s: float = 120.0
    seed: int = 0


@dataclass(frozen=True)
class QinConfig:
    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QinConfig:
        model = dict(data["model"])
        for key in ("strides", "encoder_channels", "encoder_blocks"):
            model[key] = tuple(model[key])
        train = dict(data["train"])
        for key in ("discriminator_periods", "discriminator_fft_sizes"):
            if key in train:
                train[key] = tuple(train[key])
        return cls(data["name"], ModelConfig(**model), QuantizerConfig(**data["quantizer"]), TrainConfig(**train))
