"""QinCodec inference: QINCo2's and RVQ's searches, the adapters and spec resolution over a trained tiny
checkpoint (``qincodec_run``), KLT over the RVQ baseline, the checkpoint hash in the unit identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalkit.codecs import SpecError, build_codec, parse_spec
from evalkit.codecs.qincodec.checkpoint import load_checkpoint
from evalkit.codecs.qincodec.config import QuantizerConfig
from evalkit.codecs.qincodec.qinco2 import Qinco2
from evalkit.training.qincodec.packaging import save_checkpoint
from tests.qincodec_fixtures import RATE, held_out_latents

pytestmark = pytest.mark.slow  # needs the session's trained tiny QinCodec (about 12 s of training)


@pytest.fixture
def run(qincodec_run):
    return qincodec_run


def exhaustive_greedy(model: Qinco2, x: torch.Tensor) -> torch.Tensor:
    """Reference search: at every step evaluate f_m on all K codewords, one vector at a time."""
    codes = []
    for v in x:
        partial = torch.zeros_like(v)
        chosen = []
        for m in range(model.steps):
            words = model.codebooks[m]
            new = words.clone() if m == 0 else partial + model.step(m, words, partial.expand_as(words))
            k = int(((v - new) ** 2).sum(-1).argmin())
            chosen.append(k)
            partial = new[k]
        codes.append(chosen)
    return torch.tensor(codes)


def random_qinco(dim=6, steps=3, size=8, seed=0) -> Qinco2:
    torch.manual_seed(seed)
    model = Qinco2(dim, QuantizerConfig(steps=steps, codebook_size=size, embed_dim=4, hidden_dim=10, blocks=2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return model


def test_qinco2_with_all_candidates_and_one_beam_is_exhaustive_greedy_search():
    model = random_qinco()
    x = torch.randn(40, 6)
    with torch.no_grad():
        expected = exhaustive_greedy(model, x)
        assert torch.equal(model.encode_normalized(x, candidates=8, beam=1), expected)
        # pre-selecting fewer candidates (with random pre-selection codebooks) finds other codes
        assert not torch.equal(model.encode_normalized(x, candidates=2, beam=1), expected)


def test_untrained_qinco2_is_plain_residual_quantization():
    from evalkit.codecs.qincodec.qinco2 import ResidualVQ

    torch.manual_seed(1)
    rvq = ResidualVQ(6, 3, 8)
    with torch.no_grad():
        rvq.codebooks.copy_(torch.randn(3, 8, 6))
    model = Qinco2(6, QuantizerConfig(steps=3, codebook_size=8, embed_dim=4, hidden_dim=10, blocks=2))
    model.init_from_rq(rvq)
    x = torch.randn(30, 6)
    codes = model.encode(x, candidates=8, beam=1)
    assert torch.equal(codes, rvq.encode(x))
    torch.testing.assert_close(model.decode(codes), rvq.decode(codes))


def test_rvq_baseline_adapter_decodes_its_codebooks_sums(run):
    path = str(run.out / "qincodec.pt")
    codec = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").load()
    latent = held_out_latents(run)[:50].T.contiguous()[None]
    codes = codec.quantize(latent)
    books = codec.codebooks()
    by_hand = sum(books[m][codes[0, m]] for m in range(4)).T[None]
    torch.testing.assert_close(codec.dequantize(codes), by_hand, rtol=1e-5, atol=1e-5)


def test_spec_resolves_bitrate_and_steps_both_ways(run):
    path = str(run.out / "qincodec.pt")
    # tiny: 16 kHz / hop 160 = 100 frames/s, K = 16 → 0.4 kbps per step
    by_rate = parse_spec(f"qincodec?checkpoint={path}&bitrate_kbps=1.2")
    assert by_rate.params["n_steps"] == 3
    by_steps = parse_spec(f"qincodec?checkpoint={path}&n_steps=2")
    assert by_steps.params["bitrate_kbps"] == pytest.approx(0.8)
    codec = build_codec(by_rate, "cpu")
    assert codec.bitrate_bps == pytest.approx(100 * 3 * 4)
    assert parse_spec(str(by_rate)) == by_rate
    with pytest.raises(SpecError, match=r"bitrate_kbps=1 is not available from this checkpoint; valid: 0.4, 0.8"):
        parse_spec(f"qincodec?checkpoint={path}&bitrate_kbps=1")
    with pytest.raises(SpecError, match="contradicts n_steps=2"):
        parse_spec(f"qincodec?checkpoint={path}&n_steps=2&bitrate_kbps=1.2")
    with pytest.raises(SpecError, match="above the checkpoint's 4 steps"):
        parse_spec(f"qincodec-rvq?checkpoint={path}&n_steps=5")
    with pytest.raises(SpecError, match="nope.pt not found"):
        parse_spec("qincodec?checkpoint=/nope.pt")


def test_klt_at_full_dimension_reproduces_the_rvq_baseline(run):
    path = str(run.out / "qincodec.pt")
    clip = run.corpus.val[0][None, : int(0.5 * RATE)]
    base = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").reconstruct(clip, RATE)
    full = build_codec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&dim=8&n_cov=4", "cpu")
    out = full.reconstruct(clip, RATE)
    assert torch.equal(out.encoded.codes, base.encoded.codes)
    np.testing.assert_allclose(out.audio, base.audio, atol=1e-5)
    reduced = build_codec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&dim=3&n_cov=4", "cpu")
    assert reduced.accounting().codebook_floats == 4 * 16 * 3


def test_the_checkpoint_hash_is_part_of_the_unit_identity(run, tmp_path):
    from evalkit.runner.plan import plan_variant

    path = run.out / "qincodec.pt"
    bundle = load_checkpoint(str(path))
    parts = {k: bundle[k] for k in ("encoder", "decoder", "rvq", "qinco2")}
    a = save_checkpoint(tmp_path / "c.pt", bundle["config"], parts, {"note": "a"})
    ident_a = plan_variant(parse_spec(f"qincodec-rvq?checkpoint={a}&n_steps=2")).identity
    save_checkpoint(a, bundle["config"], parts, {"note": "b"})  # same path, other bytes
    ident_b = plan_variant(parse_spec(f"qincodec-rvq?checkpoint={a}&n_steps=2")).identity
    assert ident_a != ident_b
    assert load_checkpoint(str(a))["sha256"] in ident_b


def random_rvq(dim=5, steps=3, size=4, seed=3):
    from evalkit.codecs.qincodec.qinco2 import ResidualVQ

    torch.manual_seed(seed)
    rvq = ResidualVQ(dim, steps, size)
    with torch.no_grad():
        rvq.codebooks.copy_(torch.randn(steps, size, dim) / torch.arange(1, steps + 1)[:, None, None])
    return rvq


def test_rvq_beam_search_with_every_path_kept_finds_the_best_code_combination():
    import itertools

    rvq = random_rvq()
    x = torch.randn(30, 5)
    books = rvq.codebooks.detach().numpy()
    combos = np.array(list(itertools.product(range(4), repeat=3)))  # all K^M codes, exhaustively
    sums = sum(books[m][combos[:, m]] for m in range(3))  # [64, D]
    best = ((x.numpy()[:, None] - sums[None]) ** 2).sum(-1).argmin(1)
    codes = rvq.encode_normalized(x, beam=16)  # B = K^(M-1): no path is ever dropped
    np.testing.assert_array_equal(codes.numpy(), combos[best])
    # B = 1 is the greedy search: nearest codeword of each residual in turn
    residual, greedy = x.numpy().copy(), []
    for m in range(3):
        idx = ((residual[:, None] - books[m][None]) ** 2).sum(-1).argmin(1)
        residual -= books[m][idx]
        greedy.append(idx)
    np.testing.assert_array_equal(rvq.encode_normalized(x, beam=1).numpy(), np.stack(greedy, 1))
    assert not torch.equal(rvq.encode_normalized(x, beam=2), rvq.encode_normalized(x, beam=1))


def test_rvq_adapter_beam_is_a_spec_parameter(run):
    path = str(run.out / "qincodec.pt")
    x = held_out_latents(run)[:200]
    beamed = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4&beam=2", "cpu").load()
    rvq = beamed.parts[2]  # the checkpoint's (float16-stored) codebooks; the search is checked on its own above
    assert beamed.spec.params["beam"] == 2 and beamed.info()["beam"] == 2
    codes = beamed.quantize(x.T.contiguous()[None])[0].T
    assert torch.equal(codes, rvq.encode(x, 4, beam=2))
    greedy = build_codec(f"qincodec-rvq?checkpoint={path}&n_steps=4", "cpu").load()
    assert greedy.beam == 1 and torch.equal(greedy.quantize(x.T.contiguous()[None])[0].T, rvq.encode(x, 4))
    mse = [float((rvq.decode(c) - x).pow(2).mean()) for c in (rvq.encode(x, 4), codes)]
    assert mse[1] < mse[0]
    with pytest.raises(SpecError, match="beam"):
        parse_spec(f"qincodec-rvq?checkpoint={path}&n_steps=4&beam=0")
    with pytest.raises(SpecError, match="searches greedily; use beam=1"):
        parse_spec(f"klt?base=qincodec-rvq&checkpoint={path}&n_steps=4&beam=2&dim=3")
