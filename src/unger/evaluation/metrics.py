"""Recall@K and NDCG@K for next-item prediction with one relevant item per user."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def rank_of_target(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based position of each user's target in its ranked list, or -1 where it is absent.

    Args:
        ranked: (users, k) item ids, best first.
        targets: (users,) the held-out item ids.
    """
    ranked = np.asarray(ranked)
    targets = np.asarray(targets).reshape(-1, 1)
    if ranked.shape[0] != targets.shape[0]:
        raise ValueError(f"{ranked.shape[0]} ranked lists for {targets.shape[0]} targets")
    hits = ranked == targets
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def user_recall_ndcg(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's Recall@k (0/1) and NDCG@k from target ranks (-1 = not retrieved).

    With a single relevant item, NDCG@k = 1 / log2(rank + 2) when rank < k, else 0.
    """
    ranks = np.asarray(ranks)
    hit = (ranks >= 0) & (ranks < k)
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(np.where(hit, ranks, 0) + 2.0), 0.0)


def recall_ndcg(ranks: np.ndarray, ks: Iterable[int] = (5, 10, 20)) -> dict[str, float]:
    """Mean Recall@k and NDCG@k over users from target ranks (-1 = not retrieved)."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no users to evaluate")
    out: dict[str, float] = {}
    for k in ks:
        recall, ndcg = user_recall_ndcg(ranks, k)
        out[f"recall@{k}"] = float(recall.mean())
        out[f"ndcg@{k}"] = float(ndcg.mean())
    return out


def evaluate_rankings(ranked: np.ndarray, targets: np.ndarray, ks: Iterable[int] = (5, 10, 20)) -> dict[str, float]:
    """Recall/NDCG@k of ranked lists against targets."""
    ks = tuple(ks)
    if np.asarray(ranked).shape[1] < max(ks):
        raise ValueError(f"ranked lists hold {np.asarray(ranked).shape[1]} items, fewer than k={max(ks)}")
    return recall_ndcg(rank_of_target(ranked, targets), ks)


# Entries of a split report that are not metrics.
_REPORT_EXTRAS = ("users", "beam")


def split_report(ranked: np.ndarray, targets: np.ndarray, ks: Iterable[int], timing: dict) -> dict:
    """One split's entry in the evaluation pipelines' metrics: ``{**metrics, "users": n, "beam": timing}``.

    ``metrics`` are Recall/NDCG@k of ``ranked`` against ``targets`` (``evaluate_rankings``), ``n`` the
    number of users, and ``timing`` the ranking's timing and statistics, stored as given.
    """
    metrics = evaluate_rankings(ranked, targets, ks)
    return {**metrics, "users": len(targets), "beam": timing}


def report_metrics(entry: dict) -> dict[str, float]:
    """The metrics of a ``split_report`` entry (without ``users`` and ``beam``)."""
    return {k: v for k, v in entry.items() if k not in _REPORT_EXTRAS}


def mlflow_metrics(report: dict[str, dict]) -> dict[str, dict]:
    """``{split: split_report(...)}`` in kedro-mlflow's metrics format: ``{"<split>.<metric>": {"value": v,
    "step": 0}}``, with '@' written '_at_' (mlflow rejects '@' in metric names)."""
    return {
        f"{split}.{k.replace('@', '_at_')}": {"value": v, "step": 0}
        for split, entry in report.items()
        for k, v in report_metrics(entry).items()
    }


def recommendation_frame(samples: pd.DataFrame, items: np.ndarray,
                         scores: np.ndarray | None = None) -> pd.DataFrame:
    """The ranked lists of one split, one row per user: ``user_id``, ``target``, ``items`` (best first) and,
    where the ranking has them, ``scores``. Every model writes this format; per-user comparisons read it."""
    frame = pd.DataFrame({"user_id": samples["user_id"].to_numpy(),
                          "target": samples["target"].to_numpy(dtype=np.int64),
                          "items": list(np.asarray(items, dtype=np.int64))})
    if scores is not None:
        frame["scores"] = list(np.asarray(scores, dtype=np.float32))
    return frame


def evaluate_splits(rank: Callable[[list], tuple[np.ndarray, dict]], splits: dict, ks: Iterable[int],
                    name: str) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Rank every user of each split and score the rankings: ``{split: split_report(...)}``, and each
    split's recommendation frame (``user_id``, ``target``, ``items``) for per-user comparisons.

    ``splits`` maps a split's name to its samples (``user_id``, ``history``, ``target`` columns);
    ``rank(histories)`` returns the ranked item ids ``(users, top_k)`` and the ranking's timing and statistics.
    """
    out: dict[str, dict] = {}
    frames: dict[str, pd.DataFrame] = {}
    for split, samples in splits.items():
        if len(samples) == 0:
            raise ValueError(f"the {split} split has no users to evaluate")
        ranked, timing = rank(samples["history"].tolist())
        frames[split] = recommendation_frame(samples, ranked)
        out[split] = split_report(ranked, frames[split]["target"].to_numpy(), ks, timing)
        rounded = {k: round(v, 4) for k, v in report_metrics(out[split]).items()}
        log.info("%s %s: %s (%.2f ms/user)", name, split, rounded, timing.get("ms_per_user", float("nan")))
    return out, frames
