"""Fast checks of the quantizers on small synthetic embeddings (conventions: docs/CONVENTIONS.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unger.quantize import (
    QuantizationResult,
    disambiguate,
    hierarchical_kmeans,
    quantize,
    random_codes,
    residual_kmeans,
    train_rqvae,
    unique_residual_kmeans,
)

N_ITEMS = 300


def _with_padding(x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, x.shape[1]), np.float32), x.astype(np.float32)])


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    """300 items in 8-d around 12 centres, plus the padding row."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (12, 8))
    x = centres[rng.integers(0, 12, N_ITEMS)] + rng.normal(0, 1, (N_ITEMS, 8))
    return _with_padding(x)


def _assert_valid(result: QuantizationResult, num_items: int, K: int) -> None:
    codes = result.codes
    assert codes.dtype == np.int64
    assert codes.shape == (num_items + 1, result.num_levels)
    assert result.depth.shape == (num_items + 1,) and result.depth.dtype == np.int64
    assert np.all(codes[0] == 0) and result.depth[0] == 0
    assert codes.min() >= 0 and codes.max() < K
    assert len(np.unique(codes[1:], axis=0)) == num_items
    assert result.codebook_size == K
    assert result.stats()["unique"] is True


@pytest.fixture(scope="module")
def results(blobs) -> dict[str, QuantizationResult]:
    return {
        "hierarchical_kmeans": quantize(blobs, "hierarchical_kmeans", K=4, seed=1),
        "residual_kmeans": quantize(blobs, "residual_kmeans", K=8, L=4, seed=1),
        "unique_residual_kmeans": quantize(blobs, "unique_residual_kmeans", K=8, seed=1),
        "random": quantize(blobs, "random", K=4, seed=1),
        "rqvae": quantize(blobs, "rqvae", K=32, L=3, seed=1, epochs=3, batch_size=128, hidden_dim=32),
    }


@pytest.mark.parametrize(
    "method,K",
    [("hierarchical_kmeans", 4), ("residual_kmeans", 8), ("unique_residual_kmeans", 8), ("random", 4), ("rqvae", 32)],
)
def test_every_method_gives_valid_unique_codes(results, method, K):
    _assert_valid(results[method], N_ITEMS, K)
    assert results[method].method == method


def test_quantize_rejects_unknown_method(blobs):
    with pytest.raises(ValueError, match="unknown quantization method 'pq'"):
        quantize(blobs, "pq", K=4, L=2, seed=0)


# --- hierarchical k-means -----------------------------------------------------------------------


def test_hierarchical_tree_is_deep_enough_and_prefixes_unique(results):
    result = results["hierarchical_kmeans"]
    codes, depth = result.codes[1:], result.depth[1:]
    assert result.num_levels == depth.max() >= math.ceil(math.log(N_ITEMS, 4)) == 5
    assert depth.min() >= 1
    for i in range(N_ITEMS):
        d = depth[i]
        same_prefix = np.all(codes[:, :d] == codes[i, :d], axis=1)
        assert same_prefix.sum() == 1, f"item {i + 1}: prefix of length {d} is shared"
        assert np.all(codes[i, d:] == 0), "levels past the depth must be zero padding"
    # A 4-ary tree never holds more than 4 children below a node.
    for level in range(result.num_levels):
        assert codes[:, level].max() < 4


def test_hierarchical_binary_tree_exact_codes():
    # Eight points on a line in three well-separated scales: a perfect binary tree for K=2.
    positions = [0, 1, 10, 11, 100, 101, 110, 111]
    x = _with_padding(np.array([[p, 0.0] for p in positions]))
    result = hierarchical_kmeans(x, K=2, seed=0)
    expected = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)])
    np.testing.assert_array_equal(result.codes[1:], expected)
    np.testing.assert_array_equal(result.depth, [0] + [3] * 8)
    assert result.num_levels == 3


