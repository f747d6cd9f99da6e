"""The per-split report of the evaluation nodes and its kedro-mlflow form."""

import numpy as np
import pandas as pd
import pytest

from unger.evaluation.metrics import (evaluate_rankings, mlflow_metrics, recommendation_frame, report_metrics,
                                      split_report)


def test_split_report_and_mlflow_metrics():
    ranked = np.array([[3, 1, 2, 4, 5], [5, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    targets = np.array([1, 9, 1])
    timing = {"ms_per_user": 2.0, "beam_size": None}
    entry = split_report(ranked, targets, (1, 5), timing)
    # Recall@1: user 3 only; recall@5: users 1 and 3; NDCG@5: (1/log2(3) + 1) / 3.
    assert entry == {"recall@1": pytest.approx(1 / 3), "ndcg@1": pytest.approx(1 / 3),
                     "recall@5": pytest.approx(2 / 3), "ndcg@5": pytest.approx((1 / np.log2(3) + 1) / 3),
                     "users": 3, "beam": timing}
    assert list(entry) == ["recall@1", "ndcg@1", "recall@5", "ndcg@5", "users", "beam"]
    assert entry["beam"] is timing
    assert report_metrics(entry) == evaluate_rankings(ranked, targets, (1, 5))

    report = {"valid": entry, "test": split_report(ranked[:2], targets[:2], (1, 5), {})}
    flat = mlflow_metrics(report)
    assert list(flat)[:4] == ["valid.recall_at_1", "valid.ndcg_at_1", "valid.recall_at_5", "valid.ndcg_at_5"]
    assert len(flat) == 8 and flat["test.recall_at_5"] == {"value": 0.5, "step": 0}
    assert all(v["step"] == 0 and v["value"] == report[k.split(".")[0]][k.split(".")[1].replace("_at_", "@")]
               for k, v in flat.items())


def test_evaluate_splits_ranks_every_user_of_each_split():
    from unger.evaluation.metrics import evaluate_splits

    seen = []

    def rank(histories):
        seen.append(histories)
        # Recommend the last history item first, then 1..4: right for the users whose target repeats it.
        return np.array([[h[-1], 1, 2, 3, 4] for h in histories]), {"ms_per_user": 1.0}

    valid = pd.DataFrame({"user_id": [1, 2], "history": [[5, 6], [7]], "target": [6, 9]})
    test = pd.DataFrame({"user_id": [1, 2, 3], "history": [[5, 6, 6], [7, 9], [8]], "target": [6, 1, 8]})
    out, frames = evaluate_splits(rank, {"valid": valid, "test": test}, (1, 5), "model")
    assert seen == [[[5, 6], [7]], [[5, 6, 6], [7, 9], [8]]]
    assert out["valid"]["users"] == 2 and out["valid"]["recall@1"] == pytest.approx(1 / 2)
    assert out["test"]["users"] == 3 and out["test"]["recall@1"] == pytest.approx(2 / 3)
    assert out["test"]["recall@5"] == pytest.approx(1.0) and out["test"]["beam"] == {"ms_per_user": 1.0}
    # The ranked lists come back per split, keyed by user, for per-user comparisons.
    assert frames["test"]["user_id"].tolist() == [1, 2, 3] and frames["test"]["target"].tolist() == [6, 1, 8]
    assert [x.tolist() for x in frames["valid"]["items"]] == [[6, 1, 2, 3, 4], [7, 1, 2, 3, 4]]
    with pytest.raises(ValueError, match="the test split has no users"):
        evaluate_splits(rank, {"valid": valid, "test": test.iloc[:0]}, (1, 5), "model")


def test_recommendation_frame_keeps_scores_only_where_given():
    samples = pd.DataFrame({"user_id": [4, 9], "history": [[1], [2]], "target": [3, 5]})
    items = np.array([[3, 1], [2, 5]], dtype=np.int32)
    plain = recommendation_frame(samples, items)
    assert list(plain.columns) == ["user_id", "target", "items"] and plain["items"].iloc[0].dtype == np.int64
    scored = recommendation_frame(samples, items, np.array([[-0.1, -2.0], [-0.5, -0.7]]))
    assert scored["scores"].iloc[1].tolist() == pytest.approx([-0.5, -0.7])
    assert scored["scores"].iloc[1].dtype == np.float32
    assert scored["user_id"].tolist() == [4, 9] and scored["target"].tolist() == [3, 5]
