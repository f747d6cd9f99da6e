"""SASRec-CE training loop: full-softmax cross-entropy at every position, full-corpus validation,
early stopping, resumable checkpoints.

Training data: every training sequence is cut, from its end backwards, into windows of
``max_history + 1`` items that overlap by one item (``build_windows``); a window's input is its items
but the last and its targets its items but the first, left-padded with 0. So every next-item
transition of the training sequences is a target exactly once per epoch, and the most recent items
always sit in the final window with the longest context (``windows="last"`` keeps only that final
window, as the original SASRec does).

Reproducibility (as ``unger.training.generative``): the batch of update ``s`` is a fixed function of
(seed, s) -- epoch ``e`` uses the permutation drawn from a generator seeded with (seed, e); model init
runs under ``seed``; dropout uses the torch RNG, whose state is checkpointed. A run killed after a
checkpoint and resumed reaches bitwise the same weights as an uninterrupted run on CPU. The caller's
global RNG state is left untouched (``torch.random.fork_rng``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from unger.data.sequences import left_pad
from unger.evaluation.metrics import evaluate_rankings
from unger.models.sasrec import SASRec, SASRecConfig
from unger.training.checkpoint import (BatchOrder, CheckpointClock, Selection, TrainResult, load_checkpoint, resume,
                                       rng_devices, save_checkpoint)

LogMetric = Callable[[str, float, int], None]

# Train-config fields that shape the optimisation trajectory or the kept weights; a resumed run must
# agree on them (max_steps, eval_every, patience, logging may change).
_TRAJECTORY_FIELDS = ("lr", "batch_size", "weight_decay", "seed", "windows", "select_metric")


@dataclass(frozen=True)
class SASRecTrainConfig:
    """SASRec-CE optimisation settings (Adam, constant lr, as Klenitskiy & Vasilev 2023)."""

    lr: float = 1e-3
    batch_size: int = 128  # windows per update
    max_steps: int = 100_000
    eval_every: int = 1000  # also evaluated (and checkpointed) at max_steps
    patience: int = 10  # evaluations without improvement before stopping; 0 = never stop early
    seed: int = 2024
    select_metric: str = "ndcg@10"  # validation metric that picks the best weights
    weight_decay: float = 0.0
    windows: str = "all"  # "all": every window of each sequence; "last": only its most recent one
    eval_batch_size: int = 512
    log_every: int = 100  # train losses are averaged over this many updates before logging

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "eval_every", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got lr={self.lr}, weight_decay={self.weight_decay}")
        if self.select_metric not in {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}:
            raise ValueError(f"select_metric must be recall@k or ndcg@k for k in 5, 10, 20, got {self.select_metric!r}")
        if self.windows not in ("all", "last"):
            raise ValueError(f"windows must be 'all' or 'last', got {self.windows!r}")


SASRecResult = TrainResult  # best/final CPU state dicts, best step and metrics, history, early stop


def build_windows(train_sequences: pd.DataFrame, max_history: int, windows: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Training windows of the ``items`` column: inputs and targets, both (S, max_history) int64.

    Each sequence of n items is cut from its end: window k spans items[max(0, n - k*H - H - 1) : n - k*H]
    (H = max_history), for k = 0, 1, ... while the window holds at least two items; consecutive windows
    share one item, so each transition items[t-1] -> items[t] is a target in exactly one window.
    ``windows="last"`` keeps k = 0 only. Inputs are window[:-1], targets window[1:], left-padded with 0
    (target 0 = no loss). Rows are ordered by sequence, then oldest window first.
    """
    if windows not in ("all", "last"):
        raise ValueError(f"windows must be 'all' or 'last', got {windows!r}")
    spans = []  # (sequence, start, end)
    seqs = [np.asarray(s, dtype=np.int64) for s in train_sequences["items"].tolist()]
    for i, s in enumerate(seqs):
        mine = []
        end = len(s)
        while end >= 2:
            mine.append((i, max(0, end - max_history - 1), end))
            if windows == "last":
                break
            end -= max_history
        spans.extend(reversed(mine))
    inputs = np.zeros((len(spans), max_history), dtype=np.int64)
    targets = np.zeros((len(spans), max_history), dtype=np.int64)
    for row, (i, start, end) in enumerate(spans):
        w = seqs[i][start:end]
        inputs[row, max_history - len(w) + 1 :] = w[:-1]
        targets[row, max_history - len(w) + 1 :] = w[1:]
    return inputs, targets


