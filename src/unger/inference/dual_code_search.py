"""Inference for the EAGER-style dual-code baseline: one constrained beam search per stream, then a confidence merge.

Each decoder (semantic, collaborative) runs the same constrained beam search as the unified model
(``unger.inference.beam_search``, same beam width and top-k) over its own code trie; the shared
encoder runs once per batch and both searches reuse its memory. A candidate's confidence is its
sequence probability in the stream that produced it (exp of the summed code log-probs). The two
top-k lists are merged by confidence into top-k distinct items.

Merge rule for an item found by both streams: the *max* of its two confidences, not the sum.
  * It is the literal reading of "merge by confidence": sort the union of the two lists by score
    and keep each item's first (best) occurrence.
  * The merged list is then exactly the top-k of ``max(p_semantic(i), p_collaborative(i))`` over the
    whole catalogue (an item in that top-k is in the top-k of the stream that gives its max), so
    the truncation of each stream to k items loses nothing. With the sum, an item's score would
    depend on whether the weaker stream's truncated list happened to contain it (its probability
    there is nonzero but unknown), and would mix two unrelated distributions' mass.
  * Ties (equal scores) favour the semantic stream, then the better beam.
Scores are kept in log space (log of the confidence, like ``constrained_beam_search``): ranking by
log-probability equals ranking by probability, and exp() of very unlikely sequences would underflow
float32 to equal zeros.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from unger.inference.beam_search import NEG_INF, _prepare_trie, _search_batch
from unger.models.dual_code import DualCodeModel


def merge_by_confidence(items_a, scores_a, items_b, scores_b, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge two ranked lists per user into ``top_k`` distinct items by confidence (max rule).

    Args:
        items_a, items_b: (U, k_a), (U, k_b) item ids; 0 = padding (ignored whatever its score).
        scores_a, scores_b: matching log-confidences (higher = better); ``-inf`` for padding.
        top_k: items returned per user.

    Returns:
        items (U, top_k) int64, distinct, best first, 0-padded when the two lists hold fewer than
        ``top_k`` distinct items; scores (U, top_k) float32, an item's best score over both lists,
        ``-inf`` on padding. Equal scores keep list a before list b, and each list's own order.
    """
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    items = np.concatenate([np.asarray(items_a), np.asarray(items_b)], axis=1).astype(np.int64)
    scores = np.concatenate([np.asarray(scores_a), np.asarray(scores_b)], axis=1).astype(np.float32)
    scores = np.where(items > 0, scores, np.float32(NEG_INF))
    order = np.argsort(-scores, axis=1, kind="stable")  # best first; ties keep a before b
    items = np.take_along_axis(items, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    # First occurrence of each item in that order = its max score: group equal ids, earliest first.
    pos = np.broadcast_to(np.arange(items.shape[1]), items.shape)
    by_item = np.lexsort((pos, items), axis=1)
    grouped = np.take_along_axis(items, by_item, axis=1)
    first = np.ones(items.shape, dtype=bool)
    first[:, 1:] = grouped[:, 1:] != grouped[:, :-1]
    keep = np.empty_like(first)
    np.put_along_axis(keep, by_item, first, axis=1)
    keep &= items > 0
    sel = np.argsort(~keep, axis=1, kind="stable")[:, :top_k]  # kept entries first, in score order
    kept = np.take_along_axis(keep, sel, axis=1)
    out_items = np.where(kept, np.take_along_axis(items, sel, axis=1), 0)
    out_scores = np.where(kept, np.take_along_axis(scores, sel, axis=1), np.float32(NEG_INF))
    if out_items.shape[1] < top_k:
        pad = top_k - out_items.shape[1]
        out_items = np.pad(out_items, ((0, 0), (0, pad)))
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=NEG_INF)
    return out_items.astype(np.int64), out_scores.astype(np.float32)


def dual_code_beam_search(
    model: DualCodeModel,
    histories,
    beam_size: int = 100,
    top_k: int = 20,
    batch_size: int = 128,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Top-k items per user: constrained beam search in each stream, merged by confidence.

    Args:
        model: a ``DualCodeModel`` (put in eval mode for the search, its mode restored afterwards).
        histories: (U, H) left-padded history item ids.
        beam_size: beams kept per level in each stream (the unified model's width, paper: 100).
        top_k: items kept from each stream and returned after the merge.
        batch_size: users decoded together.

    Returns:
        items (U, top_k) int64, distinct, best first (0 = padding); scores (U, top_k) float32, the
        item's summed code log-prob in the stream that scores it higher (``-inf`` on padding); stats
        with ``seconds``, ``ms_per_user``, ``num_users``, each stream's
        ``invalid_unconstrained_rate_<stream>`` (see ``constrained_beam_search``) and
        ``stream_overlap``: the mean share of a user's semantic top-k also in its collaborative top-k.
    """
    if beam_size < 1 or top_k < 1:
        raise ValueError("beam_size and top_k must be >= 1")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    streams = model.streams()
    tries = {name: _prepare_trie(s, s.codes, device) for name, s in streams.items()}
    counts = {name: np.zeros((s.config.num_levels, 2), dtype=np.int64) for name, s in streams.items()}
    histories = torch.as_tensor(np.asarray(histories), dtype=torch.long)
    n_users = histories.shape[0]
    items = np.zeros((n_users, top_k), dtype=np.int64)
    scores = np.full((n_users, top_k), NEG_INF, dtype=np.float32)
    overlap = 0.0
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        for lo in range(0, n_users, batch_size):
            hist = histories[lo : lo + batch_size].to(device)
            with torch.inference_mode():
                encoded = model.encode(hist)  # once, shared by both decoders
            ranked = []
            for name, stream in streams.items():
                it, sc = _search_batch(stream, hist, tries[name], beam_size, counts[name], True, encoded=encoded)
                k = min(top_k, it.shape[1])
                ranked += [it[:, :k].cpu().numpy(), sc[:, :k].cpu().numpy()]
            items[lo : lo + len(hist)], scores[lo : lo + len(hist)] = merge_by_confidence(*ranked, top_k)
            sem, col = ranked[0], ranked[2]
            shared = ((sem[:, :, None] == col[:, None, :]) & (sem > 0)[:, :, None]).any(-1).sum(1)
            overlap += float((shared / np.maximum((sem > 0).sum(1), 1)).sum())
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start
    stats = {
        f"invalid_unconstrained_rate_{name}": float(c[:, 0].sum() / max(c[:, 1].sum(), 1)) for name, c in counts.items()
    }
    stats.update(
        stream_overlap=overlap / max(n_users, 1),
        num_users=n_users,
        seconds=seconds,
        ms_per_user=1000.0 * seconds / max(n_users, 1),
    )
    return items, scores, stats


__all__ = ["dual_code_beam_search", "merge_by_confidence"]
