"""K-means quantizers: the paper's recursive hierarchical k-means and residual k-means (Algorithm 1),
and a hybrid of the two that keeps residual k-means' shared codebooks with hierarchical k-means' unique
codes.

All three use scikit-learn's :class:`~sklearn.cluster.KMeans` and return a
:class:`~unger.quantize.common.QuantizationResult` with codes shaped ``(N + 1, L)`` (row 0 padding).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from unger.quantize.common import (
    QuantizationResult,
    check_codebook_size,
    item_matrix,
    residual_result,
    with_padding_row,
)


def _kmeans(x: np.ndarray, n_clusters: int, seed: int, n_init: int, max_iter: int) -> KMeans:
    """Fit k-means; duplicate points make sklearn warn about fewer distinct clusters, which callers handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed).fit(x)


def _order_by_centroid_distance(x: np.ndarray) -> np.ndarray:
    """Positions of the rows of ``x`` sorted by distance to their mean, ties kept in input (item id) order."""
    x64 = x.astype(np.float64)
    dist = ((x64 - x64.mean(axis=0)) ** 2).sum(axis=1)
    return np.argsort(dist, kind="stable")


def _relabel_by_first_member(labels: np.ndarray) -> np.ndarray:
    """Map arbitrary k-means label ids to 0..m-1 in order of each cluster's lowest item id."""
    uniq, first = np.unique(labels, return_index=True)
    mapping = np.empty(uniq.max() + 1, dtype=np.int64)
    mapping[uniq[np.argsort(first)]] = np.arange(len(uniq))
    return mapping[labels]


def hierarchical_kmeans(
    embeddings: np.ndarray,
    K: int = 256,
    seed: int = 2024,
    max_depth: int | None = None,
    n_init: int = 1,
    max_iter: int = 300,
) -> QuantizationResult:
    """Recursive hierarchical k-means (UNGER section 3.3, following EAGER): variable-depth unique codes.

    The N items are split into ``K`` clusters with k-means; every cluster with more than ``K`` items is
    split again into ``K`` children, recursively. A cluster with ``2 <= n <= K`` items is not clustered
    (k-means with ``n`` clusters would only give each item its own cluster in an arbitrary order);
    instead each item gets its own child index, ordered by distance to the cluster centroid (closest,
    i.e. most typical, first; ties by item id). A singleton cluster ends the item's code.

    Child indices of a k-means split are renumbered by each cluster's lowest item id, because k-means
    label ids are arbitrary; this makes codes independent of sklearn's label permutation.

    Codes are right-padded with 0 to the maximum depth ``L``. Padding cannot create a collision: an
    item's code ends exactly where its tree node holds only that item, so its unpadded prefix of
    length ``depth`` is shared by no other item, and every other item differs from it within those
    first ``depth`` positions already. ``depth`` records the unpadded length.

    Degenerate data (identical or near-identical embeddings) can make k-means return a single
    non-empty cluster, which would recurse forever; such a split falls back to cutting the items, in
    item-id order, into ``K`` contiguous chunks, so every step shrinks the cluster and the codes stay
    unique.

    Args:
        embeddings: ``(N + 1, d)`` float array; row 0 (padding) is ignored.
        K: children per node, i.e. the vocabulary size of every level.
        seed: ``random_state`` of every k-means call, making the codes deterministic.
        max_depth: optional cap on the code length. At the last allowed level every cluster gets the
            one-index-per-item rule, which needs at most ``K`` items; otherwise ``ValueError``.
        n_init, max_iter: passed to :class:`~sklearn.cluster.KMeans`.
    """
    check_codebook_size(K)
    if max_depth is not None and max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    x = item_matrix(embeddings)
    n_items = x.shape[0]
    codes = np.zeros((n_items, 4), dtype=np.int64)
    depth = np.zeros(n_items, dtype=np.int64)
    fallback_splits = 0
    kmeans_calls = 0

    # Depth-first over tree nodes: (item indices in ascending order, level the node's children get).
    stack: list[tuple[np.ndarray, int]] = [(np.arange(n_items), 0)]
    while stack:
        idx, level = stack.pop()
        if level >= codes.shape[1]:
            codes = np.concatenate([codes, np.zeros_like(codes)], axis=1)
        n = len(idx)
        if n <= K:
            order = _order_by_centroid_distance(x[idx])
            codes[idx[order], level] = np.arange(n)
            depth[idx] = level + 1
            continue
        if max_depth is not None and level >= max_depth - 1:
            raise ValueError(
                f"a cluster of {n} items remains at level {level}, more than K={K}; "
                f"max_depth={max_depth} is too small for unique codes"
            )
        labels = _kmeans(x[idx], K, seed, n_init, max_iter).labels_
        kmeans_calls += 1
        if len(np.unique(labels)) < 2:
            labels = np.arange(n) * K // n
            fallback_splits += 1
        labels = _relabel_by_first_member(labels)
        codes[idx, level] = labels
        depth[idx] = level + 1
        # Group members by child; the stable sort keeps each child's items in ascending id order.
        order = np.argsort(labels, kind="stable")
        bounds = np.flatnonzero(np.diff(labels[order])) + 1
        for members in np.split(idx[order], bounds):
            if len(members) > 1:
                stack.append((members, level + 1))

    num_levels = int(depth.max())
    padded_depth = np.zeros(n_items + 1, dtype=np.int64)
    padded_depth[1:] = depth
    return QuantizationResult(
        codes=with_padding_row(codes[:, :num_levels]),
        depth=padded_depth,
        num_levels=num_levels,
        codebook_size=K,
        collisions_before_dedup=0,
        method="hierarchical_kmeans",
        extra={"kmeans_calls": kmeans_calls, "fallback_splits": fallback_splits},
    )


