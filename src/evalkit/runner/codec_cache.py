"""A worker's loaded codecs, bounded: models are shared between variants and evicted least recently used.

Variants that differ only in how many codebooks they use (``dac-44khz?n_codebooks=1…9``, EnCodec bandwidths,
KLT variants of one base model) share one loaded model, keyed by
:attr:`evalkit.codecs.rvq.PretrainedRvqCodec.model_key`. The models held stay under ``max_model_bytes``
(the most recently used one is always kept), and at most ``max_codecs`` codec objects are kept; evicting a
model drops every codec object that uses it, so its memory is really released.
"""

from __future__ import annotations

from collections import OrderedDict

from evalkit.codecs import AudioTransform, build_codec
from evalkit.codecs.klt import KltCodec
from evalkit.codecs.rvq import PretrainedRvqCodec

DEFAULT_MAX_MODEL_BYTES = 2 << 30
DEFAULT_MAX_CODECS = 16


def model_bytes(model) -> int:
    """Bytes of a torch module's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _model_holder(codec: AudioTransform) -> PretrainedRvqCodec | None:
    target = codec.base if isinstance(codec, KltCodec) else codec
    return target if isinstance(target, PretrainedRvqCodec) else None


class CodecCache:
    """Loaded codecs by (spec, device), sharing models by model key; see the module docstring."""

    def __init__(self, max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES, max_codecs: int = DEFAULT_MAX_CODECS):
        self.max_model_bytes = max_model_bytes
        self.max_codecs = max_codecs
        self._codecs: OrderedDict[tuple[str, str], tuple[AudioTransform, tuple | None]] = OrderedDict()
        self._models: OrderedDict[tuple, tuple[object, int]] = OrderedDict()

    @property
    def models(self) -> dict[tuple, object]:
        """The loaded models by model key (least recently used first)."""
        return {key: model for key, (model, _) in self._models.items()}

    @property
    def codecs(self) -> dict[tuple[str, str], AudioTransform]:
        return {key: codec for key, (codec, _) in self._codecs.items()}

    def get(self, spec: str, device: str) -> AudioTransform:
        """A loaded codec for ``spec`` on ``device``, reusing a loaded model when one fits."""
        key = (spec, device)
        if key in self._codecs:
            self._codecs.move_to_end(key)
            model_key = self._codecs[key][1]
            if model_key is not None:
                self._models.move_to_end(model_key)
            return self._codecs[key][0]
        codec = build_codec(spec, device)
        holder = _model_holder(codec)
        model_key = None
        if holder is not None:
            model_key = holder.model_key
            if model_key in self._models:
                holder.use_model(self._models[model_key][0])
                self._models.move_to_end(model_key)
            else:
                holder.load()
                self._models[model_key] = (holder.model, model_bytes(holder.model))
        codec.load()
        self._codecs[key] = (codec, model_key)
        self._evict()
        return codec

    def _evict(self) -> None:
        while len(self._codecs) > self.max_codecs:
            self._codecs.popitem(last=False)
        while len(self._models) > 1 and sum(size for _, size in self._models.values()) > self.max_model_bytes:
            old, _ = self._models.popitem(last=False)
            for key in [k for k, (_, mk) in self._codecs.items() if mk == old]:
                del self._codecs[key]

    def drop(self, spec: str, device: str) -> None:
        """Forget the codec for ``spec`` on ``device``, and its model unless a codec still kept uses it."""
        entry = self._codecs.pop((spec, device), None)
        if entry is not None and entry[1] is not None and all(mk != entry[1] for _, mk in self._codecs.values()):
            self._models.pop(entry[1], None)

    def clear(self) -> None:
        self._codecs.clear()
        self._models.clear()
