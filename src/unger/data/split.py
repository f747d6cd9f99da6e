"""Dense ids and the leave-one-out split (last item test, second-to-last validation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

PAD = 0


def assign_dense_ids(reviews: pd.DataFrame) -> pd.DataFrame:
    """Add ``user_id`` and ``item_id`` (1-based; 0 is padding), ordered by the raw ids."""
    out = reviews.copy()
    users = np.sort(out["reviewer_id"].unique())
    items = np.sort(out["asin"].unique())
    out["user_id"] = pd.Series(np.searchsorted(users, out["reviewer_id"]) + 1, index=out.index)
    out["item_id"] = pd.Series(np.searchsorted(items, out["asin"]) + 1, index=out.index)
    return out


def leave_one_out(interactions: pd.DataFrame, max_history: int) -> dict[str, pd.DataFrame]:
    """Split each user's chronological sequence.

    Returns:
        ``train``: ``user_id, items`` (every item but the last two, untruncated, so later stages can
        form every prefix); ``valid`` and ``test``: ``user_id, history, target`` with the history
        truncated to the last ``max_history`` items (the test history includes the validation item).
    """
    seqs = interactions.groupby("user_id", sort=True)["item_id"].agg(list)
    short = seqs[seqs.map(len) < 3]
    if len(short):
        raise ValueError(f"{len(short)} users have fewer than 3 interactions (user_id {short.index[0]}, ...)")
    users = seqs.index.to_numpy()
    train = pd.DataFrame({"user_id": users, "items": [s[:-2] for s in seqs]})
    valid = pd.DataFrame(
        {"user_id": users, "history": [s[:-2][-max_history:] for s in seqs], "target": [s[-2] for s in seqs]}
    )
    test = pd.DataFrame(
        {"user_id": users, "history": [s[:-1][-max_history:] for s in seqs], "target": [s[-1] for s in seqs]}
    )
    return {"train": train, "valid": valid, "test": test}
