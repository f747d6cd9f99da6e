"""Catalog-wide alignment diagnostics of E_C against E_T on constructed cases."""

import numpy as np
import pytest

from unger.analysis.alignment import alignment_diagnostics


def _with_padding(x):
    return np.vstack([np.zeros((1, x.shape[1])), x]).astype(np.float32)


def test_identical_matrices_are_perfectly_aligned():
    rng = np.random.default_rng(0)
    c = _with_padding(rng.normal(size=(300, 16)))
    out = alignment_diagnostics(c, c.copy())
    assert out["items"] == 300
    assert out["hit@1"] == 1.0 and out["mrr"] == 1.0 and out["median_rank"] == 1.0
    assert out["positive_mean"] == pytest.approx(1.0, abs=1e-5)
    assert out["positive_cosine_mean"] == pytest.approx(1.0, abs=1e-5)


def test_independent_matrices_are_at_chance():
    rng = np.random.default_rng(1)
    n = 2000
    out = alignment_diagnostics(_with_padding(rng.normal(size=(n, 16))), _with_padding(rng.normal(size=(n, 16))),
                                chunk=333)
    assert out["hit@100"] == pytest.approx(100 / n, abs=0.02)
    assert out["median_rank"] == pytest.approx(n / 2, rel=0.1)
    assert abs(out["positive_mean"]) < 0.05


def test_ranks_count_ties_and_the_padding_row_is_ignored():
    # Item 1's E_C scores E_T of items 1 and 2 equally: its rank is 2 (ties count against it).
    c = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    t = np.array([[-9.0, 9.0], [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    out = alignment_diagnostics(c, t, similarity="dot", ks=(1, 2))
    # ranks: item 1 -> 2 (tie with item 2), item 2 -> 3 (scores 0, 0, 0), item 3 -> 1
    assert out["hit@1"] == pytest.approx(1 / 3)
    assert out["hit@2"] == pytest.approx(2 / 3)
    assert out["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    assert out["positive_mean"] == pytest.approx((1 + 0 + 1) / 3)


def test_dot_and_cosine_differ_when_norms_do():
    rng = np.random.default_rng(2)
    t = _with_padding(rng.normal(size=(200, 8)))
    scale = np.r_[0.0, rng.uniform(0.1, 10.0, size=200)][:, None]
    c = t * scale
    assert alignment_diagnostics(c, t, "cosine")["hit@1"] == 1.0
    dot = alignment_diagnostics(c, t, "dot")
    assert dot["collaborative_norm_mean"] == pytest.approx(np.linalg.norm(c[1:], axis=1).mean(), rel=1e-5)
    assert dot["adapted_norm_mean"] == pytest.approx(np.linalg.norm(t[1:], axis=1).mean(), rel=1e-5)
    assert dot["positive_cosine_mean"] == pytest.approx(1.0, abs=1e-5)
    assert dot["hit@1"] < 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one shape"):
        alignment_diagnostics(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="similarity"):
        alignment_diagnostics(np.zeros((5, 3)), np.zeros((5, 3)), similarity="l2")
