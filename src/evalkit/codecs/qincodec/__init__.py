"""QinCodec: a continuous autoencoder whose latents are quantized offline with QINCo2 (or plain RVQ).

Families ``qincodec`` and ``qincodec-rvq``; the checkpoint shipped with the package is the default. This package
is inference only (model, quantizers, checkpoint reader, adapters); ``evalkit.training.qincodec`` trains.
"""

from __future__ import annotations

from evalkit.codecs.qincodec.families import FAMILIES

__all__ = ["FAMILIES"]