@torch.no_grad()
def rank_all_items(model: SASRec, histories: np.ndarray, top_k: int = 20, batch_size: int = 512, device=None) -> np.ndarray:
    """Top-``top_k`` item ids (U, top_k), best first, from the last position of left-padded histories (U, H).

    Every item 1..N is ranked; only the padding id 0 is excluded. Items already in the history are NOT
    excluded: the project's generative models may recommend history items too (and Amazon users do
    re-buy), so the comparison stays fair. Histories wider than ``max_history`` keep their last columns.
    The model is put in eval mode for the call and its previous mode is restored.
    """
    if not 1 <= top_k <= model.num_items:
        raise ValueError(f"top_k must be in [1, {model.num_items}], got {top_k}")
    histories = np.asarray(histories, dtype=np.int64)
    if histories.ndim != 2:
        raise ValueError(f"histories must be (users, H), got shape {histories.shape}")
    histories = histories[:, -model.config.max_history :]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(histories), batch_size):
            batch = torch.as_tensor(histories[i : i + batch_size], device=device)
            scores = model.logits(model(batch)[:, -1])
            out.append(scores.topk(top_k, dim=1).indices.cpu())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, top_k), dtype=np.int64)
    return torch.cat(out).numpy().astype(np.int64)


def _metric_name(name: str) -> str:
    return "sasrec/valid_" + name.replace("@", "_at_")  # mlflow rejects '@' in metric names


def train_sasrec(
    model_config: SASRecConfig,
    train_config: SASRecTrainConfig,
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    num_items: int,
    device: torch.device,
    checkpoint_path: str | Path | None = None,
    log_metric: LogMetric | None = None,
    rank: int = 0,
    checkpoint_every_s: float = 0.0,
) -> SASRecResult:
    """Train SASRec-CE and keep the weights with the best validation ``select_metric``.

    Validation ranks all items for each ``valid_samples`` row (its ``history`` -> its ``target``) with
    ``rank_all_items`` (history items stay rankable) and scores Recall/NDCG@{5,10,20}. Training stops
    after ``max_steps`` updates or ``patience`` evaluations without improvement. A checkpoint (model,
    optimiser, step, best weights and metrics, RNG state, both configs) is written atomically at every
    evaluation and between them every ``checkpoint_every_s`` seconds (at a logging step; 0: never); if
    ``checkpoint_path`` already exists the run resumes from it, and refuses to when it was made with
    another model config, item count or trajectory setting. Only rank 0 writes and logs.
    """
    cfg = train_config
    device = torch.device(device)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    writer = rank == 0
    log = log_metric if (log_metric is not None and writer) else (lambda *_: None)

    inputs_np, targets_np = build_windows(train_sequences, model_config.max_history, cfg.windows)
    n_samples = len(inputs_np)
    if n_samples == 0:
        raise ValueError("no training windows: every training sequence has fewer than two items")
    lo, hi = min(inputs_np.min(), targets_np.min()), max(inputs_np.max(), targets_np.max())
    if lo < 0 or hi > num_items:
        raise ValueError(f"training item ids must lie in 1..{num_items}, found ids in {lo}..{hi}")
    inputs = torch.as_tensor(inputs_np, device=device)
    targets = torch.as_tensor(targets_np, device=device)
    valid_hist = left_pad(valid_samples["history"].tolist(), model_config.max_history)
    valid_tgt = valid_samples["target"].to_numpy(dtype=np.int64)

    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(cfg.seed)
        model = SASRec(model_config, num_items).to(device)
        optimizer = model.configure_optimizer(cfg.lr, cfg.weight_decay)
        step, selection = 0, Selection(cfg.select_metric, cfg.patience)
        if path is not None and path.exists():
            ckpt = load_checkpoint(path, model_config, cfg, _TRAJECTORY_FIELDS)
            if ckpt["num_items"] != num_items:
                raise ValueError(f"checkpoint {path} was made for {ckpt['num_items']} items, not {num_items}")
            step = resume(ckpt, model, optimizer, selection, device, cfg.max_steps, path)

        model.train()
        order = BatchOrder(n_samples, cfg.batch_size, cfg.seed, device)
        loss_sum = torch.zeros((), device=device)
        n_sum, train_seconds = 0, 0.0
        clock = CheckpointClock(checkpoint_every_s)

        def checkpoint():
            if path is not None and writer:
                save_checkpoint(path, model, optimizer, step, selection, device,
                                config=model_config.to_dict(), num_items=num_items, train_config=asdict(cfg))
            clock.saved()

        while step < cfg.max_steps and not selection.stopped:
            t0 = time.perf_counter()
            idx = order.batch(step)
            step += 1
            loss = model.loss(inputs[idx], targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            n_sum += 1
            train_seconds += time.perf_counter() - t0

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                log("sasrec/loss", float(loss_sum) / n_sum, step)
                log("sasrec/steps_per_s", n_sum / max(train_seconds, 1e-9), step)
                loss_sum.zero_()
                n_sum, train_seconds = 0, 0.0

            evaluates = step % cfg.eval_every == 0 or step == cfg.max_steps
            if not evaluates and step % cfg.log_every == 0 and clock.due():  # no loss window lost
                checkpoint()

            if evaluates:
                ranked = rank_all_items(model, valid_hist, 20, cfg.eval_batch_size, device)
                metrics = evaluate_rankings(ranked, valid_tgt, ks=(5, 10, 20))
                for name, value in metrics.items():
                    log(_metric_name(name), value, step)
                selection.update(step, metrics, model)
                checkpoint()

    return selection.result(model, step)


__all__ = ["SASRecResult", "SASRecTrainConfig", "build_windows", "rank_all_items", "train_sasrec"]
