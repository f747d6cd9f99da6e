"""Nodes of the EAGER-style dual-code baseline (model, search and loop live outside Kedro)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unger import tracking
from unger.params import EvaluationParams, RuntimeParams, parse_generative
from unger.pipelines.generative.nodes import checkpoint_model_config, checkpoint_trajectory

log = logging.getLogger(__name__)


def train_dual_code_model(
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    semantic_item_codes: np.ndarray,
    collaborative_item_codes: np.ndarray,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the shared encoder and both decoders (sum of the two code losses, no distillation)."""
    from unger.training.dual_code import train_dual_code
    from unger.utils import checkpoint_lock, fingerprint, resolve_device

    rt = RuntimeParams(**runtime)
    model_config, train_config = parse_generative(params, semantic_item_codes)
    # One codebook size for both streams; the code lengths may differ (each stream keeps its own).
    K = int(max(semantic_item_codes[1:].max(), collaborative_item_codes[1:].max())) + 1
    model_config = dataclasses.replace(model_config, use_distillation=False, num_levels=None, codebook_size=K)
    key = fingerprint(checkpoint_model_config(model_config), checkpoint_trajectory(train_config), semantic_item_codes,
                      collaborative_item_codes, train_sequences, valid_samples)
    checkpoint = Path(rt.checkpoint_dir) / f"dual-code-{key}.pt"
    prefix = f"{rt.run_label}.dual_code." if rt.run_label else "dual_code."
    start = time.perf_counter()
    with checkpoint_lock(checkpoint):
        result = train_dual_code(model_config, train_config, semantic_item_codes, collaborative_item_codes,
                                 train_sequences, valid_samples, resolve_device(rt.device), checkpoint_path=checkpoint,
                                 log_metric=tracking.metric_logger(prefix), checkpoint_every_s=rt.checkpoint_every_s)
    seconds = time.perf_counter() - start
    log.info("dual code: best step %d, valid %s (%.0f s)", result.best_step, result.best_valid_metrics, seconds)
    model = {"model": result.best_state, "model_config": model_config.to_dict(), "best_step": result.best_step}
    report = result.report(seconds, checkpoint, model_config.to_dict(), dict(train_config.__dict__))
    return model, report


def evaluate_dual_code_model(
    dual_code_model: dict[str, Any],
    semantic_item_codes: np.ndarray,
    collaborative_item_codes: np.ndarray,
    valid_samples: pd.DataFrame,
    test_samples: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Both streams' beam searches merged by confidence; Recall/NDCG@k over all items, every user, and the
    ranked lists of both splits."""
    from unger.data.sequences import left_pad
    from unger.evaluation.metrics import evaluate_splits, mlflow_metrics
    from unger.inference.dual_code_search import dual_code_beam_search
    from unger.models.dual_code import DualCodeModel
    from unger.models.generative import GenerativeConfig
    from unger.utils import resolve_device

    p = EvaluationParams(**params)
    device = resolve_device(RuntimeParams(**runtime).device)
    config = GenerativeConfig(**dual_code_model["model_config"])
    model = DualCodeModel(config, semantic_item_codes, collaborative_item_codes)
    model.load_state_dict(dual_code_model["model"])
    model.to(device).eval()

    def rank(histories: list) -> tuple[np.ndarray, dict[str, Any]]:
        items, _, stats = dual_code_beam_search(model, left_pad(histories, config.max_history), p.beam_size, p.top_k,
                                                p.batch_size, device)
        return items, {**stats, "beam_size": p.beam_size, "top_k": p.top_k, "device": str(device)}

    out, recommendations = evaluate_splits(rank, {"valid": valid_samples, "test": test_samples}, p.ks, "dual code")
    return out, mlflow_metrics(out), recommendations["valid"], recommendations["test"]
