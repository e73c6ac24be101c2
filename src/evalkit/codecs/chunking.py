"""Coding a long input in chunks with overlapping context, so that a neural codec's memory stays bounded.

A convolutional codec run on a whole 10-minute item holds activations of the whole length at every layer (DAC's
first encoder block alone: 64 channels × 26.5 M samples × 4 bytes = 6.8 GB). Inputs longer than
:attr:`Chunking.above_s` seconds are therefore coded chunk by chunk, in two passes over frame-aligned windows:

* **encode**: every chunk of ``chunk`` frames is encoded from the audio of its frames plus ``context`` frames on
  each side (cut at the item's ends), and only the chunk's own frames are kept. The codes of all chunks, in
  order, are the item's codes (same shape as an unchunked encode; codebook metrics read them as usual);
* **decode**: every chunk of frames is decoded from those codes plus ``context`` frames of codes on each side,
  and only the chunk's own samples are kept.

So the decoded audio is a function of the stored codes alone, as a real chunked decoder would make it. Where the
context covers the model's receptive field on both sides and the model keeps no state across time (DAC,
QinCodec), the result equals the unchunked one up to float rounding; with a recurrent model (EnCodec's LSTMs)
it differs by what the state remembers from beyond the context. The first and last chunks see the item's real
ends, as the unchunked model does. Each codec states its :class:`Chunking` and why; the chunk and context
lengths are part of the unit key of every chunked unit (:func:`evalkit.runner.plan.unit_key`), and inputs not
longer than the threshold are coded whole, exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from evalkit._lazy import torch

#: Inputs longer than this many seconds are coded in chunks (shorter ones whole, exactly as without chunking).
DEFAULT_ABOVE_S = 30.0


@dataclass(frozen=True)
class Chunking:
    """How a codec codes long inputs: chunks of ``chunk_s`` seconds with ``context_s`` seconds of context on
    each side, for inputs longer than ``above_s`` seconds."""

    chunk_s: float
    context_s: float
    above_s: float = DEFAULT_ABOVE_S

    def applies(self, samples: int, sample_rate: int) -> bool:
        """Whether an input of ``samples`` at ``sample_rate`` is coded in chunks.

        >>> Chunking(1.0, 0.25, above_s=30).applies(30 * 44_100, 44_100), Chunking(1.0, 0.25).applies(1_323_001, 44_100)
        (False, True)
        """
        return samples > round(self.above_s * sample_rate)

    def key(self) -> dict[str, float]:
        """What a chunked unit adds to its key: the chunk and context lengths (the threshold only decides
        whether an item is chunked, which the key records by having this part or not)."""
        return {"chunk_s": float(self.chunk_s), "context_s": float(self.context_s)}

    def frames(self, hop: int, sample_rate: int) -> tuple[int, int]:
        """``(chunk, context)`` in frames of ``hop`` samples at ``sample_rate``: the chunk rounded to whole frames
        (at least one), the context rounded up.

        >>> Chunking(1.0, 0.25).frames(512, 44_100)
        (86, 22)
        """
        chunk = max(1, round(self.chunk_s * sample_rate / hop))
        return chunk, math.ceil(self.context_s * sample_rate / hop)


def windows(frames: int, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(start, end, window_start, window_end)`` frame bounds of each chunk of ``frames`` and its window.

    >>> windows(10, 4, 1)
    [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
    """
    return [(start, min(start + chunk, frames), max(0, start - context), min(frames, start + chunk + context))
            for start in range(0, frames, chunk)]


def encode_chunked(encode: Callable[[torch.Tensor], torch.Tensor], wav: torch.Tensor, hop: int,
                   chunk: int, context: int) -> torch.Tensor:
    """Codes ``[batch, codebooks, ceil(samples / hop)]`` of ``wav`` (``[batch, channels, samples]``), encoded
    window by window; ``encode`` maps audio to codes with one frame per ``hop`` samples (the last one padded)."""
    length = wav.shape[-1]
    frames = math.ceil(length / hop)
    pieces = []
    for start, end, w_start, w_end in windows(frames, chunk, context):
        codes = encode(wav[..., w_start * hop: min(length, w_end * hop)])
        if codes.shape[-1] != w_end - w_start:
            raise RuntimeError(f"chunked encode: {codes.shape[-1]} frames for a window of {w_end - w_start}")
        pieces.append(codes[..., start - w_start: end - w_start])
    return torch.cat(pieces, dim=-1)


def decode_chunked(decode: Callable[[torch.Tensor, int], torch.Tensor], codes: torch.Tensor, num_samples: int,
                   hop: int, chunk: int, context: int) -> torch.Tensor:
    """Audio ``[batch, channels, at most num_samples]`` from ``codes``, decoded window by window; ``decode`` maps
    codes and a sample count to audio of at most that many samples (``hop`` samples per frame)."""
    out = None
    filled = 0
    spans = windows(codes.shape[-1], chunk, context)
    for n, (start, end, w_start, w_end) in enumerate(spans):
        window_samples = min(num_samples, w_end * hop) - w_start * hop
        audio = decode(codes[..., w_start:w_end], window_samples)
        keep = audio[..., (start - w_start) * hop: min(num_samples, end * hop) - w_start * hop]
        if out is None:
            out = audio.new_zeros((*audio.shape[:-1], num_samples))
        if n < len(spans) - 1 and keep.shape[-1] != (end - start) * hop:
            raise RuntimeError(f"chunked decode: the decoder gave {audio.shape[-1]} samples for a window of "
                               f"{w_end - w_start} frames, too few to keep its chunk")
        out[..., start * hop: start * hop + keep.shape[-1]] = keep
        filled = start * hop + keep.shape[-1]
    return out[..., :filled]
