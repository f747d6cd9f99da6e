"""The paired per-user comparison of two rankings (unger.evaluation.significance)."""

import numpy as np
import pandas as pd
import pytest

from unger.evaluation.significance import load_recommendations, main, paired_comparison, per_user_gain


def _frame(users, targets, lists):
    return pd.DataFrame({"user_id": users, "target": targets, "items": [np.array(x) for x in lists]})


def test_per_user_gain_by_hand():
    frame = _frame([1, 2, 3], [7, 8, 9], [[7, 1, 2], [1, 8, 2], [1, 2, 3]])
    assert per_user_gain(frame, 3).tolist() == pytest.approx([1.0, 1 / np.log2(3), 0.0])
    assert per_user_gain(frame, 1, "recall").tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="fewer than k=5"):
        per_user_gain(frame, 5)
    with pytest.raises(ValueError, match="metric must be"):
        per_user_gain(frame, 3, "mrr")


def test_a_lead_on_many_users_is_significant_and_its_interval_holds_the_gain():
    rng = np.random.default_rng(0)
    n = 2000
    targets = np.arange(n) + 100
    # b finds a user's target at rank 1 for 30% of users; a finds the same ones plus 10% more at rank 0.
    found_b = rng.random(n) < 0.3
    found_a = found_b | (rng.random(n) < 0.1)
    a = _frame(np.arange(n), targets, [[t, 0, 1] if f else [0, 1, 2] for t, f in zip(targets, found_a)])
    b = _frame(np.arange(n), targets, [[0, t, 1] if f else [0, 1, 2] for t, f in zip(targets, found_b)])
    # Rows in another order pair by user, not by position.
    out = paired_comparison(a, b.iloc[::-1], k=3, n_boot=500)
    mean_a, mean_b = found_a.mean(), found_b.mean() / np.log2(3)
    assert out["mean_a"] == pytest.approx(mean_a) and out["mean_b"] == pytest.approx(mean_b)
    assert out["relative_gain"] == pytest.approx(mean_a / mean_b - 1)
    low, high = out["bootstrap_95ci"]
    assert low < out["relative_gain"] < high and low > 0
    assert out["p_value"] < 1e-6 and out["t"] > 0
    assert out["users_a_better"] == found_a.sum() and out["users_b_better"] == 0
    assert out["users"] == n and out["users_equal"] == n - found_a.sum()


def test_identical_rankings_show_no_difference():
    a = _frame([1, 2, 3], [7, 8, 9], [[7, 1], [1, 8], [1, 2]])
    out = paired_comparison(a, a.copy(), k=2, n_boot=100)
    assert out["relative_gain"] == 0.0 and out["p_value"] == 1.0 and out["bootstrap_95ci"] == [0.0, 0.0]


def test_rankings_of_different_users_or_targets_are_refused():
    a = _frame([1, 2, 3], [7, 8, 9], [[7, 1], [1, 8], [1, 2]])
    with pytest.raises(ValueError, match=r"different users: 1 only in a \(e.g. \[3\]\), 1 only in b \(e.g. \[4\]\)"):
        paired_comparison(a, _frame([1, 2, 4], [7, 8, 9], [[7, 1], [1, 8], [1, 2]]))
    with pytest.raises(ValueError, match="different targets for 1 users, e.g. user 2"):
        paired_comparison(a, _frame([1, 2, 3], [7, 5, 9], [[7, 1], [1, 8], [1, 2]]))
    with pytest.raises(ValueError, match="scores ndcg@2 = 0 for every user"):
        paired_comparison(a, _frame([1, 2, 3], [7, 8, 9], [[1, 2], [1, 2], [1, 2]]), k=2)
    with pytest.raises(ValueError, match="user 1 appears twice"):
        paired_comparison(a, _frame([1, 1, 3], [7, 7, 9], [[7, 1], [1, 8], [1, 2]]))


def test_cli_reads_study_runs_by_name_and_names_a_missing_file(tmp_path, capsys):
    a = _frame([1, 2], [7, 8], [[7, 1], [1, 2]])
    b = _frame([1, 2], [7, 8], [[1, 7], [1, 2]])
    for run, frame in (("x_s1", a), ("y_s1", b)):
        (tmp_path / run).mkdir()
        frame.to_parquet(tmp_path / run / "valid_recommendations.parquet")
    out = main(["x_s1", str(tmp_path / "y_s1" / "valid_recommendations.parquet"), "--split", "valid",
                "--k", "2", "--root", str(tmp_path), "--n-boot", "50"])
    assert out["mean_a"] == pytest.approx(0.5) and out["mean_b"] == pytest.approx(0.5 / np.log2(3))
    assert '"a": "x_s1"' in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match=r"z_s1/test_recommendations.parquet"):
        load_recommendations("z_s1", "test", tmp_path)
    a.drop(columns="target").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet: missing column\(s\) \['target'\]"):
        load_recommendations(str(tmp_path / "bad.parquet"), "test")


def test_packed_copies_give_the_same_paired_comparison(tmp_path):
    from unger.evaluation.pack_recommendations import main as pack_main

    rng = np.random.default_rng(1)
    n = 300
    targets = rng.integers(0, 1000, n)
    root = tmp_path / "study"
    for run in ("a", "b"):
        lists = [np.where(rng.random(5) < 0.2, t, rng.integers(0, 1000, 5)) for t in targets]
        frame = _frame(np.arange(n), targets, lists).assign(scores=[rng.random(5) for _ in range(n)])
        (root / run).mkdir(parents=True)
        frame.to_parquet(root / run / "test_recommendations.parquet")
    (root / "only_valid").mkdir()
    _frame([1], [2], [[2, 3, 4, 5, 6]]).to_parquet(root / "only_valid" / "valid_recommendations.parquet")

    written = pack_main([str(tmp_path / "packed"), "--root", str(root)])
    assert sorted(p.relative_to(tmp_path / "packed").as_posix() for p in written) == [
        "a/test_recommendations.parquet", "b/test_recommendations.parquet"]
    packed = load_recommendations("a", "test", tmp_path / "packed")
    assert list(packed.columns) == ["user_id", "target", "items"] and packed["items"].iloc[0].dtype == np.int32
    original = paired_comparison(load_recommendations("a", "test", root), load_recommendations("b", "test", root),
                                 k=5, n_boot=200)
    again = paired_comparison(packed, load_recommendations("b", "test", tmp_path / "packed"), k=5, n_boot=200)
    assert again == original
    assert pack_main([str(tmp_path / "none"), "--root", str(tmp_path / "no_study_yet")]) == []
