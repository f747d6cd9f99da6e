"""Constrained beam search and the code trie on tiny synthetic data (50 items, K=4, L=3)."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from unger.data.sequences import left_pad
from unger.inference.beam_search import CodeTrie, constrained_beam_search, rank_items
from unger.models.generative import GenerativeConfig, UngerModel

N, K, L, H = 50, 4, 3, 6


def tiny_codes(n=N, seed=0):
    rng = np.random.default_rng(seed)
    every = np.stack(np.meshgrid(*[np.arange(K)] * L, indexing="ij"), -1).reshape(-1, L)
    codes = np.zeros((n + 1, L), dtype=np.int64)
    codes[1:] = every[rng.permutation(len(every))[:n]]
    return codes


def tiny_model(codes, seed=0):
    torch.manual_seed(seed)
    cfg = GenerativeConfig(d_model=24, ffn_dim=32, n_heads=2, decoder_layers=2, codebook_size=K, max_history=H, use_distillation=False)
    return UngerModel(cfg, codes).eval()


@pytest.fixture(scope="module")
def setup():
    codes = tiny_codes()
    g = torch.Generator().manual_seed(5)
    hist = torch.randint(1, N + 1, (9, H), generator=g)
    hist[0, :3] = 0
    hist[1] = 0  # no history at all
    return codes, tiny_model(codes), hist


def test_trie_allowed_matches_brute_force():
    codes = tiny_codes()
    trie = CodeTrie(codes)
    rows = {tuple(r) for r in codes[1:].tolist()}
    for length in range(L):
        prefixes = list(itertools.product(range(K), repeat=length))  # valid and invalid prefixes
        mask = trie.allowed(torch.tensor(prefixes, dtype=torch.long).reshape(len(prefixes), length))
        for p, m in zip(prefixes, mask.tolist()):
            expect = [any(r[: length + 1] == p + (c,) for r in rows) for c in range(K)]
            assert m == expect, (p, m, expect)
    np.testing.assert_array_equal(trie.node_of(torch.as_tensor(codes[1:])).numpy(), np.arange(1, N + 1))


def test_trie_rejects_duplicate_codes():
    codes = tiny_codes()
    codes[2] = codes[1]
    with pytest.raises(ValueError, match="unique"):
        CodeTrie(codes)


def test_results_are_valid_distinct_and_scored_exactly(setup):
    codes, model, hist = setup
    items, scores, stats = constrained_beam_search(model, hist, codes, beam_size=10, top_k=8, batch_size=4)
    assert items.shape == scores.shape == (9, 8) and items.dtype == np.int64
    assert ((items >= 1) & (items <= N)).all()
    assert all(len(set(row)) == len(row) for row in items.tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    exact = model.sequence_log_probs(hist.repeat_interleave(8, 0), torch.as_tensor(items).reshape(-1)).reshape(9, 8)
    np.testing.assert_allclose(scores, exact.numpy(), atol=1e-5)
    assert 0.0 <= stats["invalid_unconstrained_rate"] <= 1.0
    assert len(stats["invalid_unconstrained_rate_per_level"]) == L


def test_wide_beam_equals_exhaustive_ranking(setup):
    codes, model, hist = setup
    items, scores, _ = constrained_beam_search(model, hist, codes, beam_size=N, top_k=20, batch_size=9)
    every = torch.arange(1, N + 1)
    for u in range(len(hist)):
        logp = model.sequence_log_probs(hist[u : u + 1].expand(N, -1), every)
        top = torch.topk(logp, 20)
        np.testing.assert_array_equal(items[u], (top.indices + 1).numpy())
        np.testing.assert_allclose(scores[u], top.values.numpy(), atol=1e-5)


def test_cache_and_batching_do_not_change_results(setup):
    codes, model, hist = setup
    ref_items, ref_scores, ref_stats = constrained_beam_search(model, hist, codes, beam_size=7, top_k=5, batch_size=9)
    for kw in (dict(use_cache=False, batch_size=9), dict(batch_size=1), dict(batch_size=4)):
        items, scores, stats = constrained_beam_search(model, hist, codes, beam_size=7, top_k=5, **kw)
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
        assert stats["invalid_unconstrained_rate"] == pytest.approx(ref_stats["invalid_unconstrained_rate"])


def test_pads_when_fewer_items_than_top_k():
    codes = tiny_codes(n=6)
    model = tiny_model(codes)
    hist = torch.randint(1, 7, (3, H))
    items, scores, _ = constrained_beam_search(model, hist, CodeTrie(codes), beam_size=20, top_k=10)
    assert (items[:, :6] > 0).all() and (items[:, 6:] == 0).all()
    assert np.isfinite(scores[:, :6]).all() and np.isneginf(scores[:, 6:]).all()
    assert all(sorted(r[:6]) == list(range(1, 7)) for r in items.tolist())
    narrow, narrow_scores, _ = constrained_beam_search(model, hist, codes, beam_size=2, top_k=4)
    assert (narrow[:, 2:] == 0).all() and np.isneginf(narrow_scores[:, 2:]).all()


def test_full_catalogue_has_no_invalid_prefixes():
    every = np.stack(np.meshgrid(*[np.arange(K)] * L, indexing="ij"), -1).reshape(-1, L)
    codes = np.vstack([np.zeros((1, L), dtype=np.int64), every])
    model = tiny_model(codes)
    _, _, stats = constrained_beam_search(model, torch.randint(1, len(every) + 1, (4, H)), codes, beam_size=8, top_k=8)
    assert stats["invalid_unconstrained_rate"] == 0.0


def test_rank_items_pads_and_truncates(setup):
    codes, model, hist = setup
    long_history = [1, 2, 3] + hist[2].tolist()  # longer than max_history: the first items are dropped
    df = pd.DataFrame({"user_id": [0, 1, 2], "history": [hist[0][hist[0] > 0].tolist(), [], long_history], "target": [1, 2, 3]})
    items, scores, _ = rank_items(model, df, codes, beam_size=6, top_k=4, device=torch.device("cpu"), batch_size=2)
    ref, ref_scores, _ = constrained_beam_search(model, hist[:3], codes, beam_size=6, top_k=4)
    np.testing.assert_array_equal(items, ref)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    np.testing.assert_array_equal(left_pad([[1, 2], [3, 4, 5, 6]], 3), [[0, 1, 2], [4, 5, 6]])
