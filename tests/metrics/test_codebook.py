import math

import numpy as np
import pytest

from evalkit.metrics.codebook import codebook_usage, count_codes, valid_frames


def test_uniform_usage_has_perplexity_k_and_single_code_has_one():
    k = 16
    uniform = np.tile(np.arange(k), 5)[None]  # every code 5 times
    single = np.full((1, 80), 3)
    usage = codebook_usage([np.concatenate([uniform, single])], cardinality=k, frame_rate=50.0)
    a, b = usage.per_codebook
    assert a.perplexity == pytest.approx(k) and a.entropy_bits == pytest.approx(4.0)
    assert a.utilisation == 1.0 and a.normalised_entropy == pytest.approx(1.0)
    assert b.perplexity == 1.0 and b.entropy_bits == 0.0 and b.codes_used == 1 and b.utilisation == 1 / k
    assert usage.bitrate_bound_bps == pytest.approx(50.0 * 4.0)


def test_miller_madow_and_counts_over_items_by_hand():
    # codes 0,0,0,1 then 1,2 -> counts [3, 2, 1] over N = 6
    usage = codebook_usage([np.array([[0, 0, 0, 1]]), np.array([[1, 2]])], cardinality=4, frame_rate=10.0)
    p = np.array([3, 2, 1]) / 6
    h = -(p * np.log2(p)).sum()
    s = usage.per_codebook[0]
    assert s.frames == 6 and s.codes_used == 3 and s.utilisation == 0.75
    assert s.entropy_bits == pytest.approx(h)
    assert s.entropy_mm_bits == pytest.approx(h + 2 / (2 * 6 * math.log(2)))


def test_usage_by_number_of_codebooks():
    codes = np.stack([np.tile(np.arange(4), 4), np.tile(np.arange(2), 8), np.zeros(16, int)])
    rows = codebook_usage([codes], cardinality=4, frame_rate=75.0).by_num_codebooks()
    assert [r.num_codebooks for r in rows] == [1, 2, 3]
    assert [r.entropy_bits for r in rows] == pytest.approx([2.0, 3.0, 3.0])
    assert rows[1].mean_perplexity == pytest.approx(3.0) and rows[2].bitrate_bound_bps == pytest.approx(225.0)
    assert rows[2].nominal_bitrate_bps == pytest.approx(75 * 3 * 2)


def test_batched_codes_and_bad_input():
    counts = count_codes([np.zeros((2, 3, 5), int)], cardinality=8)  # [B, K, T]
    assert counts.shape == (3, 8) and counts[:, 0].tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        count_codes([np.array([[8]])], 8)
    with pytest.raises(ValueError, match="different numbers of codebooks"):
        count_codes([np.zeros((2, 3), int), np.zeros((3, 3), int)], 8)


def test_valid_frames_excludes_padding_frames():
    assert valid_frames(512 * 10, 512) == 10 and valid_frames(512 * 10 + 1, 512) == 11
