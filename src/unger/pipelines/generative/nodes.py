"""Nodes of the generative (Stage II) pipeline."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unger import tracking
from unger.params import RuntimeParams, parse_generative, without_added_defaults

log = logging.getLogger(__name__)


def checkpoint_trajectory(train_config) -> dict[str, Any]:
    """The train settings that name a Stage II checkpoint: those that shape the weight trajectory.

    Left out: settings a run can change and still resume (``training.generative.RESUMABLE_FIELDS``)
    and settings added later at their old behaviour (``ADDED_SETTINGS``).
    """
    from unger.training.generative import trajectory_fields

    named = {k: getattr(train_config, k) for k in trajectory_fields(train_config)}
    return without_added_defaults("generative", named)


def checkpoint_model_config(model_config) -> dict[str, Any]:
    """The model settings that name a Stage II checkpoint: all of them, less those added later at their
    old behaviour (``ADDED_SETTINGS``), so checkpoints made before a setting existed keep their names."""
    return without_added_defaults("generative", model_config.to_dict())


def train_stage_two(
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    item_codes: np.ndarray,
    integrated_embeddings: np.ndarray,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the encoder-decoder to generate the next item's unicode (L_gen + beta * L_distillation).

    Args:
        train_sequences, valid_samples: the split; every prefix of a training sequence is a sample and
            validation NDCG picks the checkpoint.
        item_codes: ``(N + 1, L)`` unicodes; K and L of the model are read from them.
        integrated_embeddings: Stage I embeddings, the targets of the [c_dis] distillation.
        params: ``params:generative`` (model and optimisation settings, one flat group).
        runtime: ``params:runtime`` (device, checkpoint folder).

    Returns:
        The best checkpoint (state dict + configs) and a training report.
    """
    from unger.models.generative import resolve_config
    from unger.training.generative import train_generative
    from unger.utils import checkpoint_lock, fingerprint, resolve_device

    rt = RuntimeParams(**runtime)
    model_config, train_config = parse_generative(params, item_codes, integrated_embeddings)
    # Settings that do not change the weight trajectory stay out of the checkpoint name, so a run can be
    # extended (max_steps) or evaluated differently and still resume.
    key = fingerprint(checkpoint_model_config(model_config), checkpoint_trajectory(train_config), item_codes,
                      integrated_embeddings, train_sequences, valid_samples)
    checkpoint = Path(rt.checkpoint_dir) / f"generative-{key}.pt"
    built_with = resolve_config(model_config, item_codes, integrated_embeddings).to_dict()  # widths filled in
    start = time.perf_counter()
    with checkpoint_lock(checkpoint):
        result = train_generative(
            model_config,
            train_config,
            item_codes,
            integrated_embeddings,
            train_sequences,
            valid_samples,
            resolve_device(rt.device),
            checkpoint_path=checkpoint,
            log_metric=tracking.metric_logger(f"{rt.run_label}." if rt.run_label else ""),
            checkpoint_every_s=rt.checkpoint_every_s,
        )
    seconds = time.perf_counter() - start
    tracking.log_metrics(result.best_valid_metrics, prefix=f"{rt.run_label}.generative.best_valid." if rt.run_label else "generative.best_valid.")
    log.info("Stage II: best step %d, valid %s (%.0f s)", result.best_step, result.best_valid_metrics, seconds)
    model = {
        "model": result.best_state,
        "model_config": built_with,
        "train_config": dict(train_config.__dict__),
        "best_step": result.best_step,
    }
    report = result.report(seconds, checkpoint, built_with, dict(train_config.__dict__))
    return model, report
