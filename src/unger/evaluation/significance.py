"""Is one model's lead over another real? A paired comparison of two rankings of the same users.

The paper tests its gains with a paired t-test. Here the pairs are users: both models ranked every user of
one split, so each user contributes its NDCG@k (or Recall@k) under each model. We report the paired
t-test and a bootstrap confidence interval of the relative gain (users resampled with replacement).
This says whether a gain at one seed is more than user-level noise; seed-to-seed variance is a
separate question that only more seeds answer.

    python -m unger.evaluation.significance residual_l2_dropout_s2024 dropout_0p1_s2024
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from unger.evaluation.metrics import rank_of_target, user_recall_ndcg

STUDY_OUTPUTS = Path("data/07_model_output/study")


def per_user_gain(recommendations: pd.DataFrame, k: int, metric: str = "ndcg") -> np.ndarray:
    """Each user's NDCG@k or Recall@k (one relevant item) from a recommendation frame
    (``user_id``, ``target``, ``items``: ranked item ids, best first)."""
    if metric not in ("ndcg", "recall"):
        raise ValueError(f"metric must be 'ndcg' or 'recall', not {metric!r}")
    ranked = np.stack([np.asarray(x)[:k] for x in recommendations["items"]])
    if ranked.shape[1] < k:
        raise ValueError(f"recommendation lists hold {ranked.shape[1]} items, fewer than k={k}")
    recall, ndcg = user_recall_ndcg(rank_of_target(ranked, recommendations["target"].to_numpy()), k)
    return ndcg if metric == "ndcg" else recall


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames in the same user order; refuses frames that do not rank the same users and targets."""
    for name, frame in (("a", a), ("b", b)):
        repeated = frame["user_id"][frame["user_id"].duplicated()]
        if len(repeated):
            raise ValueError(f"recommendations {name}: user {repeated.iloc[0]} appears twice")
    only_a = set(a["user_id"]) - set(b["user_id"])
    only_b = set(b["user_id"]) - set(a["user_id"])
    if only_a or only_b:
        raise ValueError(f"the two rankings cover different users: {len(only_a)} only in a "
                         f"(e.g. {sorted(only_a)[:3]}), {len(only_b)} only in b (e.g. {sorted(only_b)[:3]})")
    a = a.sort_values("user_id", kind="stable").reset_index(drop=True)
    b = b.sort_values("user_id", kind="stable").reset_index(drop=True)
    differ = a["target"].to_numpy() != b["target"].to_numpy()
    if differ.any():
        user = a["user_id"][differ].iloc[0]
        raise ValueError(f"the two rankings hold different targets for {int(differ.sum())} users, e.g. user {user}: "
                         "they were not made from the same split")
    return a, b


def paired_comparison(a: pd.DataFrame, b: pd.DataFrame, k: int = 10, metric: str = "ndcg",
                      n_boot: int = 10_000, seed: int = 0) -> dict:
    """Model a against model b on the same users: means, relative gain, paired t-test, bootstrap 95% CI."""
    from scipy import stats

    a, b = _paired(a, b)
    ga, gb = per_user_gain(a, k, metric), per_user_gain(b, k, metric)
    if not gb.any():
        raise ValueError(f"the reference ranking scores {metric}@{k} = 0 for every user: no relative gain")
    n = len(ga)
    diff = ga - gb
    # Identical per-user scores leave the t statistic undefined (0/0): no evidence of a difference.
    t, p = stats.ttest_rel(ga, gb) if diff.any() else (0.0, 1.0)
    rng = np.random.default_rng(seed)
    ratios = np.empty(n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, n_boot, 200):
            idx = rng.integers(0, n, size=(min(200, n_boot - start), n))
            ratios[start:start + len(idx)] = ga[idx].mean(axis=1) / gb[idx].mean(axis=1) - 1.0
    # A resample can miss every user b found only on tiny inputs; such a ratio is undefined and skipped.
    low, high = np.quantile(ratios[np.isfinite(ratios)], [0.025, 0.975])
    return {
        "metric": f"{metric}@{k}", "users": n, "mean_a": float(ga.mean()), "mean_b": float(gb.mean()),
        "relative_gain": float(ga.mean() / gb.mean() - 1.0), "bootstrap_95ci": [float(low), float(high)],
        "n_boot": n_boot, "t": float(t), "p_value": float(p),
        "users_a_better": int((diff > 0).sum()), "users_b_better": int((diff < 0).sum()),
        "users_equal": int((diff == 0).sum()),
    }


def load_recommendations(ref: str, split: str, root: Path = STUDY_OUTPUTS) -> pd.DataFrame:
    """A recommendation frame from a parquet path, or from a study run's name (``<root>/<run>/<split>_...``)."""
    path = Path(ref) if ref.endswith(".parquet") else root / ref / f"{split}_recommendations.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no recommendations (run the study run, or pass a .parquet path)")
    frame = pd.read_parquet(path)
    missing = {"user_id", "target", "items"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return frame


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="study run name or recommendations .parquet (the model tested for a lead)")
    parser.add_argument("b", help="study run name or recommendations .parquet (the reference)")
    parser.add_argument("--split", default="test", choices=["valid", "test"])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--metric", default="ndcg", choices=["ndcg", "recall"])
    parser.add_argument("--n-boot", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=STUDY_OUTPUTS)
    args = parser.parse_args(argv)
    result = paired_comparison(load_recommendations(args.a, args.split, args.root),
                               load_recommendations(args.b, args.split, args.root),
                               k=args.k, metric=args.metric, n_boot=args.n_boot, seed=args.seed)
    result = {"a": args.a, "b": args.b, "split": args.split, **result}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
