"""Training of the EAGER-style dual-code baseline with the Stage II loop (``train_generative``).

Same optimiser, warmup, batches, checkpointing and resume as UNGER Stage II; only the model
(``DualCodeModel``) and the validation ranking (``dual_code_beam_search``, both streams merged by
confidence) differ. Losses are logged as ``generative/loss``, ``generative/gen_loss_semantic`` and
``generative/gen_loss_collaborative``; validation metrics as ``generative/valid_*``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unger.evaluation.metrics import evaluate_rankings
from unger.inference.dual_code_search import dual_code_beam_search
from unger.models.dual_code import DualCodeModel
from unger.models.generative import GenerativeConfig
from unger.training.generative import LogMetric, TrainConfig, TrainResult, train_generative


def evaluate_dual_code(model: DualCodeModel, histories, targets, beam_size: int, batch_size: int, device) -> dict:
    """Recall/NDCG@{5,10,20} of the merged two-stream beam search, plus per-stream invalid-prefix rates
    and the overlap of the two streams' top-20 lists."""
    ranked, _, stats = dual_code_beam_search(model, histories, beam_size, 20, batch_size, device)
    metrics = evaluate_rankings(ranked, np.asarray(targets), ks=(5, 10, 20))
    metrics.update({k: v for k, v in stats.items() if k.startswith("invalid_") or k == "stream_overlap"})
    return metrics


def train_dual_code(
    model_config: GenerativeConfig,
    train_config: TrainConfig,
    semantic_codes,
    collaborative_codes,
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    device: torch.device,
    checkpoint_path: str | Path | None = None,
    log_metric: LogMetric | None = None,
    rank: int = 0,
    checkpoint_every_s: float = 0.0,
) -> TrainResult:
    """Train a ``DualCodeModel`` and keep the weights with the best validation ``select_metric``.

    ``model_config.use_distillation`` is ignored (the model never distils). Checkpoints and
    ``TrainResult`` states are plain state dicts of the DualCodeModel; see ``train_generative``.
    """
    return train_generative(
        model_config,
        train_config,
        semantic_codes,
        None,
        train_sequences,
        valid_samples,
        device,
        checkpoint_path,
        log_metric,
        rank,
        build_model=lambda: DualCodeModel(model_config, semantic_codes, collaborative_codes),
        evaluate=evaluate_dual_code,
        checkpoint_every_s=checkpoint_every_s,
    )


__all__ = ["evaluate_dual_code", "train_dual_code"]
