"""A toy codec packaged as an evalkit plugin: mu-law sample quantisation at 8 kHz.

Each sample of the 8 kHz signal is companded with the G.711 mu-law curve (mu = 255) and quantised to
``2**bits`` levels, so the codes are one codebook of ``2**bits`` entries at 8000 frames per second and the
bitrate is ``8000 x bits`` bit/s (16 kbps at 2 bits ... 64 kbps at 8 bits). It is a deliberately simple codec:
the point is how a codec is added to evalkit without editing evalkit.

The module works both ways a plugin can be given:

* installed (``pip install examples/toy-codec``): its ``pyproject.toml`` declares the entry point
  ``toy = "toy_codec:TOY_MULAW"`` in the group ``evalkit.codecs``;
* as a file: ``plugins: [examples/toy-codec/toy_codec.py]`` in a run config (``FAMILIES`` below).
"""

from __future__ import annotations

import math

from evalkit.codecs import Codec, CodecFamily, CodecSpec, Encoded, Param

MU = 255.0


class MuLawCodec(Codec):
    """``toy-mulaw?bits=B``: mu-law companding and uniform quantisation of each 8 kHz sample to 2**B levels.

    The constructor only reads the spec (cheap); there is no model to load, so ``load()`` is inherited.
    ``reconstruct`` (inherited, not overridden) resamples to 8 kHz and back, applies the channel policy and
    restores the input's length.
    """

    def __init__(self, spec: CodecSpec, device="auto"):
        super().__init__(spec, device)
        self.bits = int(spec.params["bits"])

    @property
    def sample_rate(self) -> int:
        return 8000

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return 8000.0  # one code per sample

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def cardinality(self) -> int:
        return 2**self.bits

    def encode(self, wav) -> Encoded:
        """``[batch, 1, samples]`` at 8 kHz → codes ``[batch, 1, samples]`` in ``[0, 2**bits)``."""
        import torch

        x = wav.clamp(-1.0, 1.0)
        companded = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)  # in [-1, 1]
        levels = self.cardinality - 1
        codes = torch.round((companded + 1.0) / 2.0 * levels).long()
        return Encoded(codes=codes, num_samples=int(wav.shape[-1]))

    def decode(self, encoded: Encoded):
        """Codes → ``[batch, 1, samples]``: the centre of each level, expanded with the inverse mu-law curve."""
        import torch

        levels = self.cardinality - 1
        companded = encoded.codes.float() / levels * 2.0 - 1.0
        x = torch.sign(companded) * (torch.pow(1.0 + MU, companded.abs()) - 1.0) / MU
        return x[..., : encoded.num_samples]


TOY_MULAW = CodecFamily(
    name="toy-mulaw",
    description="toy plugin codec: mu-law companded 8 kHz samples, 2**bits levels (8000 x bits bit/s)",
    params=(Param("bits", int, 4, "bits per sample (bitrate = 8 kbps x bits)", minimum=2, maximum=8, sweep=True),),
    factory=MuLawCodec,
    display_name="Toy mu-law",
)

FAMILIES = [TOY_MULAW]
