"""Nodes of the fusion (Stage I) pipeline."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from unger import tracking
from unger.params import RuntimeParams, parse_dataclass

if TYPE_CHECKING:  # torch stays out of the pipeline's import
    from unger.models.fusion import FusionConfig

log = logging.getLogger(__name__)

EMPTY = np.zeros((0, 0), dtype=np.float32)


def stage_one_checkpoint_key(config: FusionConfig, semantic_embeddings: np.ndarray, train_sequences: pd.DataFrame,
                             valid_samples: pd.DataFrame) -> str:
    """Stage I's checkpoint name: everything that decides its weights. ``max_steps`` is left out so a
    run can be extended (or cut short) and still resume; configurations that train the same DIN
    (``FusionConfig.training_identity``) share it; and a DIN-alone one reads E_S's row count only (its
    item table's size), not its bytes, so it is found again after E_S is recomputed elsewhere."""
    from unger.stage_one import checkpoint_identity
    from unger.utils import fingerprint

    semantic = semantic_embeddings if config.aligns else int(np.asarray(semantic_embeddings).shape[0])
    return fingerprint(checkpoint_identity(dataclasses.asdict(config)), semantic, train_sequences, valid_samples)


def train_stage_one(
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    semantic_embeddings: np.ndarray,
    params: dict[str, Any],
    variant: dict[str, Any],
    runtime: dict[str, Any],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Train DIN jointly with the modality adaptation layer and the alignment loss (or a variant).

    Args:
        train_sequences, valid_samples: the leave-one-out split (validation picks the checkpoint).
        semantic_embeddings: ``(N + 1, d_s)`` from the semantic pipeline.
        params: ``params:fusion`` (``FusionConfig``: variant, alpha, tau, dims, lr, steps, seed, ...).
        variant: overrides of ``params`` for a namespaced copy of this pipeline
            (``params:fusion_variants.<name>``; ``label`` names its metrics and checkpoint).
        runtime: ``params:runtime`` (device, checkpoint folder).

    Returns:
        The model checkpoint, E_C, E_T (empty ``(0, 0)`` where the variant has none), the integrated
        embeddings, and a report with the best validation metrics.
    """
    from unger.models.fusion import FusionConfig
    from unger.training.fusion import train_fusion
    from unger.utils import checkpoint_lock, resolve_device

    overrides = dict(variant)
    label = str(overrides.pop("label", "main"))
    config = parse_dataclass(FusionConfig, {**params, **overrides}, "fusion")
    rt = RuntimeParams(**runtime)
    key = stage_one_checkpoint_key(config, semantic_embeddings, train_sequences, valid_samples)
    # Named by the hash alone: two runs with the same config and inputs (the study's unger run and the
    # main run at the same seed, say) are one computation and share one checkpoint.
    checkpoint = Path(rt.checkpoint_dir) / f"fusion-{key}.pt"
    prefix = "" if label == "main" else f"{label}."
    with checkpoint_lock(checkpoint):
        result = train_fusion(
            train_sequences,
            valid_samples,
            semantic_embeddings,
            config,
            resolve_device(rt.device),
            checkpoint_path=checkpoint,
            log_metric=tracking.metric_logger(prefix),
        )
    tracking.log_metrics(result.best_metrics, prefix=f"{prefix}fusion.best_valid.")
    log.info("Stage I (%s): best step %d, valid %s", config.variant, result.best_step, result.best_metrics)
    model = {"model": result.state_dict, "config": dataclasses.asdict(config), "best_step": result.best_step}
    report = {
        "label": label,
        "variant": config.variant,
        "config": dataclasses.asdict(config),
        "best_step": result.best_step,
        "best_valid_metrics": result.best_metrics,
        "history": result.history,
        "checkpoint": str(checkpoint),
    }

    def _or_empty(matrix: np.ndarray | None) -> np.ndarray:
        return EMPTY if matrix is None else matrix

    return model, _or_empty(result.collaborative), _or_empty(result.adapted_semantic), result.integrated, report


def evaluate_stage_one(
    fusion_model: dict[str, Any],
    semantic_embeddings: np.ndarray,
    valid_samples: pd.DataFrame,
    test_samples: pd.DataFrame,
    variant: dict[str, Any],
    runtime: dict[str, Any],
) -> dict[str, Any]:
    """Score Stage I's DIN alone over all items for every validation and test user (not in the paper):
    the ceiling of what the unified code and Stage II keep of the collaborative signal."""
    from unger.models.fusion import FusionConfig
    from unger.training.fusion import evaluate_stage_one as score
    from unger.utils import resolve_device

    config = FusionConfig(**fusion_model["config"])
    splits = {"valid": valid_samples, "test": test_samples}
    metrics = score(fusion_model["model"], config, semantic_embeddings, splits, resolve_device(RuntimeParams(**runtime).device))
    label = str(variant.get("label", "main"))
    prefix = "" if label == "main" else f"{label}."
    for split, values in metrics.items():
        tracking.log_metrics({k: v for k, v in values.items() if k not in ("users", "items")},
                             prefix=f"{prefix}fusion.{split}.")
    if metrics:
        log.info("Stage I (%s) alone, test: %s", config.variant, metrics["test"])
    if "alignment" in metrics:
        log.info("Stage I (%s) alignment of E_C to E_T over all items: %s", config.variant, metrics["alignment"])
    return {"variant": config.variant, "best_step": fusion_model.get("best_step"), **metrics}
