"""Shared plumbing of adapters around pretrained RVQ models (EnCodec, DAC).

The ``weights``/``seed`` spec options, the lazily built model, and encode/decode expressed through the
pipeline split at the quantizer (``encode_with``/``decode_with`` + ``quantize``/``dequantize``), which lets
variants such as KLT swap the quantizer and keep everything else.

Models are built from evalkit's own architecture tables; a weights file only supplies a state dict, read by
:mod:`evalkit.codecs.safe_load` (``weights_only=True``, code archives refused) and loaded strictly.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from evalkit._lazy import torch
from evalkit.codecs.base import Codec, Encoded
from evalkit.codecs.safe_load import WeightsFileError, load_checked, require_fit
from evalkit.codecs.spec import CodecSpec, Param
from evalkit.codecs.weights import get_entry

log = logging.getLogger(__name__)


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


#: In-place ops that only set values (random initialisation): on a meta tensor, which has none, nothing to do.
VALUE_OPS = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                       "xavier_uniform_", "xavier_normal_", "orthogonal_", "constant_", "ones_", "zeros_", "fill_",
                       "zero_", "copy_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_", "exponential_"})


@contextmanager
def shapes_only() -> Iterator[None]:
    """Within the block, building a model on the ``meta`` device computes shapes only: random initialisation
    (:data:`VALUE_OPS`) leaves meta tensors as they are, and the weight-norm hook's two functions give meta tensors
    of their results' shapes. Run on meta tensors, those ops load torch's Python meta kernels (about 800 modules,
    sympy among them: 73 MiB more in the process that builds the model). Other tensors are computed as before."""
    from torch.overrides import TorchFunctionMode

    class ShapesOnly(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            first = args[0] if args else kwargs.get("tensor", kwargs.get("input"))  # nn.init passes it by name
            if isinstance(first, torch.Tensor) and first.is_meta:
                if func is torch._weight_norm:
                    return torch.empty(first.shape, dtype=first.dtype, device="meta")
                if func is torch.norm_except_dim:
                    dim = args[2] if len(args) > 2 else kwargs.get("dim", 0)
                    shape = [] if dim == -1 else [n if i == dim else 1 for i, n in enumerate(first.shape)]
                    return torch.empty(shape, dtype=first.dtype, device="meta")
                if getattr(func, "__name__", "") in VALUE_OPS:
                    return first
            return func(*args, **kwargs)

    with ShapesOnly():
        yield


def weight_norm_keys(module, prefix: str = "") -> dict[str, tuple[str, str, int]]:
    """For every weight-normed layer of ``module`` (either kind :func:`fold_weight_norm` folds): the state-dict key
    of the weight it computes → the keys of its ``g`` and ``v`` and the dimension its norm keeps, the keys under
    ``prefix`` (the module's name in its model)."""
    from torch.nn.utils import parametrize

    found = {}
    for name, layer in module.named_modules(prefix=prefix):
        base = f"{name}." if name else ""
        for hook in _weight_norm_hooks(layer):
            found[base + hook.name] = (f"{base}{hook.name}_g", f"{base}{hook.name}_v", hook.dim)
        if parametrize.is_parametrized(layer, "weight"):
            for step in layer.parametrizations.weight:
                if hasattr(step, "dim") and type(step).__name__ == "_WeightNorm":
                    found[base + "weight"] = (f"{base}parametrizations.weight.original0",
                                              f"{base}parametrizations.weight.original1", step.dim)
    return found


def fold_state(state: dict[str, torch.Tensor], norms: dict[str, tuple[str, str, int]]) -> None:
    """Replace, in ``state``, each weight-normed layer's ``g`` and ``v`` by the weight they compute (``norms``:
    :func:`weight_norm_keys`), one layer at a time, the weight written over ``v`` (it has ``v``'s shape): folding
    holds one layer's weight more than the state, and leaves no holes in the heap. The weight is computed by the
    function the layer's forward and :func:`fold_weight_norm` use, so it is the same tensor."""
    shared = Counter(t.untyped_storage().data_ptr() for t in state.values())  # tensors of the file per storage
    for key, (g, v, dim) in norms.items():
        v_tensor, g_tensor = state.pop(v), state.pop(g)
        weight = torch._weight_norm(v_tensor, g_tensor, dim)
        alone = shared[v_tensor.untyped_storage().data_ptr()] == 1  # writing over it changes no other tensor
        state[key] = v_tensor.copy_(weight) if alone and v_tensor.is_contiguous() else weight
        del weight, v_tensor, g_tensor


def _recompute_hook_weights(model) -> None:
    """The weight a weight-norm hook keeps between calls (layers left unfolded), computed from the loaded ``(g, v)``
    as the layer's next call would: built on the meta device, it has no values yet."""
    for layer in model.modules():
        for hook in _weight_norm_hooks(layer):
            setattr(layer, hook.name, hook.compute_weight(layer))


def _weight_norm_hooks(layer) -> list:
    """The weight-norm hooks (``torch.nn.utils.weight_norm``) of ``layer`` itself."""
    from torch.nn.utils.weight_norm import WeightNorm

    return [hook for hook in layer._forward_pre_hooks.values() if isinstance(hook, WeightNorm)]


def _meta_tensors(model) -> list[str]:
    """The names of the tensors ``model`` holds on the meta device: parameters, buffers and plain attributes."""
    found = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    for prefix, layer in model.named_modules():
        found += [f"{prefix}.{k}".lstrip(".") for k, v in vars(layer).items()
                  if isinstance(v, torch.Tensor) and v.is_meta]
    return found


def weights_label(weights: str, seed: int) -> str:
    if weights == "random":
        return f"random (seed {seed}) - NOT a pretrained model"
    return "pretrained" if weights == "pretrained" else f"checkpoint {weights}"


class PretrainedRvqCodec(Codec):
    """Base of the EnCodec and DAC adapters; subclasses define ``ARCHS``, ``load`` and the pipeline split."""

    ARCHS: ClassVar[dict[str, Any]]
    #: the parts whose weight norms are folded for inference (:func:`fold_weight_norm`); not the quantizers, whose
    #: ``(g, v)`` KLT's projections read
    FOLDED_PARTS: ClassVar[tuple[str, ...]] = ("encoder", "decoder")

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

    def build_inference_model(self):
        """:meth:`build_loaded_model` with the weight norms of :attr:`FOLDED_PARTS` folded, holding one copy of
        each weight.

        From a weights file the model is built on the ``meta`` device (no memory, no random initialisation) and
        takes the file's tensors as they are, each weight-normed layer's ``(g, v)`` folded into its weight as it
        goes: loading holds the file's tensors and one layer more. Loading DAC 44.1 kHz (292 MiB folded) peaks
        403 MiB above where it started, where building a model, copying the file into it and folding peaked 940
        MiB above. The tensors are those :meth:`build_loaded_model` and :func:`fold_weight_norm` give, bit for
        bit.

        Raises:
            WeightsFileError: as :meth:`build_loaded_model`.
        """
        if self.weights == "random":  # the seeded initialisation needs the real constructor
            model = self.build_model()
            for name in self.FOLDED_PARTS:
                fold_weight_norm(model.get_submodule(name))
            return model
        path = self.weights_path()
        state = dict(self.state_dict_from(path))
        with torch.device("meta"), shapes_only():
            model = self.build_model()
            expected = model.state_dict()
            require_fit(expected, state, path, self.spec.family)
            norms = {}
            for name in self.FOLDED_PARTS:
                part = model.get_submodule(name)
                norms.update(weight_norm_keys(part, name))
                fold_weight_norm(part)
        for key, tensor in state.items():  # what copying into the model's parameters would have converted
            if tensor.dtype != expected[key].dtype:
                state[key] = tensor.to(expected[key].dtype)
        del expected
        fold_state(state, norms)
        model.load_state_dict(state, strict=True, assign=True)
        del state
        _recompute_hook_weights(model)
        if left := _meta_tensors(model):
            raise RuntimeError(f"{self.spec.family}: no value in the weights file for {', '.join(left)}")
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
            with torch.device("meta"), shapes_only():
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

    In a process that has not imported torch (a run's coordinator, which otherwise never needs it), an
    evalkit family's file is checked in a short-lived child process: the check needs torch and the model's
    library (about 200 MiB that the coordinator would hold for the whole run), the child costs a few seconds once
    per file. Should the child fail, the check runs here.
    """
    stat = path.stat()
    key = (codec.spec.family, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        found = _CHILD_FAILED
        if "torch" not in sys.modules and type(codec).__module__.startswith("evalkit."):
            found = _problem_in_a_child(codec, path)
        if found is _CHILD_FAILED:
            found = _problem_here(codec, path)
        _CHECKED[key] = found
    return _CHECKED[key]


def _problem_here(codec: PretrainedRvqCodec, path: Path) -> str | None:
    """:meth:`PretrainedRvqCodec.check_weights_file` in this process: the problem's one line, or ``None``."""
    try:
        codec.check_weights_file(path)
    except WeightsFileError as exc:
        return str(exc)
    return None


_CHILD_FAILED = object()
_CHILD_CHECK = """
import json, sys
from pathlib import Path
from evalkit.codecs import build_codec
from evalkit.codecs.rvq import _problem_here
print(json.dumps({"problem": _problem_here(build_codec(sys.argv[1], device="cpu"), Path(sys.argv[2]))}))
"""


def _problem_in_a_child(codec: PretrainedRvqCodec, path: Path):
    """:meth:`PretrainedRvqCodec.check_weights_file` in a child process: the problem or ``None``, or
    ``_CHILD_FAILED`` when the child gave no answer."""
    import json
    import subprocess

    try:
        done = subprocess.run([sys.executable, "-c", _CHILD_CHECK, str(codec.spec), str(path)], capture_output=True,
                              text=True, timeout=300)
        return json.loads(done.stdout.strip().splitlines()[-1])["problem"]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError, TypeError):
        log.debug("checking %s in a child process failed; checking it here", path, exc_info=True)
        return _CHILD_FAILED