def test_hierarchical_variable_depth_and_padding():
    # Item 5 is far away: it becomes a singleton child at level 0 and keeps depth 1, padded with 0.
    x = _with_padding(np.array([[0.0], [1.0], [10.0], [11.0], [1000.0]]))
    result = hierarchical_kmeans(x, K=2, seed=0)
    np.testing.assert_array_equal(result.codes[1:], [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(result.depth, [0, 3, 3, 3, 3, 1])
    table = result.code_table()
    assert list(table.columns) == ["item_id", "code_0", "code_1", "code_2", "depth"]
    assert table.iloc[4].tolist() == [5, 1, 0, 0, 1]
    assert result.code_table([5, 1])["item_id"].tolist() == [5, 1]
    stats = result.stats()
    assert stats["depth_histogram"] == {1: 1, 3: 4}
    assert [lv["used_codes"] for lv in stats["levels"]] == [2, 2, 2]
    assert stats["levels"][1]["items"] == 4


def test_hierarchical_small_cluster_ordered_by_centroid_distance():
    # n <= K: no k-means; centroid 14/3, so item 3 (at 4) is closest, then item 1 (0), then item 2 (10).
    x = _with_padding(np.array([[0.0], [10.0], [4.0]]))
    result = hierarchical_kmeans(x, K=4, seed=0)
    np.testing.assert_array_equal(result.codes[1:, 0], [1, 2, 0])
    np.testing.assert_array_equal(result.depth, [0, 1, 1, 1])


def test_hierarchical_identical_embeddings_terminate_with_unique_codes():
    x = _with_padding(np.ones((50, 3)))
    result = hierarchical_kmeans(x, K=4, seed=0)
    _assert_valid(result, 50, 4)
    # Index-order fallback: 50 -> chunks of 13/12/13/12 -> chunks of 3-4 -> own index, so depth 3.
    assert result.num_levels == 3
    assert result.extra["fallback_splits"] == 5
    np.testing.assert_array_equal(result.codes[1:6], [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 1, 0]])


def test_hierarchical_max_depth():
    x = _with_padding(np.arange(20, dtype=float)[:, None])
    with pytest.raises(ValueError, match="max_depth=1 is too small"):
        hierarchical_kmeans(x, K=4, seed=0, max_depth=1)
    capped = hierarchical_kmeans(x, K=8, seed=0, max_depth=2)
    _assert_valid(capped, 20, 8)
    assert capped.num_levels == 2


# --- residual k-means ---------------------------------------------------------------------------


def _duplicated_points() -> np.ndarray:
    # Eight integer locations (exact in float, so every residual after level 0 is exactly zero);
    # location 0 appears three times and location 1 twice: 11 items, 5 of them in collision groups.
    locations = np.array([[10 * i, 10 * (i % 3)] for i in range(8)], dtype=float)
    rows = [0, 1, 2, 0, 3, 4, 1, 5, 6, 0, 7]
    return _with_padding(locations[rows])


def test_residual_kmeans_disambiguates_collisions():
    result = residual_kmeans(_duplicated_points(), K=8, L=2, seed=0)
    _assert_valid(result, 11, 8)
    assert result.collisions_before_dedup == 5
    assert result.num_levels == 3 and result.disambiguated
    np.testing.assert_array_equal(result.depth[1:], [2] * 11)
    # Rank inside the collision group in item-id order: items 1, 4, 10 share location 0; 2 and 7 share 1.
    np.testing.assert_array_equal(result.codes[1:, 2], [0, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0])
    np.testing.assert_array_equal(result.codes[1, :2], result.codes[10, :2])
    stats = result.stats()
    assert stats["collisions_before_dedup"] == 5
    assert stats["levels"][2]["disambiguation"] is True
    assert stats["reconstruction_mse"][0] == pytest.approx(0.0, abs=1e-9)


def test_residual_kmeans_without_collisions_keeps_L_levels():
    locations = np.array([[10 * i, 10 * (i % 3)] for i in range(8)], dtype=float)
    result = residual_kmeans(_with_padding(locations), K=8, L=1, seed=0)
    _assert_valid(result, 8, 8)
    assert result.collisions_before_dedup == 0 and not result.disambiguated
    assert result.codes.shape == (9, 1)
    assert result.extra["reconstruction_mse"] == [pytest.approx(0.0, abs=1e-9)]


def test_residual_kmeans_too_large_collision_group_raises():
    with pytest.raises(ValueError, match="10 items share one code, more than the K=4"):
        residual_kmeans(_with_padding(np.ones((10, 2))), K=4, L=2, seed=0)


def test_residual_reconstruction_error_decreases(results, blobs):
    recon = results["residual_kmeans"].stats()["reconstruction_mse"]
    assert len(recon) == 4
    assert results["residual_kmeans"].extra["input_mean_sq_norm"] > recon[0] > recon[1] > recon[2] > recon[3]


def test_disambiguate_helper():
    codes = np.array([[1, 2], [3, 4], [1, 2], [1, 2]])
    out, collisions = disambiguate(codes, K=4)
    assert collisions == 3
    np.testing.assert_array_equal(out, [[1, 2, 0], [3, 4, 0], [1, 2, 1], [1, 2, 2]])
    same, none = disambiguate(codes[:2], K=4)
    assert none == 0 and same.shape == (2, 2)


# --- unique residual k-means --------------------------------------------------------------------


def test_unique_residual_kmeans_separates_collisions_by_assignment_not_an_extra_level():
    result = unique_residual_kmeans(_duplicated_points(), K=8, seed=0)
    _assert_valid(result, 11, 8)
    # residual_kmeans needs a third, meaningless level here (see above); this one stays at two levels.
    assert result.num_levels == 2 and not result.disambiguated and result.collisions_before_dedup == 0
    # Items alone at their location end after level 1 (padded, as hierarchical k-means ends singletons).
    np.testing.assert_array_equal(result.depth[1:], [2, 2, 1, 2, 1, 1, 2, 1, 1, 2, 1])
    # Items 1, 4, 10 share a location, so at most one of them keeps its nearest level-2 centroid.
    assert result.extra["moved_from_nearest"][1] > 0


def test_unique_residual_kmeans_level_two_values_mean_the_same_offset_in_every_cluster():
    offsets = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=float)
    centres = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], dtype=float)
    rng = np.random.default_rng(3)
    pairs = [(c, o) for c in range(4) for o in range(4)]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]  # item ids do not follow the offsets
    x = np.array([centres[c] + offsets[o] for c, o in pairs])
    result = unique_residual_kmeans(_with_padding(x), K=4, seed=0)
    _assert_valid(result, 16, 4)
    level_one = {}
    for item, (centre, offset) in enumerate(pairs, start=1):
        assert level_one.setdefault(offset, result.codes[item, 1]) == result.codes[item, 1]
    assert len(set(level_one.values())) == 4 and result.extra["moved_from_nearest"] == [0.0, 0.0]
    assert result.extra["reconstruction_mse"][1] == pytest.approx(0.0, abs=1e-9)


