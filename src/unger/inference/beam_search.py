"""Constrained beam search over item unicodes (paper section 3.5, beam width 100).

Only code prefixes of real items are ever expanded, so every returned sequence maps to an item
through the code table. Scores are the model's exact log-probabilities of the whole code sequence
(log-softmax over all K codes of each level, with invalid codes then set to -inf; no
renormalisation over the valid codes), so with a beam at least as wide as the catalogue the search
returns exactly the items an exhaustive teacher-forced scoring would rank first.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from unger.data.sequences import left_pad

NEG_INF = float("-inf")


class CodeTrie:
    """Prefix tree of the item codes as dense per-level transition tables.

    ``children[l]`` is (P_l, K): for the node of a valid prefix of length l (node ids 0..P_l-1,
    root = 0) and a code c, the node id of prefix + [c], or -1 when no item has that prefix. At the
    last level the entry is the item id itself. Beams carry their node id, so each expansion step
    is a single gather. Size is at most (1 + K + 2 N) * K int32 for L >= 3.
    """

    def __init__(self, codes, device: torch.device | str = "cpu"):
        codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.int64)
        rows = codes[1:]
        n, L = rows.shape
        if len(np.unique(rows, axis=0)) != n:
            raise ValueError("item codes are not unique")
        self.num_levels = L
        self.codebook_size = K = int(rows.max()) + 1
        node = np.zeros(n, dtype=np.int64)  # every item sits at the root before level 0
        self.children: list[torch.Tensor] = []
        for level in range(L):
            n_nodes = int(node.max()) + 1
            table = np.full((n_nodes, K), -1, dtype=np.int32)
            if level == L - 1:
                child = np.arange(1, n + 1)
            else:
                _, child = np.unique(rows[:, : level + 1], axis=0, return_inverse=True)
                child = child.reshape(-1)
            table[node, rows[:, level]] = child
            self.children.append(torch.as_tensor(table, device=device))
            node = child
        self.device = torch.device(device)

    def to(self, device) -> "CodeTrie":
        self.children = [t.to(device) for t in self.children]
        self.device = torch.device(device)
        return self

    def pad_to(self, k: int) -> "CodeTrie":
        """Widen the tables to ``k`` codes (the model's codebook may exceed the largest used code)."""
        if k > self.codebook_size:
            self.children = [torch.nn.functional.pad(t, (0, k - self.codebook_size), value=-1) for t in self.children]
            self.codebook_size = k
        return self

    def node_of(self, prefix: torch.Tensor) -> torch.Tensor:
        """Node ids (B,) of prefixes (B, l); -1 where the prefix belongs to no item."""
        node = torch.zeros(prefix.shape[0], dtype=torch.long, device=self.device)
        for level in range(prefix.shape[1]):
            nxt = self.children[level][node.clamp(min=0), prefix[:, level].to(self.device)].long()
            node = torch.where(node >= 0, nxt, -1)
        return node

    def allowed(self, prefix: torch.Tensor) -> torch.Tensor:
        """Bool mask (B, K): which next codes keep each prefix (B, l), l < L, a prefix of some item."""
        if prefix.shape[1] >= self.num_levels:
            raise ValueError("a full code has no next level")
        node = self.node_of(prefix)
        return (self.children[prefix.shape[1]][node.clamp(min=0)] >= 0) & (node >= 0)[:, None]


def _prepare_trie(model, codes, device: torch.device) -> CodeTrie:
    """The model's code trie on ``device``, widened to its codebook; ``codes`` is a table or a ``CodeTrie``."""
    trie = codes if isinstance(codes, CodeTrie) else CodeTrie(codes)
    trie = trie.to(device).pad_to(model.config.codebook_size)
    if trie.num_levels != model.config.num_levels:
        raise ValueError(f"codes have {trie.num_levels} levels, the model {model.config.num_levels}")
    return trie


@torch.inference_mode()
def _search_batch(model, histories: torch.Tensor, trie: CodeTrie, beam_size: int, counts: np.ndarray, use_cache: bool, encoded=None):
    """Beam search for one batch of users; returns final item ids and scores (U, beams) sorted.

    ``encoded``: the ``(memory, mask)`` of ``histories`` when already computed (several decoders
    sharing one encoder); by default ``model.encode(histories)``.
    """
    L, K = model.config.num_levels, model.config.codebook_size
    u = histories.shape[0]
    dev = histories.device
    memory, mask = model.encode(histories) if encoded is None else encoded
    memory_kv = model.cross_kv(memory)  # once per user, shared by all its beams
    scores = torch.zeros(u, 1, device=dev)
    node = torch.zeros(u, 1, dtype=torch.long, device=dev)
    tokens = torch.full((u, 1, 1), model.bos_token, dtype=torch.long, device=dev)  # (U, beams, t)
    cache = None
    for level in range(L):
        if use_cache:
            logp, cache = model.decode_step(tokens[..., -1], level, memory_kv, mask, cache)
        else:
            hidden, _ = model.decode(tokens, 0, memory_kv, mask)
            logp = torch.log_softmax(model.level_logits(hidden[:, :, -1], level).float(), dim=-1)
        nb_old = logp.shape[1]
        child = trie.children[level][node.clamp(min=0)].long()  # (U, beams, K)
        valid = (child >= 0) & (node >= 0)[..., None]
        cand = (scores[..., None] + logp).view(u, -1)
        n_keep = min(beam_size, nb_old * K)

        # Diagnostic: how many of the top candidates an unconstrained search would keep are dead ends.
        top_vals, top_idx = cand.topk(n_keep, dim=1)
        live = torch.isfinite(top_vals)
        counts[level, 0] += int((~valid.view(u, -1).gather(1, top_idx) & live).sum())
        counts[level, 1] += int(live.sum())

        cand = cand.masked_fill(~valid.view(u, -1), NEG_INF)
        scores, idx = cand.topk(n_keep, dim=1)
        parent = idx // K
        code = idx % K
        node = torch.where(torch.isfinite(scores), child.view(u, -1).gather(1, idx), -1)
        if level == L - 1:
            break
        prev = tokens.gather(1, parent[..., None].expand(-1, -1, tokens.shape[-1]))
        tokens = torch.cat([prev, model.code_token_ids(code, level)[..., None]], dim=-1)
        if use_cache:
            flat = (torch.arange(u, device=dev)[:, None] * nb_old + parent).view(-1)
            cache = [(k.index_select(0, flat), v.index_select(0, flat)) for k, v in cache]
    items = torch.where(torch.isfinite(scores), node, 0)
    return items, scores


def constrained_beam_search(
    model,
    histories,
    codes,
    beam_size: int = 100,
    top_k: int = 20,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    use_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Top-k items per user by beam search restricted to valid code prefixes.

    Args:
        model: an ``UngerModel`` (put in eval mode for the search, its mode restored afterwards).
        histories: (U, H) left-padded history item ids.
        codes: the (N+1, L) code table, or a prebuilt ``CodeTrie``.
        beam_size: beams kept per level (paper: 100).
        top_k: items returned; users with fewer valid beams get item 0 and score -inf in the tail.
        batch_size: users decoded together (each holds ``beam_size`` beams).
        use_cache: cache decoder self-attention keys/values (same result, less compute).

    Returns:
        items (U, top_k) int64, best first, distinct and in 1..N (or 0 padding); scores (U, top_k)
        float32, the summed code log-probs; stats with ``invalid_unconstrained_rate``: over all
        decoding steps and users, the share of the top-``beam_size`` candidates by unconstrained
        score (expansions of the current valid beams) whose prefix belongs to no item, i.e. how
        often plain beam search would spend beams on dead ends; also per level, and timings.
    """
    if beam_size < 1 or top_k < 1:
        raise ValueError("beam_size and top_k must be >= 1")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    trie = _prepare_trie(model, codes, device)
    histories = torch.as_tensor(np.asarray(histories), dtype=torch.long)
    n_users = histories.shape[0]
    items = np.zeros((n_users, top_k), dtype=np.int64)
    scores = np.full((n_users, top_k), NEG_INF, dtype=np.float32)
    counts = np.zeros((model.config.num_levels, 2), dtype=np.int64)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        for lo in range(0, n_users, batch_size):
            hist = histories[lo : lo + batch_size].to(device)
            it, sc = _search_batch(model, hist, trie, beam_size, counts, use_cache)
            k = min(top_k, it.shape[1])
            items[lo : lo + len(hist), :k] = it[:, :k].cpu().numpy()
            scores[lo : lo + len(hist), :k] = sc[:, :k].cpu().numpy()
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - start
    per_level = (counts[:, 0] / np.maximum(counts[:, 1], 1)).tolist()
    stats = {
        "invalid_unconstrained_rate": float(counts[:, 0].sum() / max(counts[:, 1].sum(), 1)),
        "invalid_unconstrained_rate_per_level": per_level,
        "num_users": n_users,
        "seconds": seconds,
        "ms_per_user": 1000.0 * seconds / max(n_users, 1),
    }
    return items, scores, stats


def rank_items(model, samples_df, codes, beam_size: int = 100, top_k: int = 20, device=None, batch_size: int = 128):
    """``constrained_beam_search`` on a valid/test DataFrame (``history`` lists, left-padded here)."""
    histories = left_pad(samples_df["history"].tolist(), model.config.max_history)
    return constrained_beam_search(model, histories, codes, beam_size, top_k, batch_size, device)
