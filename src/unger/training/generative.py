"""Stage II training loop: Adam with linear warmup (then constant or cosine), periodic beam-search
validation, resumable checkpoints.

Reproducibility: the batch of update ``s`` is a fixed function of (seed, s): epoch ``e`` uses the
permutation drawn from a generator seeded with (seed, e), and the IKD negatives of update ``s``
come from a generator seeded with (seed, s). Model init runs under ``seed``; dropout (off by
default) uses the torch RNG, whose state is checkpointed. So a run killed after a checkpoint and
resumed reaches bitwise the same weights as an uninterrupted run on CPU. The caller's global RNG
state is left untouched (``torch.random.fork_rng``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from unger.evaluation.metrics import evaluate_rankings
from unger.data.sequences import build_training_samples, left_pad
from unger.inference.beam_search import CodeTrie, constrained_beam_search
from unger.training.checkpoint import (BatchOrder, CheckpointClock, Selection, TrainResult, load_checkpoint, resume,
                                       rng_devices, save_checkpoint, seeded_generator)
from unger.models.generative import GenerativeConfig, UngerModel, sample_negatives

LogMetric = Callable[[str, float, int], None]
# evaluate(model, histories, targets, beam_size, batch_size, device) -> validation metrics
Evaluate = Callable[..., dict]

# Train-config fields a run may change and still resume: its length (while the learning rate does not
# depend on it), early stopping, logging and how validation is run. Every other field is trajectory.
RESUMABLE_FIELDS = ("max_steps", "patience", "log_every", "eval_batch_size", "eval_every", "eval_users", "eval_beam")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Stage II optimisation settings; defaults follow the paper (section 5.4)."""

    lr: float = 1e-3
    warmup_steps: int = 2000  # linear from warmup_init_lr to lr over these updates, then constant
    warmup_init_lr: float = 1e-7
    # after warmup: "constant" (the paper) or "cosine" (down to 0 at max_steps; not in the paper)
    lr_schedule: str = "constant"
    batch_size: int = 256
    max_steps: int = 20000
    weight_decay: float = 1e-7
    eval_every: int = 2000  # also evaluated (and checkpointed) at max_steps
    # 0 = every validation user. >0 = a fixed subset (seeded by ``seed``) used only to pick the
    # checkpoint; final metrics are always computed on all users by the caller.
    eval_users: int = 0
    eval_beam: int = 20  # beam width for checkpoint selection (final evaluation uses its own)
    eval_batch_size: int = 128
    select_metric: str = "ndcg@20"  # validation metric that picks the best checkpoint
    seed: int = 2024
    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    log_every: int = 100  # train losses are averaged over this many updates before logging

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "eval_every", "eval_beam", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_users", "patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_init_lr < 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0, warmup_init_lr and weight_decay >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.select_metric not in {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}:
            raise ValueError(f"select_metric must be recall@k or ndcg@k for k in 5, 10, 20, got {self.select_metric!r}")


def trajectory_fields(cfg: TrainConfig) -> tuple[str, ...]:
    """Train settings that shape the weights and the checkpoint choice: a resumed run must share them and
    they name its checkpoint. All fields but ``RESUMABLE_FIELDS``; a cosine schedule's length is one."""
    resumable = set(RESUMABLE_FIELDS) - ({"max_steps"} if cfg.lr_schedule == "cosine" else set())
    return tuple(f.name for f in fields(cfg) if f.name not in resumable)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Learning rate of update ``step`` (1-based): linear warmup from ``warmup_init_lr`` to ``lr``, then
    constant (the paper) or a cosine from ``lr`` down to 0 at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.warmup_init_lr + (cfg.lr - cfg.warmup_init_lr) * step / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or cfg.max_steps <= cfg.warmup_steps:
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps))
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * progress))


def evaluate_generative(model, histories, targets, trie, beam_size: int, batch_size: int, device) -> dict:
    """Recall/NDCG@{5,10,20} of constrained beam search, plus the unconstrained invalid-prefix rate."""
    ranked, _, stats = constrained_beam_search(model, histories, trie, beam_size, 20, batch_size, device)
    metrics = evaluate_rankings(ranked, targets, ks=(5, 10, 20))
    metrics["invalid_unconstrained_rate"] = stats["invalid_unconstrained_rate"]
    return metrics


def _metric_name(name: str) -> str:
    return "generative/valid_" + name.replace("@", "_at_")  # mlflow rejects '@' in metric names


