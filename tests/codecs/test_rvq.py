"""Shared plumbing of the pretrained RVQ adapters: weight norm folded once at load (evalkit.codecs.rvq)."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, weight_norm

from evalkit.codecs import build_codec
from evalkit.codecs.rvq import fold_state, fold_weight_norm, shapes_only


def held_bytes(model: nn.Module) -> int:
    """Bytes of every tensor the model holds: parameters, buffers and plain tensor attributes (the weight a
    weight-norm hook computed and keeps between calls), each storage once."""
    storages = {}
    for layer in model.modules():
        tensors = [*layer._parameters.values(), *layer._buffers.values(),
                   *(v for v in vars(layer).values() if isinstance(v, torch.Tensor))]
        for t in tensors:
            if t is not None:
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


def _nets():
    torch.manual_seed(0)
    hook = nn.Sequential(weight_norm(nn.Conv1d(2, 16, 5, padding=2)), nn.GELU(), weight_norm(nn.Conv1d(16, 1, 3)))
    param = nn.Sequential(parametrizations.weight_norm(nn.Conv1d(2, 16, 5)), nn.Tanh(), nn.Conv1d(16, 1, 1))
    return hook, param


@pytest.mark.parametrize("which", [0, 1])
def test_folding_keeps_outputs_bit_identical_and_drops_g_and_v(which):
    net = _nets()[which].eval()
    x = torch.randn(3, 2, 200)
    with torch.inference_mode():
        before = net(x)
    held = held_bytes(net)
    assert fold_weight_norm(net) == 2 - which
    names = [name for name, _ in net.named_parameters()]
    assert not any(name.endswith(("_g", "_v", "original0", "original1")) for name in names)
    with torch.inference_mode():
        assert torch.equal(net(x), before)
    assert held_bytes(net) < (0.6 if which == 0 else 1.0) * held  # the hook kept the weight beside v
    assert fold_weight_norm(net) == 0  # idempotent


@pytest.mark.slow  # builds random-weight DAC twice
def test_dac_is_folded_at_load_with_the_same_outputs_and_projections():
    codec = build_codec("dac-16khz?n_codebooks=4&weights=random", device="cpu").load()
    reference = codec.build_loaded_model().eval()  # the same seeded weights, weight norm kept
    assert not any(name.endswith("weight_v") for name, _ in codec.model.encoder.named_parameters())
    assert not any(name.endswith("weight_v") for name, _ in codec.model.decoder.named_parameters())
    assert held_bytes(codec.model) < 0.6 * held_bytes(reference)
    x = torch.randn(1, 1, 3200) * 0.1
    with torch.inference_mode():
        z = codec.model.encoder(x)
        assert torch.equal(z, reference.encoder(x))
        assert torch.equal(codec.model.decoder(z), reference.decoder(z))
    # the quantizers keep (g, v): KLT's projections are what they were before folding
    projections = codec.projections()
    codec.use_model(reference)
    for (a_in, a_out), (b_in, b_out) in zip(projections, codec.projections(), strict=True):
        assert torch.equal(a_in.weight, b_in.weight) and torch.equal(a_out.weight, b_out.weight)


def test_shapes_only_builds_meta_layers_of_the_real_shapes_and_leaves_other_tensors_alone():
    def build():
        torch.manual_seed(0)
        return nn.Sequential(weight_norm(nn.Conv1d(3, 8, 5)), weight_norm(nn.ConvTranspose1d(8, 4, 4), dim=1),
                             weight_norm(nn.Linear(4, 2), dim=None), nn.Embedding(10, 4))

    real = build()
    with torch.device("meta"), shapes_only():
        meta = build()
        cpu = torch.zeros(1000, device="cpu").normal_()  # not on meta: computed as ever
    assert cpu.std() > 0.5
    real_shapes = {k: v.shape for k, v in real.state_dict().items()}
    assert {k: v.shape for k, v in meta.state_dict().items()} == real_shapes
    assert all(v.is_meta for v in meta.state_dict().values())
    for layer_real, layer_meta in zip(real[:3], meta[:3], strict=True):  # the weight the hook computed
        assert layer_meta.weight.shape == layer_real.weight.shape and layer_meta.weight.is_meta


def test_fold_state_writes_each_weight_over_its_own_v_and_never_over_a_shared_storage():
    torch.manual_seed(1)
    v, g = torch.randn(8, 3, 5), torch.rand(8, 1, 1) + 0.5
    expected = torch._weight_norm(v, g, 0)
    state = {"conv.weight_v": v, "conv.weight_g": g, "conv.bias": torch.zeros(8)}
    address = v.data_ptr()
    fold_state(state, {"conv.weight": ("conv.weight_g", "conv.weight_v", 0)})
    assert sorted(state) == ["conv.bias", "conv.weight"]
    assert torch.equal(state["conv.weight"], expected) and state["conv.weight"].data_ptr() == address  # no copy

    both = torch.randn(2, 8, 3, 5)  # v sharing its storage with other tensors of the file: a view, the same one
    kept = both.clone()
    state = {"a.weight_v": both[0], "a.weight_g": g, "b": both.view(-1)[:10], "c": both[0]}
    fold_state(state, {"a.weight": ("a.weight_g", "a.weight_v", 0)})
    assert torch.equal(state["a.weight"], torch._weight_norm(kept[0], g, 0))
    assert torch.equal(both, kept) and torch.equal(state["c"], kept[0])
