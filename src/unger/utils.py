"""Small shared helpers: device choice and seeding (no Kedro, no global state)."""

from __future__ import annotations

import random

import numpy as np


def resolve_device(name: str = "auto"):
    """``auto`` picks CUDA, then Apple MPS, then CPU; any torch device string is passed through."""
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for reproducible runs."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
