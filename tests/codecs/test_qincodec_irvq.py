"""QinCodec's iRVQ (residual codebooks trained with beam search, faiss ``ResidualQuantizer``): training and search
against faiss's own encoder and decoder, the prefix property, the ``qincodec-irvq`` family over a trained tiny
checkpoint, older checkpoints without iRVQ, and adding iRVQ to one with every other tensor unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from evalkit.codecs import SpecError, build_codec, parse_spec
from evalkit.codecs.qincodec.checkpoint import PARTS, CheckpointError, load_checkpoint, read_header
from evalkit.codecs.qincodec.qinco2 import ResidualVQ
from evalkit.training.qincodec.packaging import save_checkpoint
from evalkit.training.qincodec.quantizer_stage import train_residual_kmeans
from tests.qincodec_fixtures import held_out_latents

DIM, STEPS, SIZE, BITS, BEAM = 8, 3, 16, 4, 4


@pytest.fixture(scope="module")
def latents() -> torch.Tensor:
    """Seeded correlated Gaussian vectors with decaying variances, like an encoder's latents."""
    rng = np.random.default_rng(11)
    mix = rng.standard_normal((DIM, DIM)) * np.linspace(1.5, 0.1, DIM)
    return torch.from_numpy((rng.standard_normal((4000, DIM)) @ mix + 0.3).astype(np.float32))


def mse(rvq: ResidualVQ, x: torch.Tensor, codes: torch.Tensor) -> float:
    return float((rvq.decode(codes) - x).pow(2).mean())


def faiss_rq(xn: np.ndarray, steps: int, beam: int):
    """faiss's own residual quantizer with the stage's settings (the reference)."""
    import faiss

    rq = faiss.ResidualQuantizer(DIM, steps, BITS)
    rq.train_type = faiss.ResidualQuantizer.Train_default
    rq.max_beam_size = beam
    rq.cp.niter = 6
    rq.cp.seed = 0
    rq.train(xn)
    return rq


def unpack(codes: np.ndarray, steps: int) -> np.ndarray:
    """faiss's 4-bit codes, packed least significant bits first, as ``[N, steps]`` indices."""
    nibbles = np.stack([codes & 15, codes >> 4], axis=-1).reshape(len(codes), -1)
    return nibbles[:, :steps].astype(np.int64)


def test_irvq_codebooks_codes_and_decoding_are_faiss_residual_quantizers(latents):
    import faiss

    irvq = train_residual_kmeans(latents, STEPS, SIZE, iters=6, seed=0, beam=BEAM)
    xn = irvq.norm(latents).numpy()
    rq = faiss_rq(xn, STEPS, BEAM)
    books = faiss.vector_to_array(rq.codebooks).reshape(STEPS, SIZE, DIM)
    np.testing.assert_array_equal(irvq.codebooks.detach().numpy(), books)
    faiss_codes = rq.compute_codes(xn)  # faiss's beam search with the training beam
    codes = irvq.encode(latents, beam=BEAM)
    np.testing.assert_array_equal(codes.numpy(), unpack(faiss_codes, STEPS))
    with torch.no_grad():
        np.testing.assert_allclose(irvq.norm(irvq.decode(codes)).numpy(), rq.decode(faiss_codes), atol=1e-5)


def test_beam_trained_irvq_is_not_worse_than_greedy_rvq_and_its_beam_search_beats_greedy(latents):
    rvq = train_residual_kmeans(latents, STEPS, SIZE, iters=6, seed=0)
    irvq = train_residual_kmeans(latents, STEPS, SIZE, iters=6, seed=0, beam=BEAM)
    with torch.no_grad():
        greedy_rvq = mse(rvq, latents, rvq.encode(latents))
        irvq_beam = mse(irvq, latents, irvq.encode(latents, beam=BEAM))
        irvq_greedy = mse(irvq, latents, irvq.encode(latents, beam=1))
    assert not torch.equal(irvq.codebooks, rvq.codebooks)  # the training beam changes the codebooks
    assert irvq_beam <= greedy_rvq  # training MSE, same data, same M and K
    assert irvq_beam <= irvq_greedy  # same codebooks: the beam search finds codes at least as good


