"""Metrics by the target's training count (unger.evaluation.popularity)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from unger.evaluation.metrics import evaluate_rankings
from unger.evaluation.popularity import (at_mix, bucket_labels, main, metrics_by_popularity,
                                         prefix_hits_by_popularity, training_counts)


def _frame(targets, lists):
    return pd.DataFrame({"user_id": np.arange(len(targets)), "target": targets, "items": [np.array(x) for x in lists]})


def test_counts_and_buckets_by_hand():
    train = pd.DataFrame({"user_id": [1, 2], "items": [[1, 2, 2], [2, 3]]})
    counts = training_counts(train)
    assert counts.to_dict() == {2: 3, 1: 1, 3: 1}
    # Item 4 never occurs in training: it counts 0.
    recs = _frame([2, 1, 4, 3], [[2, 9], [9, 1], [9, 8], [8, 9]])
    out = metrics_by_popularity(recs, counts, ks=[1, 2], edges=(0, 2))
    assert [b["bucket"] for b in out] == bucket_labels((0, 2)) == ["0-1", "2+"]
    low, high = out
    assert (low["users"], high["users"]) == (3, 1) and low["share"] == pytest.approx(0.75)
    assert (low["min_count"], low["max_count"], high["max_count"]) == (0, 1, None)
    assert high["recall@1"] == 1.0 and high["ndcg@2"] == 1.0
    assert low["recall@1"] == 0.0 and low["recall@2"] == pytest.approx(1 / 3)
    assert low["ndcg@2"] == pytest.approx((1 / np.log2(3)) / 3)
    # Recommendation side. Catalog without num_items: ids in counts, targets or lists = {1, 2, 3, 4, 8, 9}.
    assert (low["items"], high["items"]) == (5, 1)
    assert high["rec_share@1"] == pytest.approx(1 / 4) and low["rec_share@1"] == pytest.approx(3 / 4)
    assert high["rec_share@2"] == pytest.approx(1 / 8)
    assert low["coverage@1"] == pytest.approx(2 / 5) and low["coverage@2"] == pytest.approx(3 / 5)
    assert high["coverage@1"] == 1.0
    # With the catalog given as ids 1..9, the never-seen items 5, 6, 7 join the rare bucket, uncovered.
    low9, high9 = metrics_by_popularity(recs, counts, ks=[2], edges=(0, 2), num_items=9)
    assert (low9["items"], high9["items"]) == (8, 1) and low9["coverage@2"] == pytest.approx(3 / 8)
    assert low9["rec_share@2"] == low["rec_share@2"]


def test_share_weighted_buckets_give_back_the_whole_split():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user_id": range(300), "items": [rng.integers(1, 200, size=rng.integers(1, 30)) for _ in range(300)]})
    targets = rng.integers(1, 220, size=500)
    lists = [rng.permutation(np.r_[t, rng.integers(1, 220, size=19)])[:20] if rng.random() < 0.5 else rng.integers(1, 220, size=20)
             for t in targets]
    recs = _frame(targets, lists)
    out = metrics_by_popularity(recs, training_counts(train), ks=[10, 20])
    whole = evaluate_rankings(np.stack(recs["items"]), targets, ks=(10, 20))
    assert sum(b["users"] for b in out) == len(targets)
    for m in ("recall@10", "ndcg@10", "ndcg@20"):
        assert sum(b["share"] * (b[m] or 0.0) for b in out) == pytest.approx(whole[m])
    # Every top-k slot holds an item of exactly one bucket.
    for k in (10, 20):
        assert sum(b[f"rec_share@{k}"] for b in out) == pytest.approx(1.0)
    # Weighted by its own mix a split gives back its metric; by another split's mix, that mix's weights.
    assert at_mix(out, out) == pytest.approx(whole["ndcg@10"])
    rare = [{**b, "share": 1.0 if i == 0 else 0.0} for i, b in enumerate(out)]
    assert at_mix(out, rare, "recall@10") == pytest.approx(out[0]["recall@10"])
    with pytest.raises(ValueError, match="bucket edges differ"):
        at_mix(out, out[:2])


def test_prefix_hits_say_at_which_code_level_a_target_is_lost():
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 0], [1, 1]])  # row = item id, row 0 padding
    counts = pd.Series({1: 10})
    # User 0: target 2 (rare), its cluster (item 1) listed, not itself. User 1: target 1 (frequent), hit.
    # User 2: target 4 (rare), neither its cluster nor itself.
    recs = _frame([2, 1, 4], [[1, 3], [1, 4], [1, 2]])
    rare, frequent = prefix_hits_by_popularity(recs, counts, codes, k=2, edges=(0, 5))
    assert rare["users"] == 2 and rare["prefix_hit@2"] == [0.5, 0.0] and rare["hit@2"] == 0.0
    assert frequent["prefix_hit@2"] == [1.0, 1.0] and frequent["hit@2"] == 1.0
    with pytest.raises(ValueError, match="code table has 3 rows"):
        prefix_hits_by_popularity(recs, counts, codes[:3], k=2)


def test_bad_edges_and_short_lists_are_errors():
    recs = _frame([1], [[1, 2]])
    counts = pd.Series({1: 3})
    with pytest.raises(ValueError, match="must start at 0 and increase"):
        metrics_by_popularity(recs, counts, ks=[1], edges=(1, 5))
    with pytest.raises(ValueError, match="fewer than k=5"):
        metrics_by_popularity(recs, counts, ks=[5])


def test_cli_prints_a_table_from_the_ranked_lists(tmp_path, capsys):
    pd.DataFrame({"user_id": [1], "items": [[1, 1, 1, 1, 1, 2]]}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "run_a").mkdir()
    _frame([1, 2], [[1] + list(range(10, 20)), list(range(10, 21))]).to_parquet(tmp_path / "run_a" / "test_recommendations.parquet")
    table = main(["run_a", "--root", str(tmp_path), "--train", str(tmp_path / "train.parquet")])
    text = capsys.readouterr().out
    assert "| run_a |" in text and "| users | 1 (50%)" in text
    assert "share of the top-10 slots" in text and "| catalog items |" in text
    codes = np.arange(2 * 21).reshape(21, 2)  # every item its own cluster: prefix hit = item hit
    np.save(tmp_path / "codes.npy", codes)
    main(["run_a", "--root", str(tmp_path), "--train", str(tmp_path / "train.parquet"), "--codes", str(tmp_path / "codes.npy")])
    assert f"| run_a ({tmp_path / 'codes.npy'}, L=2) | 0.000 / 0.000 / 0.000 | 1.000 / 1.000 / 1.000 | - | - | - |" \
        in capsys.readouterr().out
    (tmp_path / "run_c").mkdir()
    shutil.copy(tmp_path / "run_a" / "test_recommendations.parquet", tmp_path / "run_c")
    np.save(tmp_path / "one_cluster.npy", np.zeros((21, 1), dtype=np.int64))  # every item in one cluster
    main(["run_a", "run_c", "--root", str(tmp_path), "--train", str(tmp_path / "train.parquet"),
          "--codes", str(tmp_path / "codes.npy"), str(tmp_path / "one_cluster.npy")])
    out = capsys.readouterr().out
    assert f"| run_c ({tmp_path / 'one_cluster.npy'}, L=1) | 1.000 / 0.000 | 1.000 / 1.000 | - | - | - |" in out
    assert f"| run_a ({tmp_path / 'codes.npy'}, L=2) | 0.000 / 0.000 / 0.000 |" in out
    with pytest.raises(SystemExit):
        main(["run_a", "run_c", "--root", str(tmp_path), "--train", str(tmp_path / "train.parquet"), "--codes",
              str(tmp_path / "codes.npy"), str(tmp_path / "codes.npy"), str(tmp_path / "codes.npy")])
    assert "one file for every run or one per run (2), not 3" in capsys.readouterr().err
    assert table["run_a"][1]["ndcg@10"] == 1.0 and table["run_a"][0]["ndcg@10"] == 0.0
    by_path = main([str(tmp_path / "run_a" / "test_recommendations.parquet"), "--train", str(tmp_path / "train.parquet")])
    assert list(by_path.values()) == list(table.values())
    with pytest.raises(FileNotFoundError, match="no recommendations"):
        main(["run_b", "--root", str(tmp_path), "--train", str(tmp_path / "train.parquet")])
