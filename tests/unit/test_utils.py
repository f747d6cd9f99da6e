"""Shared numpy helpers."""

import numpy as np

from unger.models.fusion import concat_embeddings
from unger.utils import unit_rows


def test_unit_rows_scales_each_row_to_norm_one_and_returns_the_old_norms():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [-1.0, 0.0]])
    units, norms = unit_rows(x, np.float64)
    np.testing.assert_allclose(norms, [0.0, 5.0, 1.0])
    np.testing.assert_allclose(units, [[0.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])
    assert units.dtype == np.float64 and unit_rows(x)[0].dtype == np.float32


def test_concat_embeddings_halves_are_unit_rows_and_padding_stays_zero():
    rng = np.random.default_rng(0)
    collaborative, semantic = rng.normal(size=(9, 4)) * 7, rng.normal(size=(9, 6))
    collaborative[0] = semantic[0] = 0.0
    out = concat_embeddings(collaborative, semantic, dim=3, seed=0)
    assert out.shape == (9, 7) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[1:, :4], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out[1:, 4:], axis=1), 1.0, rtol=1e-5)
    assert not out[0].any()