# --- random codes and RQ-VAE --------------------------------------------------------------------


def test_random_codes_length_and_errors():
    result = random_codes(N_ITEMS, K=4, seed=3)
    assert result.num_levels == 5  # 4**4 = 256 < 300 <= 4**5
    _assert_valid(result, N_ITEMS, 4)
    assert random_codes(16, K=4).num_levels == 2
    with pytest.raises(ValueError, match="cannot be unique"):
        random_codes(N_ITEMS, K=4, L=4)


def test_rqvae_logs_metrics_and_reports_stats(blobs):
    logged = []
    result = train_rqvae(
        blobs, K=16, L=2, epochs=2, batch_size=128, hidden_dim=32, seed=0,
        log_metric=lambda name, value, step: logged.append((name, step)),
    )
    _assert_valid(result, N_ITEMS, 16)
    assert result.depth[1:].tolist() == [2] * N_ITEMS
    assert result.num_levels == (3 if result.collisions_before_dedup else 2)
    names = ("rqvae/loss", "rqvae/recon_mse", "rqvae/rq_loss")
    assert sorted(logged) == sorted((name, step) for name in names for step in (0, 1))
    assert len(result.extra["latent_residual_mse"]) == 2


# --- determinism --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,kw",
    [
        ("hierarchical_kmeans", {"K": 4}),
        ("residual_kmeans", {"K": 8, "L": 4}),
        ("unique_residual_kmeans", {"K": 8}),
        ("random", {"K": 4}),
        ("rqvae", {"K": 32, "L": 3, "epochs": 3, "batch_size": 128, "hidden_dim": 32}),
    ],
)
def test_same_seed_same_codes(results, blobs, method, kw):
    again = quantize(blobs, method, seed=1, **kw)
    np.testing.assert_array_equal(again.codes, results[method].codes)
    np.testing.assert_array_equal(again.depth, results[method].depth)


def test_different_seed_changes_random_codes(results, blobs):
    assert not np.array_equal(quantize(blobs, "random", K=4, seed=2).codes, results["random"].codes)
