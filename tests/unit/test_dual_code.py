"""EAGER-style dual-code baseline on tiny synthetic data (50 items, K=4, L=3, d=24)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from unger.inference.dual_code_search import dual_code_beam_search, merge_by_confidence
from unger.models.dual_code import DualCodeModel
from unger.models.generative import GenerativeConfig, UngerModel
from unger.training.dual_code import train_dual_code
from unger.training.generative import TrainConfig

N, K, L, H = 50, 4, 3, 6


def tiny_codes(seed, n=N, k=K, levels=L):
    rng = np.random.default_rng(seed)
    every = np.stack(np.meshgrid(*[np.arange(k)] * levels, indexing="ij"), -1).reshape(-1, levels)
    codes = np.zeros((n + 1, levels), dtype=np.int64)
    codes[1:] = every[rng.permutation(len(every))[:n]]
    return codes


def tiny_config(**kw):
    base = dict(d_model=24, ffn_dim=32, n_heads=2, encoder_layers=1, decoder_layers=2, codebook_size=K, max_history=H)
    return GenerativeConfig(**{**base, **kw})


SEM, COL = tiny_codes(0), tiny_codes(1)


def tiny_model(seed=0, **kw):
    torch.manual_seed(seed)
    return DualCodeModel(tiny_config(**kw), SEM, COL)


def histories(u=9, seed=5):
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, N + 1, (u, H), generator=g)
    hist[0, :3] = 0  # left-padded
    hist[1] = 0  # no history at all
    return hist


@pytest.mark.parametrize("history_tokens", ["code", "item"])
def test_forward_shapes_losses_and_shared_encoder(history_tokens):
    model = tiny_model(history_tokens=history_tokens)
    hist, tgt = histories(5), torch.randint(1, N + 1, (5,), generator=torch.Generator().manual_seed(1))
    out = model(hist, tgt)
    assert set(out) == {"loss", "gen_loss_semantic", "gen_loss_collaborative"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert torch.allclose(out["loss"], out["gen_loss_semantic"] + out["gen_loss_collaborative"])
    logits = model.logits(hist, tgt)
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"semantic": (5, L, K), "collaborative": (5, L, K)}
    # The semantic stream is a plain UngerModel: its logits are UngerModel's teacher forcing.
    assert torch.allclose(logits["semantic"], model.semantic.logits(hist, tgt), atol=1e-5)

    # The collaborative loss trains the shared encoder; no parameter is left without a gradient.
    out["gen_loss_collaborative"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.semantic.encoder.parameters())
    model.zero_grad()
    out = model(hist, tgt)
    out["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []

    # One encoder: the collaborative stream has none, and the count is the semantic UngerModel plus
    # a decoder-only stream.
    assert model.collaborative.encoder is None and model.collaborative.hist_pos_emb is None
    assert not any(k.startswith("collaborative.enc") for k in model.state_dict())
    torch.manual_seed(0)
    unified = UngerModel(tiny_config(history_tokens=history_tokens, use_distillation=False), SEM)
    encoder_side = sum(p.numel() for m in (unified.encoder, unified.enc_ln, unified.hist_pos_emb, unified.level_emb) if m is not None for p in m.parameters())
    assert model.num_parameters() == 2 * unified.num_parameters() - encoder_side


def test_config_and_validation():
    model = tiny_model(use_distillation=True)  # ignored
    assert model.config.use_distillation is False and model.config.num_levels == L
    assert "semantic.codes" in model.state_dict() and "collaborative.codes" in model.state_dict()
    opt = model.configure_optimizer(1e-3, 1e-7)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_parameters()
    with pytest.raises(ValueError, match="same items"):
        DualCodeModel(tiny_config(), SEM, COL[:-1])
    with pytest.raises(ValueError):
        DualCodeModel(tiny_config(), SEM, COL + K)  # codes outside the codebook


def test_merge_by_confidence():
    inf = -np.inf
    items_a = np.array([[3, 1, 2, 0], [5, 0, 0, 0]])
    scores_a = np.array([[-0.1, -0.5, -2.0, inf], [-1.0, inf, inf, inf]], dtype=np.float32)
    items_b = np.array([[1, 4, 3], [6, 5, 0]])
    scores_b = np.array([[-0.2, -0.3, -3.0], [-1.0, -0.5, inf]], dtype=np.float32)
    items, scores = merge_by_confidence(items_a, scores_a, items_b, scores_b, top_k=5)
    assert items.dtype == np.int64 and scores.dtype == np.float32 and items.shape == scores.shape == (2, 5)
    # Item 1 is in both lists: its better score (-0.2, stream b) counts; item 3 keeps -0.1 (stream a).
    np.testing.assert_array_equal(items[0], [3, 1, 4, 2, 0])
    np.testing.assert_allclose(scores[0], [-0.1, -0.2, -0.3, -2.0, inf])
    # Item 5 in both: max(-1.0, -0.5); a tie at -1.0 (item 6 vs item 5's a-score) is moot; padding at the end.
    np.testing.assert_array_equal(items[1], [5, 6, 0, 0, 0])
    np.testing.assert_allclose(scores[1], [-0.5, -1.0, inf, inf, inf])
    # Equal scores: list a first; truncation to top_k; padding item 0 is never returned even with a finite score.
    items, scores = merge_by_confidence([[7, 0]], [[-1.0, 0.0]], [[8, 9]], [[-1.0, -2.0]], top_k=2)
    np.testing.assert_array_equal(items, [[7, 8]])
    np.testing.assert_allclose(scores, [[-1.0, -1.0]])


@pytest.fixture(scope="module", params=[None, 10], ids=["heads_d_model_split", "head_dim_10"])
def searched(request):
    """A tiny model, its histories and every item's exact log-prob per stream; with T5-style heads too
    (``head_dim`` wider than d_model / n_heads), which the decoder-only stream's KV cache must follow."""
    model = tiny_model(head_dim=request.param).eval()
    hist = histories()
    every = torch.arange(1, N + 1)
    exact = [model.sequence_log_probs(hist[u : u + 1].expand(N, -1), every) for u in range(len(hist))]
    exact = {name: torch.stack([e[name] for e in exact]).numpy() for name in ("semantic", "collaborative")}  # (U, N)
    return model, hist, exact


