"""Checkpoint plumbing shared by the training loops: plain state dicts, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import torch


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
