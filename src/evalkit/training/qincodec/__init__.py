"""QinCodec training (``evalkit qincodec train``): autoencoder, latents, quantizers, decoder finetuning.

The model, the quantizers' search and the checkpoint reader live in :mod:`evalkit.codecs.qincodec`; this package
writes the checkpoints they read.
"""
