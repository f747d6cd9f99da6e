"""Nodes of the data_processing pipeline: thin wrappers over ``unger.data``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unger.data.ingest import BadLine, check_bad_lines, parse_meta, parse_reviews
from unger.data.kcore import drop_duplicate_reviews, k_core, order_chronologically
from unger.data.split import assign_dense_ids, leave_one_out
from unger.params import DataProcessingParams

log = logging.getLogger(__name__)


def _find_raw_file(raw_dir: Path, name: str) -> Path | None:
    matches = sorted(raw_dir.rglob(name))
    return matches[0] if matches else None


def _report(bad: list[BadLine], rows: int) -> dict[str, Any]:
    return {"rows": rows, "bad_lines": len(bad), "bad_examples": [str(b) for b in bad[:20]]}


def ingest_reviews(raw_dir: Path, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Parse ``reviews_<category>_5.json.gz``, order chronologically and drop duplicate pairs.

    Args:
        raw_dir: the raw data folder (``amazon_raw``); the file is searched for below it.
        params: ``params:data_processing``.

    Returns:
        The reviews (``reviewer_id, asin, timestamp, line``) and an ingest report.
    """
    p = DataProcessingParams(**params)
    name = f"reviews_{p.category}_5.json.gz"
    path = _find_raw_file(raw_dir, name)
    if path is None:
        raise FileNotFoundError(f"no {name} under {raw_dir}: run `make data` or check data_processing.category")
    reviews, bad = parse_reviews(path)
    for b in bad[:20]:
        log.warning("skipped %s", b)
    check_bad_lines(bad, p.max_bad_lines)
    reviews, duplicates = drop_duplicate_reviews(order_chronologically(reviews))
    report = {"file": str(path), **_report(bad, len(reviews)), "duplicate_pairs_dropped": duplicates}
    log.info("read %d reviews from %s (%d bad lines, %d duplicates)", len(reviews), path, len(bad), duplicates)
    return reviews, report


def ingest_item_meta(
    raw_dir: Path, reviews: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Parse ``meta_<category>.json.gz`` for the reviewed items; an empty table where there is none.

    Args:
        raw_dir: the raw data folder.
        reviews: output of ``ingest_reviews`` (only its items are kept).
        params: ``params:data_processing``; ``require_meta`` makes a missing file an error.
    """
    p = DataProcessingParams(**params)
    name = f"meta_{p.category}.json.gz"
    path = _find_raw_file(raw_dir, name)
    if path is None:
        message = f"no {name} under {raw_dir}: items of {p.category} will have no text"
        if p.require_meta:
            raise FileNotFoundError(message + " (set data_processing.require_meta: false to go on without it)")
        log.warning(message)
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ["asin", "title", "brand", "categories"]})
        return empty, {"file": None, **_report([], 0), "duplicate_items_dropped": 0}
    meta, bad = parse_meta(path, keep_asins=set(reviews["asin"].unique()))
    for b in bad[:20]:
        log.warning("skipped %s", b)
    check_bad_lines(bad, p.max_bad_lines)
    deduped = meta.drop_duplicates("asin", keep="first").reset_index(drop=True)
    report = {"file": str(path), **_report(bad, len(deduped)), "duplicate_items_dropped": len(meta) - len(deduped)}
    return deduped, report


def filter_k_core(reviews: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Iterative k-core filter, then dense 1-based ids (0 is padding).

    Returns:
        ``user_id, item_id, timestamp, reviewer_id, asin`` in per-user chronological order.
    """
    p = DataProcessingParams(**params)
    core = assign_dense_ids(k_core(reviews, p.k_core))
    core = core.sort_values(["user_id", "timestamp", "line"], kind="stable").reset_index(drop=True)
    return core[["user_id", "item_id", "timestamp", "reviewer_id", "asin"]]


def build_items(interactions: pd.DataFrame, item_meta: pd.DataFrame) -> pd.DataFrame:
    """One row per dense item id with its text fields; ``has_text`` marks items with a title."""
    ids = interactions[["item_id", "asin"]].drop_duplicates().sort_values("item_id")
    items = ids.merge(item_meta, on="asin", how="left").reset_index(drop=True)
    items["categories"] = items["categories"].map(lambda c: list(c) if isinstance(c, (list, np.ndarray)) else [])
    items["has_text"] = items["title"].notna()
    return items


def split_leave_one_out(
    interactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leave-one-out split: last item test, second-to-last validation, the rest training."""
    p = DataProcessingParams(**params)
    split = leave_one_out(interactions, p.max_history)
    return split["train"], split["valid"], split["test"]


def compute_data_stats(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    reviews_report: dict[str, Any],
    meta_report: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Dataset statistics for the report, and the numeric ones for MLflow.

    Returns:
        The full stats (counts, sequence-length distribution, ingest reports) and a flat dict of
        numbers in kedro-mlflow's metrics format.
    """
    lengths = interactions.groupby("user_id").size()
    n_users, n_items, n_inter = int(lengths.size), int(len(items)), int(len(interactions))
    quantiles = lengths.quantile([0.25, 0.5, 0.75, 0.9, 0.99]).to_dict()
    stats = {
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "density": n_inter / (n_users * n_items),
        "sequence_length": {
            "mean": float(lengths.mean()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
            **{f"p{int(q * 100)}": float(v) for q, v in quantiles.items()},
            "users_longer_than_20": int((lengths > 20).sum()),
        },
        "items_without_text": int((~items["has_text"]).sum()),
        "items_without_brand": int(items["brand"].isna().sum()),
        "ingest": {"reviews": reviews_report, "meta": meta_report},
    }
    numbers = {
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "items_without_text": stats["items_without_text"],
        "bad_lines_reviews": reviews_report["bad_lines"],
        "bad_lines_meta": meta_report["bad_lines"],
        "duplicate_pairs_dropped": reviews_report["duplicate_pairs_dropped"],
    }
    metrics = {k: {"value": float(v), "step": 0} for k, v in numbers.items()}
    log.info("data: %d users, %d items, %d interactions", n_users, n_items, n_inter)
    return stats, metrics
