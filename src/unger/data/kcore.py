"""Chronological ordering, duplicate removal and the iterative k-core filter."""

from __future__ import annotations

import pandas as pd


def order_chronologically(reviews: pd.DataFrame) -> pd.DataFrame:
    """Sort by user then time, keeping file order inside same-day ties (timestamps are days)."""
    return reviews.sort_values(["reviewer_id", "timestamp", "line"], kind="stable").reset_index(drop=True)


def drop_duplicate_reviews(reviews: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the earliest review of each (user, item) pair; expects chronological order."""
    keep = ~reviews.duplicated(["reviewer_id", "asin"], keep="first")
    return reviews[keep].reset_index(drop=True), int((~keep).sum())


def k_core(reviews: pd.DataFrame, k: int) -> pd.DataFrame:
    """Iteratively drop users and items with fewer than ``k`` interactions until none is left.

    The result is the largest sub-table in which every user and every item has >= k rows.
    """
    current = reviews
    while True:
        user_counts = current["reviewer_id"].map(current["reviewer_id"].value_counts())
        item_counts = current["asin"].map(current["asin"].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return current.reset_index(drop=True)
        current = current[keep]