def train_generative(
    model_config: GenerativeConfig,
    train_config: TrainConfig,
    codes,
    integrated,
    train_sequences: pd.DataFrame,
    valid_samples: pd.DataFrame,
    device: torch.device,
    checkpoint_path: str | Path | None = None,
    log_metric: LogMetric | None = None,
    rank: int = 0,
    build_model: Callable[[], torch.nn.Module] | None = None,
    evaluate: Evaluate | None = None,
    checkpoint_every_s: float = 0.0,
) -> TrainResult:
    """Train UNGER Stage II and keep the weights with the best validation ``select_metric``.

    A checkpoint (model, optimiser, step, best weights and metrics, RNG state, both configs) is
    written atomically at every evaluation, and between evaluations at the first logging step
    ``checkpoint_every_s`` seconds after the last one (0: only at evaluations); if ``checkpoint_path``
    already exists the run resumes from it to the same weights. Only rank 0 writes checkpoints and
    logs metrics.

    Other generative models train with the same loop (e.g. ``unger.training.dual_code``):
    ``build_model()`` makes the model (called under the seed; default ``UngerModel(model_config,
    codes, integrated)``; ``codes``/``integrated`` only feed the defaults), and ``evaluate(model,
    histories, targets, beam_size, batch_size, device)`` returns its validation metrics (default
    ``evaluate_generative`` over the trie of ``codes``). Such a model needs ``config`` (a
    ``GenerativeConfig``; no negatives are drawn unless ``use_distillation``), ``configure_optimizer``
    and a ``forward(histories, targets)`` returning a dict of scalar losses with the optimised one
    under ``"loss"``; every entry is logged as ``generative/<name>``.
    """
    cfg = train_config
    device = torch.device(device)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    writer = rank == 0
    log = log_metric if (log_metric is not None and writer) else (lambda *_: None)

    histories_np, targets_np = build_training_samples(train_sequences, model_config.max_history)
    n_samples = len(targets_np)
    if n_samples == 0:
        raise ValueError("no training samples: every training sequence has fewer than two items")
    histories = torch.as_tensor(histories_np, device=device)
    targets = torch.as_tensor(targets_np, device=device)
    valid_hist = left_pad(valid_samples["history"].tolist(), model_config.max_history)
    valid_tgt = valid_samples["target"].to_numpy(dtype=np.int64)
    if 0 < cfg.eval_users < len(valid_tgt):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(valid_tgt), cfg.eval_users, replace=False))
        valid_hist, valid_tgt = valid_hist[keep], valid_tgt[keep]
    if evaluate is None:
        trie = CodeTrie(codes, device)

        def evaluate(model, histories, targets, beam_size, batch_size, device):
            return evaluate_generative(model, histories, targets, trie, beam_size, batch_size, device)

    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(cfg.seed)
        model = (build_model() if build_model is not None else UngerModel(model_config, codes, integrated)).to(device)
        optimizer = model.configure_optimizer(cfg.lr, cfg.weight_decay)
        step, selection = 0, Selection(cfg.select_metric, cfg.patience)
        if path is not None and path.exists():
            ckpt = load_checkpoint(path, model.config, cfg, trajectory_fields(cfg))
            step = resume(ckpt, model, optimizer, selection, device, cfg.max_steps, path)

        model.train()
        order = BatchOrder(n_samples, cfg.batch_size, cfg.seed, device)
        loss_names, sums = None, None  # the model's loss entries, summed between logs
        n_sum, train_seconds = 0, 0.0
        clock = CheckpointClock(checkpoint_every_s)

        def checkpoint():
            if path is not None and writer:
                save_checkpoint(path, model, optimizer, step, selection, device,
                                config=model.config.to_dict(), train_config=asdict(cfg))
            clock.saved()

        while step < cfg.max_steps and not selection.stopped:
            t0 = time.perf_counter()
            idx = order.batch(step)
            step += 1
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch_targets = targets[idx]
            negatives = None
            if model.config.use_distillation:
                gen = seeded_generator(cfg.seed, 1, step)
                negatives = sample_negatives(batch_targets, model.num_items, model.config.num_negatives, gen)
            extra = {} if negatives is None else {"negative_items": negatives}
            out = model(histories[idx], batch_targets, **extra)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
            if sums is None:
                loss_names = list(out)
                sums = torch.zeros(len(loss_names), device=device)
            sums += torch.stack([out[name].detach() for name in loss_names])
            n_sum += 1
            train_seconds += time.perf_counter() - t0

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                means = (sums / n_sum).tolist()
                for name, value in zip(loss_names, means):
                    log(f"generative/{name}", value, step)
                log("generative/lr", lr, step)
                log("generative/steps_per_s", n_sum / max(train_seconds, 1e-9), step)
                sums.zero_()
                n_sum, train_seconds = 0, 0.0

            evaluates = step % cfg.eval_every == 0 or step == cfg.max_steps
            if not evaluates and step % cfg.log_every == 0 and clock.due():  # no loss window lost
                checkpoint()

            if evaluates:
                metrics = evaluate(model, valid_hist, valid_tgt, cfg.eval_beam, cfg.eval_batch_size, device)
                for name, value in metrics.items():
                    log(_metric_name(name), value, step)
                selection.update(step, metrics, model)
                checkpoint()

    return selection.result(model, step)
