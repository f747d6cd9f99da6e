"""Training loop of UNGER Stage I (fusion of collaborative and semantic knowledge).

``train_fusion`` trains ``unger.models.fusion.FusionModel`` on every prefix of the training sequences,
evaluates full-corpus Recall/NDCG on the validation users, keeps the best state by NDCG@10, stops early,
and checkpoints so that a killed run resumes to the same final weights. Kedro-free; the device and an
optional ``log_metric(name, value, step)`` callback come in as arguments.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from unger.data.sequences import build_training_samples, left_pad
from unger.evaluation.metrics import evaluate_rankings
from unger.models.fusion import (
    FusionConfig,
    FusionModel,
    adapted_semantic_matrix,
    collaborative_matrix,
    integrated_embeddings,
)
from unger.stage_one import stage_one_identity
from unger.training.checkpoint import cpu_state, refuse_training_without_optimizer, save_atomic
from unger.utils import seed_everything

log = logging.getLogger(__name__)
LogMetric = Callable[[str, float, int], None]
TOP_K = 20
# Config fields that may differ between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = ("max_steps",)


@dataclass
class FusionResult:
    """Outcome of Stage I. Item matrices are (N + 1, dim) float32 with row 0 zero.

    ``collaborative`` (E_C) is None for ``semantic_only``; ``adapted_semantic`` (E_T) is None unless the
    configuration aligns (``unger`` with ``use_cka``). ``state_dict`` is the best model on CPU.
    """

    state_dict: dict[str, torch.Tensor]
    collaborative: np.ndarray | None
    adapted_semantic: np.ndarray | None
    integrated: np.ndarray
    best_step: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def evaluate_fusion(
    model: FusionModel, histories: torch.Tensor, targets: np.ndarray, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Recall/NDCG@5/10/20 of the full-corpus ranking for every validation user.

    Nothing is excluded from the ranking except the padding id 0 (history items stay rankable:
    Amazon users do re-buy, and later stages rank the same way).
    """
    model.eval()
    ranked = []
    for i in range(0, len(histories), batch_size):
        scores = model.din.score_all(histories[i : i + batch_size].to(device))
        ranked.append(scores.topk(TOP_K, dim=1).indices.cpu())
    model.train()
    return evaluate_rankings(torch.cat(ranked).numpy(), targets, ks=(5, 10, 20))