def residual_kmeans(
    embeddings: np.ndarray,
    K: int = 256,
    L: int = 4,
    seed: int = 2024,
    n_init: int = 1,
    max_iter: int = 300,
) -> QuantizationResult:
    """Residual k-means (Algorithm 1 of the paper analysis): ``L`` levels of ``K`` clusters each.

    Level ``l`` runs k-means on the current residuals, records each item's cluster index, and
    subtracts the assigned centroid from the residual. Items that end up sharing all ``L`` indices are
    separated TIGER style by appending one extra level holding the item's rank in its collision group
    (item-id order); the extra level exists only when collisions do, so the code length is ``L`` or
    ``L + 1``, and ``depth`` stays ``L`` (the meaningful levels). A collision group larger than ``K``
    raises ``ValueError``.

    ``extra["reconstruction_mse"][l]`` is the mean squared norm of the residual after level ``l``
    (``extra["input_mean_sq_norm"]`` is the value before level 0), i.e. how much of the embedding the
    first ``l + 1`` codes cannot explain.
    """
    check_codebook_size(K)
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    x = item_matrix(embeddings).astype(np.float64)
    n_items = x.shape[0]
    n_clusters = min(K, n_items)
    residual = x.copy()
    item_codes = np.zeros((n_items, L), dtype=np.int64)
    recon = []
    for level in range(L):
        # k-means in float32 is about twice as fast; the residual itself is kept in float64.
        km = _kmeans(residual.astype(np.float32), n_clusters, seed + level, n_init, max_iter)
        item_codes[:, level] = km.labels_
        residual -= km.cluster_centers_[km.labels_]
        recon.append(float((residual**2).sum(axis=1).mean()))

    extra = {"input_mean_sq_norm": float((x**2).sum(axis=1).mean()), "reconstruction_mse": recon}
    return residual_result(item_codes, L, K, "residual_kmeans", extra)