def test_the_first_codebooks_of_irvq_are_those_trained_with_fewer_steps(latents):
    """No joint refinement: codebook m depends on steps 1…m only, so a prefix is the iRVQ of that many steps."""
    full = train_residual_kmeans(latents, STEPS, SIZE, iters=6, seed=0, beam=BEAM)
    fewer = train_residual_kmeans(latents, STEPS - 1, SIZE, iters=6, seed=0, beam=BEAM)
    assert torch.equal(full.codebooks[: STEPS - 1], fewer.codebooks)


# --- over the session's trained tiny checkpoint (tiny: M = 4, K = 16, QINCo2 B = 2) -------------------------------

@pytest.mark.slow
def test_irvq_family_resolves_bitrate_and_steps_and_searches_with_the_training_beam(qincodec_run):
    path = str(qincodec_run.out / "qincodec.pt")
    assert "irvq" in read_header(path)["parts"]
    by_rate = parse_spec(f"qincodec-irvq?checkpoint={path}&bitrate_kbps=1.2")  # 100 frames/s x 4 bit per step
    assert by_rate.params["n_steps"] == 3
    assert parse_spec(f"qincodec-irvq?checkpoint={path}&n_steps=2").params["bitrate_kbps"] == pytest.approx(0.8)
    with pytest.raises(SpecError, match=r"bitrate_kbps=1 is not available from this checkpoint; valid: 0.4, 0.8"):
        parse_spec(f"qincodec-irvq?checkpoint={path}&bitrate_kbps=1")
    codec = build_codec(by_rate, "cpu").load()
    assert codec.beam == 2 and codec.info()["quantizer"] == "irvq"
    irvq = codec.parts[2]
    x = held_out_latents(qincodec_run)[:200]
    codes = codec.quantize(x.T.contiguous()[None])[0].T
    assert torch.equal(codes, irvq.encode(x, 3, beam=2))
    books = codec.codebooks()
    by_hand = sum(books[m][codes[:, m]] for m in range(3))
    torch.testing.assert_close(codec.dequantize(codes.T[None])[0].T, by_hand, rtol=1e-5, atol=1e-5)
    stored = load_checkpoint(path)
    assert not torch.equal(stored["irvq"]["codebooks"], stored["rvq"]["codebooks"])
    greedy = build_codec(f"qincodec-irvq?checkpoint={path}&n_steps=3&beam=1", "cpu").load()
    assert torch.equal(greedy.quantize(x.T.contiguous()[None])[0].T, irvq.encode(x, 3, beam=1))


def without_irvq(run, path):
    bundle = load_checkpoint(str(run.out / "qincodec.pt"))
    return save_checkpoint(path, bundle["config"], {k: bundle[k] for k in PARTS}, bundle["provenance"])


@pytest.mark.slow
def test_a_checkpoint_without_irvq_gives_one_line_naming_the_fix(qincodec_run, tmp_path):
    old = without_irvq(qincodec_run, tmp_path / "old.pt")
    with pytest.raises(SpecError) as info:
        parse_spec(f"qincodec-irvq?checkpoint={old}&n_steps=2")
    message = str(info.value)
    assert "\n" not in message
    assert f"checkpoint {old} has no iRVQ codebooks; retrain the quantizer stage with" in message
    assert parse_spec(f"qincodec-rvq?checkpoint={old}&n_steps=2").params["n_steps"] == 2  # the others still work
    from evalkit.codecs.qincodec.adapter import QincodecCodec

    codec = QincodecCodec(parse_spec(f"qincodec-rvq?checkpoint={old}&n_steps=2"), "cpu", quantizer="irvq")
    with pytest.raises(CheckpointError, match="has no iRVQ codebooks"):
        codec.load()