def _batch_indices(num_samples: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Sample indices of training step ``step`` (0-based): shuffled epochs, each permutation drawn from
    seed + epoch, so the data order depends only on (seed, step) and resuming replays it exactly."""
    batch_size = min(batch_size, num_samples)
    per_epoch = num_samples // batch_size  # drop the ragged tail of each epoch: constant batch shapes
    epoch, pos = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_samples, generator=generator)[pos * batch_size : (pos + 1) * batch_size]


def _align_items(num_items: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Distinct item ids drawn uniformly from 1..N for step ``step``, reproducible from (seed, step)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randperm(num_items, generator=generator)[: min(batch_size, num_items)] + 1


def evaluate_stage_one(state: dict, config: FusionConfig, semantic: np.ndarray, splits: dict[str, pd.DataFrame],
                       device: torch.device, batch_size: int = 512) -> dict[str, dict[str, float]]:
    """Stage I's DIN as a recommender on its own: Recall/NDCG@5/10/20 over all items per split.

    What the unicodes and Stage II can at best keep of what Stage I learned; empty for a variant
    without a DIN (``semantic_only``). A configuration that aligns also gets ``alignment``: how close
    CKA has pulled each E_C row to its own E_T row over the whole catalog (``alignment_diagnostics``).
    """
    from unger.analysis.alignment import alignment_diagnostics

    if not config.trains:
        return {}
    model = FusionModel(semantic, config).to(device)
    model.load_state_dict(state)
    out = {}
    for split, samples in splits.items():
        histories = torch.from_numpy(left_pad(samples["history"].tolist(), config.max_history))
        metrics = evaluate_fusion(model, histories, samples["target"].to_numpy(), device, batch_size)
        out[split] = {**metrics, "users": len(samples)}
    if config.aligns:
        out["alignment"] = alignment_diagnostics(collaborative_matrix(model), adapted_semantic_matrix(model),
                                                 config.similarity)
    return out


def keeps_training(step: int, bad_evals: int, max_steps: int, patience: int) -> bool:
    """Stage I's stop rule: go on while under ``max_steps`` and under ``patience`` evaluations without
    improvement (also how a saved checkpoint tells whether its run had finished)."""
    return step < max_steps and bad_evals < patience


def _check_resumable(path: Path, ckpt: dict, config: FusionConfig) -> None:
    """Refuse a checkpoint of another configuration, or one trained past this run's ``max_steps``
    (its best state may come from steps this run would never take)."""
    current = config.training_identity()
    saved = stage_one_identity(ckpt["config"])
    changed = [k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]]
    if changed:
        raise ValueError(f"checkpoint {path} was written with a different config ({', '.join(changed)}); refusing to resume")
    if ckpt["step"] > config.max_steps:
        raise ValueError(f"checkpoint {path} has trained {ckpt['step']} steps, past this run's max_steps="
                         f"{config.max_steps}; remove it or set runtime.checkpoint_dir to another folder")


def train_fusion(
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    semantic: np.ndarray,
    config: FusionConfig,
    device: torch.device,
    checkpoint_path: Path | None = None,
    log_metric: LogMetric | None = None,
    rank: int = 0,
) -> FusionResult:
    """Train Stage I per ``config.variant`` and return the best model's item embeddings.

    Each step takes one batch of (history, next item) samples and one batch of ``align_batch_size``
    distinct item ids for the alignment loss. Every ``eval_every`` steps (and at the last step) all
    validation users are ranked over the full corpus; the best state by NDCG@10 is kept and training
    stops after ``patience`` evaluations without improvement. Only rank 0 logs and writes checkpoints.
    ``semantic_only`` trains nothing: its integrated embeddings are the semantic matrix.
    """
    semantic = np.asarray(semantic, dtype=np.float32)
    if semantic.ndim != 2 or semantic.shape[0] < 2:
        raise ValueError(f"semantic must be (num_items + 1, dim), got {semantic.shape}")
    if not config.trains:
        return FusionResult({}, None, None, integrated_embeddings(None, semantic, config), 0, {}, [])

    is_main = rank == 0
    track = log_metric if (log_metric is not None and is_main) else None
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    num_items = semantic.shape[0] - 1

    histories, targets = build_training_samples(train_sequences, config.max_history)
    if len(targets) == 0:
        raise ValueError("training sequences hold no (history, next item) pair")
    if targets.max() > num_items:
        raise ValueError(f"item id {targets.max()} exceeds the {num_items} rows of the semantic matrix")
    histories_t, targets_t = torch.from_numpy(histories), torch.from_numpy(targets)
    valid_histories = torch.from_numpy(left_pad(valid_samples["history"].tolist(), config.max_history))
    valid_targets = valid_samples["target"].to_numpy(dtype=np.int64)

    seed_everything(config.seed)
    model = FusionModel(semantic, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    step, best_step, bad_evals = 0, 0, 0
    best_state: dict[str, torch.Tensor] = cpu_state(model)
    best_metrics: dict[str, float] = {}
    history: list[dict[str, float]] = []
    if checkpoint_path is not None and checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        _check_resumable(checkpoint_path, ckpt, config)
        step, best_step, bad_evals = ckpt["step"], ckpt["best_step"], ckpt["bad_evals"]
        trains = keeps_training(step, bad_evals, config.max_steps, config.patience)
        refuse_training_without_optimizer(checkpoint_path, ckpt, trains)
        model.load_state_dict(ckpt["model"])
        if ckpt["optimizer"] is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
        best_state, best_metrics, history = ckpt["best_state"], ckpt["best_metrics"], ckpt["history"]
        log.info("Stage I resumed at step %d from %s", step, checkpoint_path)

    model.train()
    window: dict[str, list[float]] = {"loss": [], "seq_loss": [], "align_loss": []}
    started = time.perf_counter()
    while keeps_training(step, bad_evals, config.max_steps, config.patience):
        idx = _batch_indices(len(targets_t), config.batch_size, config.seed, step)
        align = _align_items(num_items, config.align_batch_size, config.seed, step).to(device)
        losses = model(histories_t[idx].to(device), targets_t[idx].to(device), align)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        step += 1
        for name, value in losses.items():
            window[name].append(float(value.detach()))

        if step % config.eval_every and step != config.max_steps:
            continue
        train_seconds = time.perf_counter() - started
        metrics = evaluate_fusion(model, valid_histories, valid_targets, device, config.batch_size)
        record = {"step": float(step), **{k: float(np.mean(v)) for k, v in window.items()}}
        record.update({f"val_{k}": v for k, v in metrics.items()})
        record["steps_per_s"] = len(window["loss"]) / max(train_seconds, 1e-9)
        record["eval_seconds"] = time.perf_counter() - started - train_seconds
        history.append(record)
        window = {k: [] for k in window}
        if metrics["ndcg@10"] > best_metrics.get("ndcg@10", -1.0):
            best_state, best_metrics, best_step, bad_evals = cpu_state(model), metrics, step, 0
        else:
            bad_evals += 1
        if track is not None:
            for name, value in record.items():
                if name != "step":
                    track(f"fusion/{name}", value, step)
        if checkpoint_path is not None and is_main:
            save_atomic(
                {
                    "model": cpu_state(model),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    # The data order is a pure function of (seed, step), so these two restore the sampler.
                    "sampler": {"seed": config.seed, "step": step},
                    "best_state": best_state,
                    "best_step": best_step,
                    "best_metrics": best_metrics,
                    "bad_evals": bad_evals,
                    "history": history,
                    "config": asdict(config),
                },
                checkpoint_path,
            )
            log.info("Stage I checkpoint at step %d written to %s", step, checkpoint_path)
        started = time.perf_counter()

    model.load_state_dict(best_state)
    model.eval()
    return FusionResult(
        state_dict=best_state,
        collaborative=collaborative_matrix(model),
        adapted_semantic=adapted_semantic_matrix(model) if config.aligns else None,
        integrated=integrated_embeddings(model, semantic, config),
        best_step=best_step,
        best_metrics=best_metrics,
        history=history,
    )
