"""Checkpoint plumbing shared by the training loops: plain state dicts, written atomically; seeded RNG
streams and RNG state; best-checkpoint selection with early stopping, the resumable checkpoint and the
result of the Stage II and SASRec loops.

A loop's checkpoint is one dict: ``model``, ``optimizer``, ``step``, the ``Selection`` state
(``best_step``, ``best_metrics``, ``best_state``, ``history``, ``bad_evals``, ``stopped_early``), ``rng``,
then what the loop adds (``config``, ``train_config``, ...).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's state dict (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_atomic(payload: dict, path: Path) -> None:
    """Write to a temporary file and rename: a kill mid-write leaves the old checkpoint or the new one,
    never half of one (``os.replace`` is atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def seeded_generator(*key: int) -> torch.Generator:
    """CPU generator seeded from a tuple of ints (independent streams for data order and negatives)."""
    seed = int(np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(seed)


class BatchOrder:
    """The samples of each update, a fixed function of (seed, step): epoch ``e`` visits the ``n_samples``
    in the order of a permutation drawn from ``seeded_generator(seed, 0, e)``, ``batch_size`` at a time
    (the epoch's last batch may be smaller). The permutation is drawn once per epoch."""

    def __init__(self, n_samples: int, batch_size: int, seed: int, device: torch.device):
        self.n_samples, self.batch_size, self.seed, self.device = n_samples, batch_size, seed, device
        self.steps_per_epoch = math.ceil(n_samples / batch_size)
        self.epoch, self.perm = -1, None

    def batch(self, step: int) -> torch.Tensor:
        """Sample indices (on ``device``) of the update that follows ``step`` updates (0-based ``step``)."""
        e, b = divmod(step, self.steps_per_epoch)
        if e != self.epoch:
            self.epoch = e
            self.perm = torch.randperm(self.n_samples, generator=seeded_generator(self.seed, 0, e)).to(self.device)
        return self.perm[b * self.batch_size : (b + 1) * self.batch_size]


class CheckpointClock:
    """When to write a checkpoint between evaluations: ``every_s`` seconds after the last one (0: never).
    The moments do not change what a run trains: a checkpoint reads the RNG state, never draws from it."""

    def __init__(self, every_s: float):
        if every_s < 0:
            raise ValueError(f"checkpoint_every_s must be >= 0, got {every_s}")
        self.every_s = every_s
        self.last = time.monotonic()

    def due(self) -> bool:
        """Whether ``every_s`` seconds have passed since the last ``saved()`` (never when ``every_s`` is 0)."""
        return self.every_s > 0 and time.monotonic() - self.last >= self.every_s

    def saved(self) -> None:
        """Note that a checkpoint was just written."""
        self.last = time.monotonic()


def rng_devices(device: torch.device) -> list:
    """The CUDA devices whose RNG ``torch.random.fork_rng`` must fork for a run on ``device``."""
    return [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []


def rng_state(device: torch.device) -> dict:
    """The torch RNG state, plus ``device``'s CUDA RNG state on a GPU."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class TrainResult:
    """What a training loop returns: the selected (best) weights and metrics, and the last weights."""

    best_state: dict  # CPU state_dict of the best validation checkpoint
    best_step: int
    best_valid_metrics: dict
    history: list = field(default_factory=list)  # one dict per evaluation
    final_state: dict | None = None  # CPU state_dict after the last update
    final_step: int = 0
    stopped_early: bool = False

    def report(self, seconds: float, checkpoint: Path, model_config: dict, train_config: dict) -> dict:
        """The training report a node persists next to the model (JSON-ready, no weights)."""
        return {"best_step": self.best_step, "final_step": self.final_step, "stopped_early": self.stopped_early,
                "best_valid_metrics": self.best_valid_metrics, "history": self.history,
                "train_seconds_this_session": seconds, "checkpoint": str(checkpoint),
                "model_config": model_config, "train_config": train_config}


@dataclass
class Selection:
    """Keeps the weights of the evaluation with the best ``metric`` (higher is better; ties keep the
    earlier) and stops after ``patience`` evaluations in a row without improvement (0 = never)."""

    metric: str
    patience: int = 0
    best_step: int = -1
    best_metrics: dict = field(default_factory=dict)
    best_state: dict | None = None  # CPU state_dict of the best evaluation
    history: list = field(default_factory=list)  # {"step": step, **metrics} per evaluation
    bad_evals: int = 0
    stopped: bool = False

    def update(self, step: int, metrics: dict, model: torch.nn.Module) -> bool:
        """Record the evaluation at ``step``; returns whether it is the new best (its weights are kept)."""
        self.history.append({"step": step, **metrics})
        if self.best_state is None or metrics[self.metric] > self.best_metrics[self.metric]:
            self.best_step, self.best_metrics, self.best_state, self.bad_evals = step, metrics, cpu_state(model), 0
            return True
        self.bad_evals += 1
        self.stopped = self.patience > 0 and self.bad_evals >= self.patience
        return False

    def result(self, model: torch.nn.Module, step: int) -> TrainResult:
        """The loop's result: the selection, and ``model``'s weights after update ``step``."""
        return TrainResult(
            best_state=self.best_state,
            best_step=self.best_step,
            best_valid_metrics=self.best_metrics,
            history=self.history,
            final_state=cpu_state(model),
            final_step=step,
            stopped_early=self.stopped,
        )

    def state(self) -> dict:
        """The checkpoint entries of the selection."""
        return {
            "best_step": self.best_step,
            "best_metrics": self.best_metrics,
            "best_state": self.best_state,
            "history": self.history,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped,
        }

    def load(self, state: dict) -> None:
        """Restore what ``state`` wrote (extra keys of a whole checkpoint are ignored)."""
        self.best_step, self.best_metrics = state["best_step"], state["best_metrics"]
        self.best_state, self.history = state["best_state"], state["history"]
        self.bad_evals, self.stopped = state["bad_evals"], state["stopped_early"]


def save_checkpoint(path: Path, model, optimizer, step: int, selection: Selection, device: torch.device, **extra) -> None:
    """Write a loop's checkpoint atomically: model, optimizer, step, selection, RNG state, then ``extra``."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        **selection.state(),
        "rng": rng_state(device),
        **extra,
    }
    save_atomic(payload, path)
    log.info("checkpoint at step %d written to %s", step, path)


def _changed(saved: dict, config, names) -> list[str]:
    """Fields of the dataclass ``config`` among ``names`` whose value differs from ``saved``; a field an
    older checkpoint lacks counts as its default (fields are added at the value that behaves as before)."""
    return [k for k in names if (saved[k] if k in saved else getattr(type(config), k)) != getattr(config, k)]


def load_checkpoint(path: Path, config, train_config, trajectory_fields) -> dict:
    """Load a ``save_checkpoint`` file and refuse it when it was made with another model ``config`` (a
    dataclass) or another value of one of the ``trajectory_fields`` of ``train_config``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    current = asdict(config)
    changed = _changed(ckpt["config"], config, current) + [k for k in ckpt["config"] if k not in current]
    if changed:
        raise ValueError(f"checkpoint {path} was made with another model config: {changed} "
                         f"(checkpoint: {ckpt['config']})")
    changed = _changed(ckpt["train_config"], train_config, trajectory_fields)
    if changed:
        raise ValueError(f"checkpoint {path} was made with other training settings: {changed}")
    last = stop_step(ckpt["history"], train_config.select_metric, train_config.patience, train_config.max_steps)
    if ckpt["step"] > last:
        raise ValueError(f"checkpoint {path} has trained {ckpt['step']} steps, past step {last} where this run "
                         f"(max_steps={train_config.max_steps}, patience={train_config.patience}) stops: its "
                         "selection may come from steps this run never takes; remove it or use another "
                         "runtime.checkpoint_dir")
    return ckpt


def stop_step(history: list[dict], metric: str, patience: int, max_steps: int) -> int:
    """The step at which a run with ``patience`` and ``max_steps`` stops, replaying the evaluations of
    ``history`` (as ``Selection.update`` does); ``max_steps`` when it would not stop within them."""
    best, bad = None, 0
    for entry in history:
        if entry["step"] > max_steps:
            break
        if best is None or entry[metric] > best:
            best, bad = entry[metric], 0
        else:
            bad += 1
            if patience > 0 and bad >= patience:
                return entry["step"]
    return max_steps


def refuse_training_without_optimizer(path: Path, ckpt: dict, trains: bool) -> None:
    """A ``without_optimizer`` copy can stand in for a finished run, not continue one: Adam restarted
    from empty moments would train other weights than the run it claims to continue."""
    if ckpt["optimizer"] is None and trains:
        raise ValueError(f"checkpoint {path} is a copy without optimizer state (python -m "
                         "unger.training.carry_checkpoint slim) and this run would train it further; use the "
                         "full checkpoint")


def resume(ckpt: dict, model, optimizer, selection: Selection, device: torch.device, max_steps: int,
           path: Path | None = None) -> int:
    """Restore model, optimizer, selection and RNG state from ``ckpt``; returns its step."""
    selection.load(ckpt)
    refuse_training_without_optimizer(path, ckpt, ckpt["step"] < max_steps and not selection.stopped)
    model.load_state_dict(ckpt["model"])
    if ckpt["optimizer"] is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    set_rng_state(ckpt["rng"], device)
    log.info("resumed at step %d from %s", ckpt["step"], path)
    return ckpt["step"]


def without_optimizer(ckpt: dict) -> dict:
    """A finished checkpoint without what only further training reads: the optimizer state (twice the
    model under Adam) and, where they differ, the last weights (the best ones stand in). About a third of
    the size, for carrying finished stages to another machine; every loader refuses to train it further."""
    return {**ckpt, "optimizer": None, "model": ckpt["best_state"]}
