"""Shared pieces of the quantizers: the result type, input checks, collision handling and stats.

Every quantizer returns a :class:`QuantizationResult` whose ``codes`` follow docs/CONVENTIONS.md: an
int64 array ``(num_items + 1, L)`` indexed by item id, values in ``[0, K)``, one unique row per item
1..N, and row 0 (padding) all zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd


@dataclass
class QuantizationResult:
    """Item codes plus what is needed to interpret and audit them.

    Attributes:
        codes: int64 ``(N + 1, num_levels)``; row 0 is padding (zeros).
        depth: int64 ``(N + 1,)``; number of meaningful levels of each item, i.e. the levels before
            zero padding (hierarchical k-means) or before the disambiguation level (residual
            quantizers). Row 0 is 0.
        num_levels: ``L``, the code length, including a disambiguation level when one was added.
        codebook_size: ``K``, the vocabulary size of every level (disambiguation values are < K too).
        collisions_before_dedup: number of items that shared their full code with at least one other
            item before codes were made unique (0 for methods that are unique by construction).
        method: name of the quantizer that produced the codes.
        disambiguated: True when an extra level was appended to separate colliding items.
        extra: method-specific diagnostics (e.g. per-level reconstruction error, training losses),
            merged into :meth:`stats`.
    """

    codes: np.ndarray
    depth: np.ndarray
    num_levels: int
    codebook_size: int
    collisions_before_dedup: int = 0
    method: str = ""
    disambiguated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return int(self.codes.shape[0] - 1)

    def is_unique(self) -> bool:
        """True when rows 1..N are pairwise distinct."""
        items = self.codes[1:]
        return len(np.unique(items, axis=0)) == len(items)

    def stats(self) -> dict[str, Any]:
        """Summary for logging: depth histogram, per-level usage and group sizes, collisions.

        Per level ``l`` two size distributions are reported over the items for which level ``l`` is
        in use (``depth > l``, or every item on a disambiguation level):

        * ``cluster_sizes``: items per code value in column ``l`` alone (the k-means cluster sizes of
          a residual quantizer),
        * ``prefix_group_sizes``: items per distinct prefix ``codes[:, :l + 1]``, i.e. the nodes of the
          code tree the generative decoder walks (the clusters of hierarchical k-means).
        """
        items = self.codes[1:]
        depth = self.depth[1:]
        hist_values, hist_counts = np.unique(depth, return_counts=True)
        levels = []
        for level in range(self.num_levels):
            is_disambiguation = self.disambiguated and level == self.num_levels - 1
            active = np.ones(len(items), bool) if is_disambiguation else depth > level
            column = items[active, level]
            _, cluster_sizes = np.unique(column, return_counts=True)
            _, prefix_sizes = np.unique(items[active, : level + 1], axis=0, return_counts=True)
            levels.append(
                {
                    "level": level,
                    "disambiguation": bool(is_disambiguation),
                    "items": int(active.sum()),
                    "used_codes": int(len(cluster_sizes)),
                    "cluster_sizes": _size_summary(cluster_sizes),
                    "num_prefix_groups": int(len(prefix_sizes)),
                    "prefix_group_sizes": _size_summary(prefix_sizes),
                }
            )
        out: dict[str, Any] = {
            "method": self.method,
            "num_items": self.num_items,
            "num_levels": int(self.num_levels),
            "codebook_size": int(self.codebook_size),
            "depth_histogram": {int(v): int(c) for v, c in zip(hist_values, hist_counts)},
            "mean_depth": float(depth.mean()) if len(depth) else 0.0,
            "levels": levels,
            "collisions_before_dedup": int(self.collisions_before_dedup),
            "disambiguated": bool(self.disambiguated),
            "unique": bool(self.is_unique()),
        }
        out.update(self.extra)
        return out

    def code_table(self, item_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per item: ``item_id, code_0..code_{L-1}, depth`` (default: items 1..N in order)."""
        ids = np.arange(1, self.num_items + 1) if item_ids is None else np.asarray(item_ids, np.int64)
        if ids.size and (ids.min() < 1 or ids.max() > self.num_items):
            raise ValueError(f"item ids must lie in [1, {self.num_items}]")
        table = pd.DataFrame({"item_id": ids})
        for level in range(self.num_levels):
            table[f"code_{level}"] = self.codes[ids, level]
        table["depth"] = self.depth[ids]
        return table


def _size_summary(sizes: np.ndarray) -> dict[str, float]:
    if len(sizes) == 0:
        return {"min": 0, "median": 0.0, "max": 0, "mean": 0.0}
    return {
        "min": int(sizes.min()),
        "median": float(np.median(sizes)),
        "max": int(sizes.max()),
        "mean": float(sizes.mean()),
    }


