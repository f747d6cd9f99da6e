"""Nodes of the evaluation pipeline."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from unger.params import EvaluationParams, RuntimeParams

log = logging.getLogger(__name__)


def recommend(
    generative_model: dict[str, Any],
    item_codes: np.ndarray,
    integrated_embeddings: np.ndarray,
    samples: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Top-k items for every user in ``samples`` by beam search restricted to valid unicodes.

    Returns:
        ``user_id, target, items, scores`` (items best first) and beam-search statistics (time per
        user, how often an unconstrained beam would have produced an invalid code).
    """
    import torch

    from unger.evaluation.metrics import recommendation_frame
    from unger.inference.beam_search import rank_items
    from unger.models.generative import GenerativeConfig, UngerModel
    from unger.utils import resolve_device

    p = EvaluationParams(**params)
    device = resolve_device(RuntimeParams(**runtime).device)
    model = UngerModel(GenerativeConfig(**generative_model["model_config"]), item_codes, integrated_embeddings)
    model.load_state_dict(generative_model["model"])
    model.to(device).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        items, scores, stats = rank_items(model, samples, item_codes, p.beam_size, p.top_k, device, p.batch_size)
    seconds = time.perf_counter() - start
    stats = {**stats, "users": len(samples), "seconds": seconds, "ms_per_user": 1000 * seconds / len(samples),
             "beam_size": p.beam_size, "top_k": p.top_k, "device": str(device)}
    recs = recommendation_frame(samples, items, scores)
    log.info("ranked %d users in %.1f s (%.1f ms/user)", len(samples), seconds, stats["ms_per_user"])
    return recs, stats


def compute_metrics(
    valid_recommendations: pd.DataFrame,
    test_recommendations: pd.DataFrame,
    valid_beam_stats: dict[str, Any],
    test_beam_stats: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Recall@k and NDCG@k over every validation and test user (all items are candidates).

    Returns:
        The metrics by split (with user counts and beam statistics) and the same numbers in
        kedro-mlflow's metrics format.
    """
    from unger.evaluation.metrics import mlflow_metrics, report_metrics, split_report

    p = EvaluationParams(**params)
    out: dict[str, Any] = {}
    for split, recs, stats in [("valid", valid_recommendations, valid_beam_stats),
                               ("test", test_recommendations, test_beam_stats)]:
        out[split] = split_report(np.stack(recs["items"].to_numpy()), recs["target"].to_numpy(), p.ks, stats)
        log.info("%s: %s", split, {k: round(v, 4) for k, v in report_metrics(out[split]).items()})
    return out, mlflow_metrics(out)


def popularity_breakdown(
    valid_recommendations: pd.DataFrame,
    test_recommendations: pd.DataFrame,
    train_sequences: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, list[dict]]:
    """Recall/NDCG@k of each split by how often the target occurs in the training sequences
    (``unger.evaluation.popularity``): how a model does on rare and on frequent items."""
    from unger.evaluation.popularity import metrics_by_popularity, training_counts

    p = EvaluationParams(**params)
    counts = training_counts(train_sequences)
    out = {split: metrics_by_popularity(recs, counts, p.ks)
           for split, recs in (("valid", valid_recommendations), ("test", test_recommendations))}
    k = 10 if 10 in p.ks else p.ks[0]
    log.info("test ndcg@%d by training count: %s", k,
             {e["bucket"]: None if e[f"ndcg@{k}"] is None else round(e[f"ndcg@{k}"], 4) for e in out["test"]})
    return out


def _table(metrics: dict[str, float], ks) -> str:
    header = " | ".join(f"{m}@{k}" for m in ("recall", "ndcg") for k in ks)
    values = " | ".join(f"{metrics[f'{m}@{k}']:.4f}" for m in ("recall", "ndcg") for k in ks)
    return f"| {header} |\n|{'---|' * (2 * len(ks))}\n| {values} |"


def write_report(
    metrics: dict[str, Any],
    data_stats: dict[str, Any],
    semantic_info: dict[str, Any],
    fusion_report: dict[str, Any],
    quantization_stats: dict[str, Any],
    generative_report: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """A per-run markdown report: data, each stage's settings and selection, and the final metrics."""
    p = EvaluationParams(**params)
    lines = [
        "# UNGER run report",
        "",
        f"Data: {data_stats['users']} users, {data_stats['items']} items, {data_stats['interactions']} interactions.",
        f"Semantic encoder: {semantic_info.get('encoder')} ({semantic_info.get('dim')}-d, "
        f"{semantic_info.get('pooling')} pooling, checksum {str(semantic_info.get('checksum'))[:16]}).",
        f"Stage I: variant {fusion_report['variant']}, best step {fusion_report['best_step']}, "
        f"DIN validation {fusion_report['best_valid_metrics']}.",
        f"Unicodes: {quantization_stats['method']}, K={quantization_stats['K']}, "
        f"collisions before dedup {quantization_stats.get('collisions_before_dedup')}.",
        f"Stage II: best step {generative_report['best_step']} of {generative_report['final_step']}.",
        "",
    ]
    for split in ("valid", "test"):
        beam = metrics[split]["beam"]
        lines += [
            f"## {split} ({metrics[split]['users']} users, beam {beam['beam_size']}, "
            f"{beam['ms_per_user']:.1f} ms/user on {beam['device']})",
            "",
            _table(metrics[split], p.ks),
            "",
        ]
    return "\n".join(lines)
