"""k-core property tests and the leave-one-out split."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from unger.data.kcore import drop_duplicate_reviews, k_core, order_chronologically
from unger.data.split import assign_dense_ids, leave_one_out

pairs = st.lists(st.tuples(st.integers(0, 14), st.integers(0, 11)), min_size=0, max_size=150)


def _frame(edges) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reviewer_id": [f"u{u}" for u, _ in edges],
            "asin": [f"i{i}" for _, i in edges],
            "timestamp": list(range(len(edges))),
            "line": list(range(1, len(edges) + 1)),
        }
    )


def _is_k_core(frame: pd.DataFrame, k: int) -> bool:
    return bool(
        (frame["reviewer_id"].value_counts() >= k).all() and (frame["asin"].value_counts() >= k).all()
    )


def _brute_force_core(frame: pd.DataFrame, k: int) -> set:
    """The maximal k-core as the union of all k-core subsets reachable by greedy peeling."""
    rows = set(frame.index)
    changed = True
    while changed:
        sub = frame.loc[sorted(rows)]
        users = sub["reviewer_id"].value_counts()
        items = sub["asin"].value_counts()
        drop = {i for i in rows if users[frame.at[i, "reviewer_id"]] < k or items[frame.at[i, "asin"]] < k}
        changed = bool(drop)
        rows -= drop
    return {(frame.at[i, "reviewer_id"], frame.at[i, "asin"], frame.at[i, "line"]) for i in rows}


@settings(max_examples=60, deadline=None)
@given(pairs, st.integers(1, 4))
def test_k_core_property(edges, k):
    frame = drop_duplicate_reviews(order_chronologically(_frame(edges)))[0]
    core = k_core(frame, k)
    assert _is_k_core(core, k) or core.empty
    kept = set(zip(core["reviewer_id"], core["asin"], core["line"]))
    assert kept == _brute_force_core(frame, k)


def test_k_core_keeps_a_qualifying_block_and_drops_a_chain():
    block = [(u, i) for u in range(3) for i in range(3)]
    chain = [(10, 10), (10, 11), (11, 11)]
    core = k_core(_frame(block + chain), k=3)
    assert set(core["reviewer_id"]) == {"u0", "u1", "u2"} and len(core) == 9


def test_chronological_order_is_stable_in_ties_and_duplicates_keep_earliest():
    frame = pd.DataFrame(
        {
            "reviewer_id": ["b", "a", "a", "a", "a"],
            "asin": ["x", "z", "y", "z", "w"],
            "timestamp": [5, 10, 10, 3, 10],
            "line": [1, 2, 3, 4, 5],
        }
    )
    ordered = order_chronologically(frame)
    assert ordered["line"].tolist() == [4, 2, 3, 5, 1]
    deduped, dropped = drop_duplicate_reviews(ordered)
    assert dropped == 1
    assert deduped[deduped["reviewer_id"] == "a"]["line"].tolist() == [4, 3, 5]


def test_leave_one_out_and_history_truncation():
    rows = [("u1", f"i{j}", j, j) for j in range(6)] + [("u2", f"i{j}", j, 10 + j) for j in (5, 4, 3)]
    frame = assign_dense_ids(pd.DataFrame(rows, columns=["reviewer_id", "asin", "timestamp", "line"]))
    split = leave_one_out(frame.sort_values(["user_id", "timestamp"], kind="stable"), max_history=3)
    train, valid, test = split["train"], split["valid"], split["test"]
    # u2 reviewed i5, i4, i3 on days 5, 4, 3: chronologically i3 (id 4), i4 (id 5), i5 (id 6).
    assert train["items"].map(list).tolist() == [[1, 2, 3, 4], [4]]
    assert valid["history"].map(list).tolist() == [[2, 3, 4], [4]]
    assert valid["target"].tolist() == [5, 5]
    assert test["history"].map(list).tolist() == [[3, 4, 5], [4, 5]]
    assert test["target"].tolist() == [6, 6]
    assert frame["item_id"].min() == 1 and frame["user_id"].min() == 1