def unique_residual_kmeans(
    embeddings: np.ndarray,
    K: int = 256,
    seed: int = 2024,
    n_init: int = 1,
    max_iter: int = 300,
) -> QuantizationResult:
    """Residual k-means whose codes are made unique inside each cluster, with no disambiguation level.

    Not in the paper: a hybrid of its two quantizers. Level ``l`` fits one codebook of ``K`` centroids
    on the residuals of the items still without a unique code, as residual k-means does, so a code
    value means the same direction in every cluster. Items sharing a prefix form a group; a group of
    at most ``K`` items gets one distinct value per item by a minimum-cost assignment (Hungarian, squared
    distance of each residual to the centroids) and its codes end there, as hierarchical k-means ends
    a small cluster, rather than receiving residual k-means' meaningless collision rank. A larger
    group takes each item's nearest centroid, subtracts it, and goes on to the next level; a group the
    nearest centroids do not split is cut into ``K`` chunks in item-id order, so the codes terminate.

    Codes are right-padded with 0 (``depth`` is the unpadded length), unique for the reason given in
    :func:`hierarchical_kmeans`. ``extra["moved_from_nearest"][l]`` is the share of the items coded at
    level ``l`` by assignment whose value is not their nearest centroid (the price of uniqueness), and
    ``extra["reconstruction_mse"][l]`` the mean squared residual of all items after level ``l``.
    """
    check_codebook_size(K)
    x = item_matrix(embeddings).astype(np.float64)
    n_items = x.shape[0]
    residual = x.copy()
    codes = np.zeros((n_items, 0), dtype=np.int64)
    depth = np.zeros(n_items, dtype=np.int64)
    moved, recon, fallback_splits = [], [], 0
    groups = [np.arange(n_items)]
    level = 0
    while groups:
        codes = np.concatenate([codes, np.zeros((n_items, 1), dtype=np.int64)], axis=1)
        active = np.concatenate(groups)
        km = _kmeans(residual[active].astype(np.float32), min(K, len(active)), seed + level, n_init, max_iter)
        centroids = km.cluster_centers_.astype(np.float64)
        nearest = np.zeros(n_items, dtype=np.int64)
        nearest[active] = km.labels_
        assigned, changed, next_groups = 0, 0, []
        for group in groups:
            if len(group) <= K:
                r = residual[group]
                dist = (r**2).sum(axis=1)[:, None] - 2 * r @ centroids.T + (centroids**2).sum(axis=1)[None]
                rows, cols = linear_sum_assignment(dist)
                labels = np.empty(len(group), dtype=np.int64)
                labels[rows] = cols
                changed += int((labels != dist.argmin(axis=1)).sum())
                assigned += len(group)
                next_members: list[np.ndarray] = []
            else:
                labels = nearest[group]
                if len(np.unique(labels)) < 2:
                    labels = np.arange(len(group)) * K // len(group)
                    fallback_splits += 1
                order = np.argsort(labels, kind="stable")
                bounds = np.flatnonzero(np.diff(labels[order])) + 1
                next_members = [m for m in np.split(group[order], bounds) if len(m) > 1]
            codes[group, level] = labels
            depth[group] = level + 1
            residual[group] -= centroids[labels]
            next_groups.extend(next_members)
        moved.append(changed / assigned if assigned else 0.0)
        recon.append(float((residual**2).sum(axis=1).mean()))
        groups = next_groups
        level += 1

    padded_depth = np.zeros(n_items + 1, dtype=np.int64)
    padded_depth[1:] = depth
    return QuantizationResult(
        codes=with_padding_row(codes),
        depth=padded_depth,
        num_levels=codes.shape[1],
        codebook_size=K,
        collisions_before_dedup=0,
        method="unique_residual_kmeans",
        extra={
            "input_mean_sq_norm": float((x**2).sum(axis=1).mean()),
            "reconstruction_mse": recon,
            "moved_from_nearest": moved,
            "fallback_splits": fallback_splits,
        },
    )
