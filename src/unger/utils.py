"""Small shared helpers: device choice, seeding, row normalisation (no Kedro, no global state)."""

from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path

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


def unit_rows(x: np.ndarray, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` scaled to unit L2 norm, and the norms they had. Zero rows stay zero (every cosine
    with them is 0), so the padding row 0 of an embedding table passes through unchanged."""
    x = np.asarray(x, dtype=dtype)
    norms = np.linalg.norm(x, axis=1)
    return x / np.maximum(norms, 1e-12)[:, None], norms


def fingerprint(*parts) -> str:
    """A short stable hash of arrays, frames and plain values: names a checkpoint after everything
    that determines it, so a changed input or parameter never resumes a stale run."""
    import hashlib
    import json

    import pandas as pd

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str((part.shape, part.dtype)).encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, pd.DataFrame):
            digest.update(pd.util.hash_pandas_object(part.astype(str), index=False).to_numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


@contextmanager
def checkpoint_lock(checkpoint: Path):
    """Hold ``<checkpoint>.lock`` while training into ``checkpoint``: runs in parallel that share a
    checkpoint (same fingerprint) then train it once, and the later one resumes the finished file."""
    import fcntl

    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with open(checkpoint.with_name(checkpoint.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
