"""Shared plumbing of adapters around pretrained RVQ models (EnCodec, DAC).

The ``weights``/``seed`` spec options, the lazily built model, and encode/decode expressed through the
pipeline split at the quantizer (``encode_with``/``decode_with`` + ``quantize``/``dequantize``), which lets
variants such as KLT swap the quantizer and keep everything else.

Models are built from evalkit's own architecture tables; a weights file only supplies a state dict, read by
:mod:`evalkit.codecs.safe_load` (``weights_only=True``, code archives refused) and loaded strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from evalkit._lazy import torch
from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.safe_load import WeightsFileError, load_checked, require_fit
from evalkit.codecs.spec import CodecSpec, Param
from evalkit.codecs.weights import get_entry


def weights_params(default_seed: int = 0) -> tuple[Param, ...]:
    """The ``weights`` and ``seed`` parameters shared by every pretrained-model family."""
    return (
        Param("weights", str, "pretrained",
              "'pretrained' (resolved through caches, downloaded when online), 'random' (official "
              "architecture, seeded random weights), or a checkpoint path"),
        Param("seed", int, default_seed, "seed for weights=random", minimum=0),
    )


def fold_weight_norm(module) -> int:
    """Replace every weight-normed layer's ``(g, v)`` in ``module`` by the weight it computes, ``g · v / ‖v‖``;
    returns how many layers were folded.

    A weight-normed layer holds ``v`` and, between calls, the weight computed from it: two copies of its largest
    tensor. Folded once at load, the model holds one, and computes exactly what it did (the forward computed the
    same weight by the same function): DAC 44.1 kHz resides in 561 MB instead of 859 MB. Only for inference.
    """
    from torch.nn.utils import parametrize, remove_weight_norm

    folded = 0
    for layer in module.modules():
        if hasattr(layer, "weight_g") and hasattr(layer, "weight_v"):  # torch.nn.utils.weight_norm (a hook)
            remove_weight_norm(layer)
            folded += 1
        elif parametrize.is_parametrized(layer, "weight"):  # torch.nn.utils.parametrizations.weight_norm
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            folded += 1
    return folded


def weights_label(weights: str, seed: int) -> str:
    if weights == "random":
        return f"random (seed {seed}) - NOT a pretrained model"
    return "pretrained" if weights == "pretrained" else f"checkpoint {weights}"


class PretrainedRvqCodec(Codec):
    """Base of the EnCodec and DAC adapters; subclasses define ``ARCHS``, ``load`` and the pipeline split."""

    ARCHS: ClassVar[dict[str, Any]]

    def __init__(self, spec: CodecSpec, device: str | torch.device = "auto"):
        super().__init__(spec, device)
        self.arch = self.ARCHS[spec.family]
        self.weights = spec.params["weights"]
        self.seed = int(spec.params["seed"])
        self.weights_label = weights_label(self.weights, self.seed)
        self._model = None

    @property
    def sample_rate(self) -> int:
        return self.arch.sample_rate

    @property
    def model(self):
        self.load()
        return self._model

    @property
    def model_key(self) -> tuple[str, str, int | None, str]:
        """What determines the loaded model: family, weights, seed (random weights only) and device.

        Variants that differ only in how many codebooks they use (bandwidth, ``n_codebooks``) have the same
        key: the adapters choose their codebooks per call, so one loaded model serves them all.
        """
        return (self.spec.family, self.weights, self.seed if self.weights == "random" else None, str(self.device))

    def build_model(self):
        """The official architecture from evalkit's table (random weights seeded by ``seed``); no file is read."""
        raise NotImplementedError

    def state_dict_from(self, path: Path, *, mmap: bool = False) -> Mapping[str, torch.Tensor]:
        """The state dict held by the weights file ``path``, read safely (see :mod:`evalkit.codecs.safe_load`).

        Raises:
            WeightsFileError: a code archive, objects beyond tensors and plain data, an unreadable file, or a
                file that describes another architecture.
        """
        raise NotImplementedError

    def weights_path(self) -> Path:
        """The pretrained weights file: the explicit ``weights=PATH``, else the search path (or a download)."""
        explicit = None if self.weights == "pretrained" else self.weights
        return get_entry(self.arch.weights_name).resolve(explicit)

    def build_loaded_model(self):
        """:meth:`build_model` with the pretrained state dict loaded strictly (every key, every shape); the
        weights file is read and checked before the model is built. Random weights read no file."""
        if self.weights == "random":
            return self.build_model()
        path = self.weights_path()
        state = self.state_dict_from(path)
        model = self.build_model()
        load_checked(model, state, path, self.spec.family)
        return model

    def check_weights_file(self, path: Path) -> None:
        """Refuse ``path`` as this model's weights unless it would load, reading no tensor data (plan time).

        The file is opened as :meth:`load` opens it (memory-mapped) and its keys and shapes are compared with the
        architecture built on the ``meta`` device. Without the model's library only the file itself is checked.

        Raises:
            WeightsFileError: as :meth:`state_dict_from`, or keys or shapes that differ from the architecture.
        """
        state = self.state_dict_from(path, mmap=True)
        try:
            with torch.device("meta"):
                model = self.build_model()
        except ImportError:
            return  # the units report the missing library
        require_fit(model.state_dict(), state, path, self.spec.family)

    def use_model(self, model) -> PretrainedRvqCodec:
        """Share a model already loaded by a variant with the same :attr:`model_key`."""
        self._model = model
        return self

    def encode(self, wav: torch.Tensor) -> Encoded:
        return self.encode_with(wav, self.quantize)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        return self.decode_with(encoded, self.dequantize)


_CHECKED: dict[tuple, str | None] = {}


def pretrained_model_of(codec) -> PretrainedRvqCodec | None:
    """The pretrained RVQ codec that ``codec`` runs: itself, or the base of a variant wrapping one (KLT)."""
    target = getattr(codec, "base", codec)
    return target if isinstance(target, PretrainedRvqCodec) else None


def weights_file_problem(codec: PretrainedRvqCodec, path: Path) -> str | None:
    """Why ``path`` cannot be ``codec``'s weights (one line naming the file), or ``None``.

    :meth:`PretrainedRvqCodec.check_weights_file`, remembered per family and file state (size, mtime), so that
    a grid of variants over one model checks its file once.
    """
    stat = path.stat()
    key = (codec.spec.family, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        try:
            codec.check_weights_file(path)
            _CHECKED[key] = None
        except WeightsFileError as exc:
            _CHECKED[key] = str(exc)
    return _CHECKED[key]
