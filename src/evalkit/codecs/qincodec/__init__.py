"""QinCodec: a continuous autoencoder whose latents are quantized offline with QINCo2 (or plain RVQ).

Families ``qincodec`` and ``qincodec-rvq``; the checkpoint shipped with the package is the default.
"""

from __future__ import annotations

from evalkit.codecs.qincodec.families import FAMILIES

__all__ = ["FAMILIES"]
