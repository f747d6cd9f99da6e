"""Semantic dominance measure (equations 9-10) on constructed cases, and the Figure 5 plot."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from unger.analysis.dominance import neighbourhood_kl, semantic_dominance, tsne_figure


def _clustered(rng, n, dim, n_clusters, spread=0.3):
    """(n+1, dim) matrix with a zero padding row and clear cluster structure."""
    centres = rng.normal(size=(n_clusters, dim))
    labels = rng.integers(n_clusters, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, dim))
    return np.vstack([np.zeros((1, dim)), x])


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    n = 600
    # Independent structures: S (384-d) and C (96-d) disagree about which items are neighbours.
    S = _clustered(rng, n, 384, 12)
    C = _clustered(rng, n, 96, 12)
    return S, C


def _pca(x, k):
    centred = x[1:] - x[1:].mean(0)
    # One BLAS thread: a multi-threaded LAPACK call on a busy 2-core machine can stall for seconds.
    with threadpool_limits(1, user_api="blas"):
        _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    return np.vstack([np.zeros((1, k)), centred @ vectors[:, ::-1][:, :k]])


KW = dict(n_reference=256, seed=0)


def test_e_equal_s_is_fully_semantic(sets):
    S, C = sets
    out = semantic_dominance(S, C, S.copy(), **KW)
    assert out["kl_s_e"] == pytest.approx(0.0, abs=1e-9)
    assert out["similarity_semantic"] > 0.999
    assert out["similarity_semantic"] + out["similarity_collaborative"] == pytest.approx(1.0)


def test_e_equal_c_is_fully_collaborative(sets):
    S, C = sets
    out = semantic_dominance(S, C, C.copy(), **KW)
    assert out["kl_c_e"] == pytest.approx(0.0, abs=1e-9)
    assert out["similarity_collaborative"] > 0.999


def test_concat_with_loud_semantic_side_is_semantic_dominated(sets):
    S, C = sets
    s_pca = _pca(S, 96)
    loud = 10.0 * s_pca / np.linalg.norm(s_pca[1:], axis=1).mean()
    quiet = C / np.linalg.norm(C[1:], axis=1).mean()
    out = semantic_dominance(S, C, np.hstack([loud, quiet]), **KW)
    assert out["similarity_semantic"] > 0.5
    # Balanced halves sit in between: both KLs are positive.
    balanced = semantic_dominance(S, C, np.hstack([loud / 10.0, quiet]), **KW)
    assert balanced["kl_s_e"] > 0 and balanced["kl_c_e"] > 0
    assert balanced["similarity_semantic"] < out["similarity_semantic"]


def test_invariant_to_rescaling_e_and_deterministic(sets):
    S, C = sets
    E = np.hstack([_pca(S, 48), C[:, :48]])
    a = semantic_dominance(S, C, E, **KW)
    b = semantic_dominance(S, C, 7.5 * E, **KW)
    assert a["similarity_semantic"] == pytest.approx(b["similarity_semantic"], abs=1e-9)
    assert semantic_dominance(S, C, E, **KW) == a


def test_dimensions_may_differ_and_fixed_temperature_works(sets):
    S, C = sets
    E = _clustered(np.random.default_rng(1), S.shape[0] - 1, 192, 5)
    out = semantic_dominance(S, C, E, perplexity=None, temperature=0.1, **KW)
    assert out["kl_s_e"] > 0 and out["kl_c_e"] > 0
    assert 0.0 < out["similarity_semantic"] < 1.0
    assert out["n_items"] == S.shape[0] - 1 and out["n_reference"] == 256


def test_padding_row_is_ignored(sets):
    S, C = sets
    S2 = S.copy()
    S2[0] = 123.0
    assert neighbourhood_kl(S2, C, **KW) == pytest.approx(neighbourhood_kl(S, C, **KW))


def test_bad_inputs_raise(sets):
    S, C = sets
    with pytest.raises(ValueError):
        semantic_dominance(S, C[:-1], S, **KW)
    with pytest.raises(ValueError):
        semantic_dominance(S, C, S, perplexity=None, temperature=None)


def test_tsne_figure_has_one_panel_per_set():
    rng = np.random.default_rng(0)
    sets = {"semantic": _clustered(rng, 60, 16, 3), "collaborative": _clustered(rng, 60, 8, 3)}
    fig = tsne_figure(sets, n_clusters=3, seed=0, max_points=40)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert "40 of 60" in fig._suptitle.get_text()
    assert [len(ax.collections[0].get_offsets()) for ax in axes] == [40, 40]