def item_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Rows 1..N of an ``(N + 1, d)`` embedding matrix as contiguous float32 (row 0 is padding)."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] < 2:
        raise ValueError(f"expected embeddings shaped (num_items + 1, d), num_items >= 1; got {emb.shape}")
    x = np.ascontiguousarray(emb[1:], dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf")
    return x


def check_codebook_size(K: int) -> None:
    if int(K) < 2:
        raise ValueError(f"codebook size K must be >= 2, got {K}")


def with_padding_row(item_codes: np.ndarray) -> np.ndarray:
    """Prepend the all-zero padding row 0 to ``(N, L)`` item codes."""
    out = np.zeros((item_codes.shape[0] + 1, item_codes.shape[1]), dtype=np.int64)
    out[1:] = item_codes
    return out


def disambiguate(item_codes: np.ndarray, K: int) -> tuple[np.ndarray, int]:
    """Make ``(N, L)`` codes unique by appending one level, TIGER style, only if collisions exist.

    The extra value is the item's rank inside its collision group (ordered by item id, 0 for the
    first and for items without a collision), so it stays in ``[0, K)`` as long as no group has more
    than ``K`` members; a larger group cannot be separated with one level and raises ``ValueError``.

    Returns:
        ``(codes, collisions)`` where ``collisions`` counts the items that shared a full code with
        another item; ``codes`` is the input unchanged when there were none.
    """
    _, inverse, counts = np.unique(item_codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    group_size = counts[inverse]
    collisions = int((group_size > 1).sum())
    if collisions == 0:
        return item_codes, 0
    if counts.max() > K:
        raise ValueError(
            f"{int(counts.max())} items share one code, more than the K={K} values one disambiguation "
            "level can separate; use more levels or a larger K"
        )
    # Stable sort by group keeps item-id order inside each group, so the rank is deterministic.
    order = np.argsort(inverse, kind="stable")
    group_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(inverse), dtype=np.int64)
    rank[order] = np.arange(len(inverse)) - group_start[inverse[order]]
    return np.concatenate([item_codes, rank[:, None]], axis=1), collisions


def full_depth(num_items: int, depth: int) -> np.ndarray:
    """Depth vector for fixed-depth methods: ``depth`` for every item, 0 for the padding row."""
    out = np.full(num_items + 1, depth, dtype=np.int64)
    out[0] = 0
    return out


def random_codes(num_items: int, K: int = 256, L: int | None = None, seed: int = 2024) -> QuantizationResult:
    """Random unique codes: the "meaningless id" baseline of the paper's quantizer comparison (4.6).

    Draws ``num_items`` distinct integers from ``[0, K**L)`` and writes each in base ``K`` (most
    significant digit first), so codes are unique by construction and carry no similarity structure.
    ``L`` defaults to the smallest length with ``K**L >= num_items``.
    """
    check_codebook_size(K)
    if num_items < 1:
        raise ValueError(f"num_items must be >= 1, got {num_items}")
    if L is None:
        L = 1
        while K**L < num_items:
            L += 1
    if L < 1 or K**L < num_items:
        raise ValueError(f"K**L = {K}**{L} < {num_items} items: random codes cannot be unique")
    if K**L >= 2**63:
        raise ValueError(f"K**L = {K}**{L} does not fit in int64; use a smaller L")
    rng = np.random.default_rng(seed)
    values = rng.choice(K**L, size=num_items, replace=False).astype(np.int64)
    digits = np.empty((num_items, L), dtype=np.int64)
    for level in range(L - 1, -1, -1):
        digits[:, level] = values % K
        values //= K
    return QuantizationResult(
        codes=with_padding_row(digits),
        depth=full_depth(num_items, L),
        num_levels=L,
        codebook_size=K,
        collisions_before_dedup=0,
        method="random",
    )


def residual_result(item_codes: np.ndarray, L: int, K: int, method: str, extra: dict[str, Any]) -> QuantizationResult:
    """Result of an L-level residual quantizer: collisions get one disambiguation level (see
    ``disambiguate``), every item keeps depth L, row 0 is the padding row."""
    final_codes, collisions = disambiguate(item_codes, K)
    return QuantizationResult(
        codes=with_padding_row(final_codes),
        depth=full_depth(len(item_codes), L),
        num_levels=final_codes.shape[1],
        codebook_size=K,
        collisions_before_dedup=collisions,
        method=method,
        disambiguated=final_codes.shape[1] > L,
        extra=extra,
    )
