"""Sequences to model inputs: every-prefix training samples and left-padded histories (shared by both
stages and by beam search)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def build_training_samples(train_sequences: pd.DataFrame, max_history: int) -> tuple[np.ndarray, np.ndarray]:
    """Every next-item prediction of every training sequence.

    For each sequence and each t >= 1 the target is items[t] and the history the last ``max_history``
    items of items[:t], left-padded with 0. Samples are ordered by sequence, then by t.

    Returns:
        histories (S, max_history) and targets (S,), both int64.
    """
    seqs = train_sequences["items"].tolist()
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if lens.sum() == 0:
        return np.zeros((0, max_history), dtype=np.int64), np.zeros(0, dtype=np.int64)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
    starts = np.repeat(np.cumsum(lens) - lens, lens)  # flat index where each element's sequence begins
    pos = np.arange(len(flat))
    is_target = pos > starts
    g, st = pos[is_target], starts[is_target]
    idx = g[:, None] + np.arange(-max_history, 0)
    histories = np.where(idx >= st[:, None], flat[np.maximum(idx, 0)], 0)
    return histories.astype(np.int64), flat[g]


def left_pad(histories: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    """Keep the last ``max_len`` ids of each history and left-pad with 0 to (len, max_len) int64."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for i, h in enumerate(histories):
        h = list(h)[-max_len:]
        if h:
            out[i, max_len - len(h):] = h
    return out