def test_search_returns_valid_distinct_exactly_scored_items(searched):
    model, hist, exact = searched
    items, scores, stats = dual_code_beam_search(model, hist, beam_size=6, top_k=8, batch_size=4)
    assert items.shape == scores.shape == (9, 8) and items.dtype == np.int64 and scores.dtype == np.float32
    assert ((items >= 1) & (items <= N)).all()
    assert all(len(set(row)) == len(row) for row in items.tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # Every score is the item's exact sequence log-prob in one of the two streams.
    rows = np.arange(9)[:, None]
    sem, col = exact["semantic"][rows, items - 1], exact["collaborative"][rows, items - 1]
    assert (np.isclose(scores, sem, atol=1e-5) | np.isclose(scores, col, atol=1e-5)).all()
    assert {"seconds", "ms_per_user", "num_users", "stream_overlap"} <= set(stats) and stats["num_users"] == 9
    assert 0.0 <= stats["invalid_unconstrained_rate_semantic"] <= 1.0
    assert 0.0 <= stats["stream_overlap"] <= 1.0
    # Batching does not change the result, and the model's training mode is restored.
    model.train()
    again, again_scores, _ = dual_code_beam_search(model, hist, beam_size=6, top_k=8, batch_size=9)
    assert model.training
    model.eval()
    np.testing.assert_array_equal(again, items)
    np.testing.assert_allclose(again_scores, scores, atol=1e-5)


def test_wide_beam_equals_exhaustive_ranking(searched):
    """With beam >= N each stream's search is exact, and the max-merge of the two top-k lists is the
    exact top-k of max(log p_semantic, log p_collaborative) over the whole catalogue."""
    model, hist, exact = searched
    items, scores, _ = dual_code_beam_search(model, hist, beam_size=N, top_k=12)
    best = np.maximum(exact["semantic"], exact["collaborative"])
    order = np.argsort(-best, axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(items, order + 1)
    np.testing.assert_allclose(scores, np.take_along_axis(best, order, 1), atol=1e-5)


def test_codes_of_different_lengths():
    col = tiny_codes(2, k=8, levels=2)
    torch.manual_seed(0)
    model = DualCodeModel(tiny_config(codebook_size=8), SEM, col)
    assert model.config.num_levels is None and model.collaborative.config.num_levels == 2
    hist = histories(4)
    out = model(hist, torch.tensor([1, 2, 3, 4]))
    assert torch.isfinite(out["loss"])
    items, _, _ = dual_code_beam_search(model, hist, beam_size=N, top_k=5)
    assert ((items >= 1) & (items <= N)).all()


def successor_data(n_users=60, length=8, seed=3):
    """Every user walks the catalogue in order (item i is followed by i+1, N by 1): next item = f(last)."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(1, N + 1, size=n_users)
    walk = lambda s, n: [int((s - 1 + j) % N) + 1 for j in range(n)]
    train = pd.DataFrame({"user_id": range(n_users), "items": [walk(s, length) for s in starts]})
    valid_starts = rng.integers(1, N + 1, size=40)
    valid = pd.DataFrame({
        "user_id": range(40),
        "history": [walk(s, H) for s in valid_starts],
        "target": [walk(s, H + 1)[-1] for s in valid_starts],
    })
    return train, valid


def _train(max_steps, path=None, logs=None, **kw):
    train, valid = successor_data()
    settings = dict(batch_size=32, warmup_steps=5, eval_every=max_steps, eval_beam=10, log_every=10, seed=7, lr=3e-3)
    tcfg = TrainConfig(max_steps=max_steps, **{**settings, **kw})
    log = (lambda n, v, s: logs.append((n, v, s))) if logs is not None else None
    return train_dual_code(tiny_config(), tcfg, SEM, COL, train, valid, torch.device("cpu"), path, log)


def test_training_learns_a_successor_pattern():
    logs = []
    result = _train(300, logs=logs, log_every=20)
    chance = 5 / N  # recall@5 of a random ranking
    assert result.best_valid_metrics["recall@5"] > chance + 0.5, result.best_valid_metrics
    names = {n for n, _, _ in logs}
    assert {"generative/loss", "generative/gen_loss_semantic", "generative/gen_loss_collaborative", "generative/valid_ndcg_at_20"} <= names
    assert "generative/distill_loss" not in names
    assert all(math.isfinite(v) for _, v, _ in logs)
    losses = [v for n, v, _ in logs if n == "generative/loss"]
    assert losses[-1] < 0.5 * losses[0]
    model = DualCodeModel(tiny_config(), SEM, COL)
    model.load_state_dict(result.best_state)  # checkpoints are plain DualCodeModel state dicts


def _assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_gives_identical_weights(tmp_path):
    full = _train(8, tmp_path / "full.pt", eval_every=4)
    part = tmp_path / "part.pt"
    half = _train(4, part, eval_every=4)
    assert half.final_step == 4 and part.exists()
    resumed = _train(8, part, eval_every=4)
    assert resumed.final_step == 8 and [h["step"] for h in resumed.history] == [4, 8]
    _assert_states_equal(full.final_state, resumed.final_state)
    _assert_states_equal(full.best_state, resumed.best_state)
    assert full.history == resumed.history