def tensor_digest(state: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_adding_irvq_keeps_every_other_tensor_and_trains_what_the_stage_trains(qincodec_run, tmp_path):
    from evalkit.training.qincodec import schedule
    from evalkit.training.qincodec.irvq import add_irvq

    old = without_irvq(qincodec_run, tmp_path / "old.pt")
    new = add_irvq(str(old), qincodec_run.path("latents.npz"), tmp_path / "new.pt")
    before, after = schedule.load(old), schedule.load(new)
    for part in PARTS:  # raw float16 values, bit for bit
        assert tensor_digest(after[part]) == tensor_digest(before[part])
    # the same latents sample, M, K, beam and seed as the quantizer stage: the same codebooks
    stage = schedule.load(qincodec_run.path("quantizer.pt"))["irvq"]
    assert torch.equal(after["irvq"]["codebooks"], stage["codebooks"].half())
    assert read_header(str(new))["sha256"] != read_header(str(old))["sha256"]
    assert after["provenance"]["irvq_train_beam"] == 2
    with pytest.raises(CheckpointError, match="already holds iRVQ codebooks"):
        add_irvq(str(new), qincodec_run.path("latents.npz"), tmp_path / "again.pt")


def test_codecs_list_shows_the_irvq_family_with_or_without_the_codebooks_in_its_default_checkpoint():
    from evalkit.codecs.catalog import catalog_records, render_catalog

    record = next(r for r in catalog_records() if r["name"] == "qincodec-irvq")
    assert {p["name"] for p in record["params"]} == {"checkpoint", "bitrate_kbps", "n_steps", "beam"}
    has_irvq = "irvq" in read_header("shipped")["parts"]
    assert bool(record["variants"]) == has_irvq
    assert (record["unavailable"] is None) == has_irvq
    assert "qincodec-irvq: QinCodec with improved RVQ" in render_catalog()


@pytest.mark.slow
def test_a_finished_quantizer_stage_without_irvq_gains_it_and_keeps_rvq_and_qinco2(qincodec_run, tmp_path):
    import dataclasses
    import shutil

    from evalkit.training.qincodec import schedule
    from evalkit.training.qincodec.quantizer_stage import train_quantizers

    shutil.copy(qincodec_run.path("latents.npz"), tmp_path / "latents.npz")
    finished = schedule.load(qincodec_run.path("quantizer.pt"))
    old = {k: v for k, v in finished.items() if "irvq" not in k}
    schedule.save_atomic(old, tmp_path / "quantizer.pt")
    train_quantizers(dataclasses.replace(qincodec_run, out=tmp_path))
    resumed = schedule.load(tmp_path / "quantizer.pt")
    assert torch.equal(resumed["irvq"]["codebooks"], finished["irvq"]["codebooks"])
    for part in ("rvq", "qinco2"):
        assert tensor_digest(resumed[part]) == tensor_digest(old[part])


# SHA-256 over (key, raw float16 bytes) of every tensor of each part of the shipped checkpoint. The four trained
# parts are those of the 2026-12-03 file (sha256 5d36ba63…), which had no iRVQ; scripts/add_irvq.py added the
# iRVQ codebooks on 2026-12-06 (file sha256 9581f17c…) and had to leave these four bit for bit.
SHIPPED_PART_DIGESTS = {
    "encoder": "f5ab1907302be844c703167e34b0f5c14217a6b97c8993b90061af6571a25e7c",
    "decoder": "fd0daf29510446a3385277335827c0017d48973e3422fc573f5d59812012b0e8",
    "rvq": "1e158d3f195180e4e76589e2ea9f640cd22d665d7abec977a97bceb802497c27",
    "qinco2": "fef051ece9c507b418c3a5dea6256891aa67c1710e5bce2ba0c9ceb40681bb90",
}
SHIPPED_IRVQ_DIGEST = "d81e682a7a15697f5da3d7088e25ceed22755a9c436790ae321bc60dfd08846d"


def test_the_shipped_autoencoder_rvq_and_qinco2_values_are_the_recorded_ones():
    from evalkit.codecs.qincodec.checkpoint import SHIPPED
    from evalkit.training.qincodec import schedule

    bundle = schedule.load(SHIPPED)
    assert {part: tensor_digest(bundle[part]) for part in PARTS} == SHIPPED_PART_DIGESTS


def test_the_shipped_checkpoint_holds_the_irvq_codebooks_added_to_it():
    from evalkit.codecs.qincodec.checkpoint import SHIPPED
    from evalkit.training.qincodec import schedule

    bundle = schedule.load(SHIPPED)
    assert tensor_digest(bundle["irvq"]) == SHIPPED_IRVQ_DIGEST
    added = bundle["provenance"]["irvq_added"]
    assert added["from_checkpoint_sha256"].startswith("5d36ba63")  # the file whose four parts are recorded above
    assert bundle["provenance"]["irvq_train_beam"] == bundle["config"]["quantizer"]["beam"]
    assert not torch.equal(bundle["irvq"]["codebooks"], bundle["rvq"]["codebooks"])
