"""Codec adapters ``qincodec?…`` (QINCo2), ``qincodec-rvq?…`` (its plain-RVQ baseline) and ``qincodec-irvq?…``
(improved RVQ: codebooks trained with beam search) over one checkpoint.

All share the checkpoint's encoder and finetuned decoder; they differ only in the latent quantizer. The
bitrate is chosen with ``bitrate_kbps`` or ``n_steps`` (a prefix of the M trained steps):
``bitrate = frame_rate × n_steps × log2 K``. All split their pipeline at the quantizer
(``encode_with``/``decode_with``), so KLT variants can wrap the RVQ baseline.
"""

from __future__ import annotations

from evalkit._lazy import torch
from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.chunking import Chunking
from evalkit.codecs.qincodec.checkpoint import CheckpointError, load_checkpoint, no_irvq_message, read_header
from evalkit.codecs.qincodec.config import QinConfig
from evalkit.codecs.spec import CodecSpec


class QincodecCodec(Codec):
    """QinCodec at a fixed number of quantizer steps; ``quantizer`` is ``qinco2``, ``rvq`` or ``irvq``."""

    # Long inputs in 4 s chunks with 0.5 s of context on each side. The autoencoder is convolutional and
    # stateless (LayerNorm per frame, quantizers per frame); an impulse reaches 4 frames (40 ms) in the encoder
    # and 0.2 s in the decoder (embedding conv, 5 ConvNeXt blocks of kernel 7, the ISTFT window), so 0.5 s
    # covers it with room and chunked output equals unchunked output up to float rounding. Encoding holds about
    # 30 MB per second of window (QINCo2's beam search over every frame, the encoder's first layers at 24 kHz):
    # a 5 s window costs ~140 MB, an 11 s one 400 MB; 4 s chunks keep the context overhead at 25 %.
    chunking = Chunking(chunk_s=4.0, context_s=0.5)

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto", quantizer: str = "qinco2"):
        super().__init__(spec, device)
        self.quantizer_kind = quantizer
        self.checkpoint = str(spec.params["checkpoint"])
        header = read_header(self.checkpoint)  # without torch: describing the codec stays cheap
        self.config = QinConfig.from_dict(header["config"])
        self.sha256 = header["sha256"]
        self.n_steps = int(spec.params["n_steps"])
        if quantizer == "qinco2":
            self.candidates = int(spec.params.get("candidates", 0)) or self.config.quantizer.candidates
            self.beam = int(spec.params.get("beam", 0)) or self.config.quantizer.beam
        elif quantizer == "irvq":  # exhaustive candidates; by default the beam its codebooks were trained with
            self.candidates = self.config.quantizer.codebook_size
            self.beam = int(spec.params.get("beam", 0)) or self.config.quantizer.beam
        else:  # exhaustive candidates; greedy unless a beam is asked for
            self.candidates, self.beam = self.config.quantizer.codebook_size, int(spec.params.get("beam", 1))
        where = "shipped with evalkit" if self.checkpoint == "shipped" else self.checkpoint
        self.weights_label = f"evalkit-trained QinCodec '{self.config.name}' ({where}, sha256 {self.sha256[:12]})"
        self._parts = None

    # --- static description --------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.model.sample_rate

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return self.config.model.frame_rate

    @property
    def num_codebooks(self) -> int:
        return self.n_steps

    @property
    def cardinality(self) -> int:
        return self.config.quantizer.codebook_size

    @property
    def hop_length(self) -> int:
        return self.config.model.hop_length

    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def weights_identity(self) -> str | None:
        """What identifies the weights in cache keys: the checkpoint file's SHA-256."""
        return f"qincodec-checkpoint-sha256={self.sha256}"

    # --- model -----------------------------------------------------------------------------------
    def load(self) -> QincodecCodec:
        if self._parts is not None:
            return self
        from evalkit.codecs.qincodec.model import Decoder, Encoder
        from evalkit.codecs.qincodec.qinco2 import Qinco2, ResidualVQ

        bundle = load_checkpoint(self.checkpoint)
        cfg = self.config
        encoder, decoder = Encoder(cfg.model), Decoder(cfg.model)
        encoder.load_state_dict(bundle["encoder"])
        decoder.load_state_dict(bundle["decoder"])
        if self.quantizer_kind == "qinco2":
            quantizer = Qinco2(cfg.model.latent_dim, cfg.quantizer)
            quantizer.load_state_dict(bundle["qinco2"])
        else:
            if self.quantizer_kind not in bundle:
                raise CheckpointError(no_irvq_message(self.checkpoint))
            quantizer = ResidualVQ(cfg.model.latent_dim, cfg.quantizer.steps, cfg.quantizer.codebook_size)
            quantizer.load_state_dict(bundle[self.quantizer_kind])
        self._parts = tuple(m.eval().to(self.device) for m in (encoder, decoder, quantizer))
        return self

    @property
    def parts(self):
        self.load()
        return self._parts

    # --- pipeline, split at the quantizer ---------------------------------------------------------
    def encode(self, wav: torch.Tensor) -> Encoded:
        return self.encode_with(wav, self.quantize)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        return self.decode_with(encoded, self.dequantize)

    def encode_with(self, wav: torch.Tensor, quantize) -> Encoded:
        encoder = self.parts[0]
        length = wav.shape[-1]
        extra = (-length) % self.hop_length
        wav = torch.nn.functional.pad(wav.to(self.device), (0, extra))
        return Encoded(quantize(encoder(wav)).long(), int(length))

    def decode_with(self, encoded: Encoded, dequantize) -> torch.Tensor:
        decoder = self.parts[1]
        return decoder(dequantize(encoded.codes.to(self.device)))[..., : encoded.num_samples]

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, D, T]`` → codes ``[B, n_steps, T]``."""
        quantizer = self.parts[2]
        b, d, t = latent.shape
        flat = latent.transpose(1, 2).reshape(-1, d)
        if self.quantizer_kind == "qinco2":
            codes = quantizer.encode(flat, self.candidates, self.beam, self.n_steps)
        else:
            codes = quantizer.encode(flat, self.n_steps, self.beam)
        return codes.reshape(b, t, -1).transpose(1, 2)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, n_steps, T]`` → latent ``[B, D, T]``."""
        quantizer = self.parts[2]
        b, m, t = codes.shape
        flat = quantizer.decode(codes.transpose(1, 2).reshape(-1, m))
        return flat.reshape(b, t, -1).transpose(1, 2)

    @property
    def stored_codebooks(self) -> int:
        """Steps the checkpoint stores (M); the codec uses the first :attr:`num_codebooks`."""
        return self.config.quantizer.steps

    def codebooks(self, stages: int | None = None) -> torch.Tensor:
        """``[stages, K, D]`` in latent space (default: the steps in use): (i)RVQ's codewords; QINCo2's base
        codewords ``C_m`` (its effective codewords also depend on the partial reconstruction)."""
        quantizer = self.parts[2]
        if self.quantizer_kind in ("rvq", "irvq"):
            books = quantizer.latent_codebooks()
        else:
            books = quantizer.codebooks.detach() * quantizer.norm.scale
            books[0] = books[0] + quantizer.norm.mean
        return books[: stages or self.n_steps]

    def latent_codebooks(self, stages: int | None = None) -> torch.Tensor:
        """RVQ codebooks in latent space ``[stages, K, D]``, which the KLT family truncates."""
        if self.quantizer_kind != "rvq":
            raise NotImplementedError("KLT applies to the RVQ baseline (qincodec-rvq), not to QINCo2")
        return self.codebooks(stages)

    def info(self) -> dict:
        bundle = load_checkpoint(self.checkpoint)
        prov = bundle["provenance"]
        keys = ("config_name", "train_minutes", "ae_steps", "ae_best_val_mel", "finetune_val_mel_after", "created")
        return {"checkpoint_sha256": self.sha256, "quantizer": self.quantizer_kind, "n_steps": self.n_steps,
                **({"candidates": self.candidates} if self.quantizer_kind == "qinco2" else {}), "beam": self.beam,
                **{k: prov[k] for k in keys if k in prov}}
