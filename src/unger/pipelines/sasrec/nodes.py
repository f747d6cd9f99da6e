"""Nodes of the SASRec-CE baseline (the model and loop live in unger.models / unger.training)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from unger import tracking
from unger.params import EvaluationParams, RuntimeParams, parse_sasrec

log = logging.getLogger(__name__)

# Settings that do not change the weight trajectory stay out of the checkpoint name.
RESUMABLE_FIELDS = ("max_steps", "eval_every", "patience", "eval_batch_size", "log_every")


def train_sasrec_baseline(
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    items: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train SASRec with full-softmax CE over all items; validation NDCG@10 picks the checkpoint."""
    from unger.training.sasrec import train_sasrec
    from unger.utils import checkpoint_lock, fingerprint, resolve_device

    rt = RuntimeParams(**runtime)
    model_config, train_config = parse_sasrec(params)
    num_items = int(items["item_id"].max())
    trajectory = {k: v for k, v in train_config.__dict__.items() if k not in RESUMABLE_FIELDS}
    key = fingerprint(model_config.to_dict(), trajectory, num_items, train_sequences, valid_samples)
    checkpoint = Path(rt.checkpoint_dir) / f"sasrec-{key}.pt"
    prefix = f"{rt.run_label}." if rt.run_label else ""
    start = time.perf_counter()
    with checkpoint_lock(checkpoint):
        result = train_sasrec(model_config, train_config, train_sequences, valid_samples, num_items,
                              resolve_device(rt.device), checkpoint_path=checkpoint,
                              log_metric=tracking.metric_logger(prefix), checkpoint_every_s=rt.checkpoint_every_s)
    seconds = time.perf_counter() - start
    tracking.log_metrics(result.best_valid_metrics, prefix=f"{prefix}sasrec.best_valid.")
    log.info("SASRec-CE: best step %d, valid %s (%.0f s)", result.best_step, result.best_valid_metrics, seconds)
    model = {"model": result.best_state, "model_config": model_config.to_dict(), "num_items": num_items,
             "best_step": result.best_step}
    report = result.report(seconds, checkpoint, model_config.to_dict(), dict(train_config.__dict__))
    return model, report


def evaluate_sasrec(
    sasrec_model: dict[str, Any],
    valid_samples: pd.DataFrame,
    test_samples: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Recall/NDCG@k over all items for every validation and test user, in the evaluation pipeline's format,
    and the ranked lists of both splits (for per-user comparisons, ``unger.evaluation.significance``)."""
    import numpy as np

    from unger.data.sequences import left_pad
    from unger.evaluation.metrics import evaluate_splits, mlflow_metrics
    from unger.models.sasrec import SASRec, SASRecConfig
    from unger.training.sasrec import rank_all_items
    from unger.utils import resolve_device

    p = EvaluationParams(**params)
    device = resolve_device(RuntimeParams(**runtime).device)
    config = SASRecConfig(**sasrec_model["model_config"])
    model = SASRec(config, sasrec_model["num_items"])
    model.load_state_dict(sasrec_model["model"])
    model.to(device).eval()
    top = max(p.top_k, max(p.ks))

    def rank(histories: list) -> tuple[np.ndarray, dict[str, Any]]:
        start = time.perf_counter()
        ranked = rank_all_items(model, left_pad(histories, config.max_history), top, device=device)
        seconds = time.perf_counter() - start
        return ranked, {"ms_per_user": 1000 * seconds / len(histories), "seconds": seconds, "device": str(device),
                        "beam_size": None, "top_k": p.top_k}

    out, recommendations = evaluate_splits(rank, {"valid": valid_samples, "test": test_samples}, p.ks, "SASRec-CE")
    return out, mlflow_metrics(out), recommendations["valid"], recommendations["test"]
