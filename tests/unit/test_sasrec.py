"""SASRec-CE model and training loop on tiny synthetic data (40 items walked i -> i+1 with noise)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from unger.data.sequences import left_pad
from unger.evaluation.metrics import evaluate_rankings
from unger.models.sasrec import SASRec, SASRecConfig
from unger.training.sasrec import SASRecTrainConfig, build_windows, rank_all_items, train_sasrec

N, H = 40, 8


def tiny_config(**kw):
    return SASRecConfig(**{**dict(hidden=32, layers=1, heads=2, dropout=0.1, max_history=H), **kw})


def _model(**kw):
    torch.manual_seed(0)
    return SASRec(tiny_config(**kw), N)


@pytest.fixture(scope="module")
def walks():
    """200 users walking i -> i+1 (mod N) with 10% random jumps; validation asks for the next step."""
    rng = np.random.default_rng(0)
    seqs, hist, tgt = [], [], []
    for _ in range(200):
        item = int(rng.integers(1, N + 1))
        seq = [item]
        for _ in range(int(rng.integers(5, 20))):
            item = int(rng.integers(1, N + 1)) if rng.random() < 0.1 else item % N + 1
            seq.append(item)
        seqs.append(seq)
        hist.append(seq)
        tgt.append(seq[-1] % N + 1)
    train = pd.DataFrame({"user_id": range(200), "items": seqs})
    valid = pd.DataFrame({"user_id": range(200), "history": hist, "target": tgt})
    return train, valid


def _train(walks, max_steps, path=None, logs=None, model_kw=None, **kw):
    train, valid = walks
    settings = dict(batch_size=32, eval_every=10, log_every=5, seed=7, eval_batch_size=64)
    tcfg = SASRecTrainConfig(max_steps=max_steps, **{**settings, **kw})
    log = (lambda n, v, s: logs.append((n, v, s))) if logs is not None else None
    return train_sasrec(tiny_config(**(model_kw or {})), tcfg, train, valid, N, torch.device("cpu"), path, log)


def _assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_forward_shapes_and_gradients():
    model = _model()
    hist = torch.randint(1, N + 1, (3, H))
    hist[0, :5] = 0
    hidden = model(hist)
    assert hidden.shape == (3, H, 32)
    assert model.logits(hidden).shape == (3, H, N + 1)
    loss = model.loss(hist[:, :-1], hist[:, 1:])
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert model.item_emb.weight.grad[0].abs().sum() == 0  # padding embedding is never trained


def test_causal_and_padding_invariant():
    model = _model().eval()
    hist = torch.randint(1, N + 1, (2, H))
    changed = hist.clone()
    changed[:, 5] = changed[:, 5] % N + 1
    a, b = model(hist), model(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)  # the past does not see the future
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-4)
    # A history scores the same whatever the padding width, and whatever the padding "sees".
    short = hist[:, 3:]
    padded = torch.cat([torch.zeros(2, 3, dtype=torch.long), short], dim=1)
    assert torch.allclose(model(short), model(padded)[:, 3:], atol=1e-5)
    empty = torch.zeros(2, H, dtype=torch.long)
    assert torch.isfinite(model(empty)).all()


def test_loss_ignores_padding_targets():
    model = _model().eval()
    g = torch.Generator().manual_seed(3)
    hist = torch.randint(1, N + 1, (4, H), generator=g)
    tgt = torch.randint(1, N + 1, (4, H), generator=g)
    hist[0, :3] = 0
    tgt[0, :3] = 0
    tgt[2, 6] = 0  # a target hole inside a row is ignored too
    keep = tgt > 0
    logits = model.logits(model(hist))
    expected = F.cross_entropy(logits[keep], tgt[keep])
    assert torch.allclose(model.loss(hist, tgt), expected, atol=1e-6)
    # Averaged over real targets only: adding an all-padding row changes nothing.
    more_h = torch.cat([hist, torch.zeros(1, H, dtype=torch.long)])
    more_t = torch.cat([tgt, torch.zeros(1, H, dtype=torch.long)])
    assert torch.allclose(model.loss(more_h, more_t), expected, atol=1e-6)
    # A manual full-softmax CE of one position (logsumexp over items 1..N only).
    row = model(hist)[1, 4]
    scores = row @ model.item_emb.weight[1:].T
    manual = torch.logsumexp(scores, 0) - scores[tgt[1, 4] - 1]
    one = torch.zeros_like(tgt)
    one[1, 4] = tgt[1, 4]
    assert torch.allclose(model.loss(hist, one), manual, atol=1e-5)


def test_tied_logits_never_rank_padding():
    model = _model()
    with torch.no_grad():
        model.item_emb.weight[0] = 100.0  # even a huge padding row cannot win
    logits = model.logits(model(torch.randint(1, N + 1, (5, H))))
    assert torch.isneginf(logits[..., 0]).all()
    assert torch.isfinite(logits[..., 1:]).all()
    assert (logits.argmax(-1) > 0).all()
    hist = left_pad([[1, 2, 3], [], [7] * 20], H)
    ranked = rank_all_items(model, hist, top_k=N, batch_size=2)
    assert ranked.shape == (3, N) and ranked.min() >= 1 and ranked.max() <= N
    assert all(len(set(r)) == N for r in ranked)  # every item exactly once, item 0 never
    assert model.training  # the mode is restored


def test_rank_all_items_shape_and_order():
    model = _model()
    hist = left_pad([[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]], H)
    ranked = rank_all_items(model, hist, top_k=20, batch_size=2)
    assert ranked.shape == (3, 20) and ranked.dtype == np.int64
    assert all(len(set(r)) == 20 for r in ranked)
    model.eval()
    scores = model.logits(model(torch.as_tensor(hist))[:, -1]).detach()
    top = scores.topk(20, dim=1).indices.numpy()
    np.testing.assert_array_equal(ranked, top)
    # Wider histories keep their last max_history columns.
    wide = np.concatenate([np.full((3, 4), 9), hist], axis=1)
    np.testing.assert_array_equal(rank_all_items(model, wide, top_k=20), ranked)
    with pytest.raises(ValueError):
        rank_all_items(model, hist, top_k=N + 1)


def test_build_windows():
    seqs = pd.DataFrame({"items": [[1, 2, 3, 4, 5, 6, 7], [8, 9], [10]]})
    inputs, targets = build_windows(seqs, 3)
    # 7 items, H=3: windows [4..7] and [1..4] (sharing item 4), oldest first; [8, 9]; [10] gives none.
    np.testing.assert_array_equal(inputs, [[1, 2, 3], [4, 5, 6], [0, 0, 8]])
    np.testing.assert_array_equal(targets, [[2, 3, 4], [5, 6, 7], [0, 0, 9]])
    last_in, last_tgt = build_windows(seqs, 3, windows="last")
    np.testing.assert_array_equal(last_in, [[4, 5, 6], [0, 0, 8]])
    np.testing.assert_array_equal(last_tgt, [[5, 6, 7], [0, 0, 9]])
    # Every transition is a target exactly once.
    _, tg = build_windows(pd.DataFrame({"items": [list(range(1, 30))]}), 5)
    assert sorted(tg[tg > 0].tolist()) == list(range(2, 30))


def test_config_validation():
    for bad in (dict(hidden=0), dict(layers=0), dict(heads=0), dict(max_history=0), dict(hidden=30, heads=4),
                dict(dropout=1.0), dict(dropout=-0.1), dict(ffn_dim=0), dict(activation="tanh")):
        with pytest.raises(ValueError):
            SASRecConfig(**bad)
    assert SASRecConfig().ffn_width == 64 and SASRecConfig(ffn_dim=128).ffn_width == 128
    for bad in (dict(batch_size=0), dict(max_steps=0), dict(eval_every=0), dict(patience=-1), dict(lr=0),
                dict(weight_decay=-1), dict(select_metric="mrr"), dict(windows="random")):
        with pytest.raises(ValueError):
            SASRecTrainConfig(**bad)
    with pytest.raises(ValueError):
        SASRec(SASRecConfig(), 1)


def test_optimizer_groups():
    model = _model()
    opt = model.configure_optimizer(1e-3, 0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_learns_the_walk(walks):
    logs = []
    result = _train(walks, 200, logs=logs, lr=3e-3, batch_size=64, eval_every=100, log_every=1)
    chance = 10 / N
    assert result.best_valid_metrics["recall@10"] > 3 * chance  # 0.25 by chance
    assert result.best_valid_metrics["recall@10"] > 0.9  # the next step is a function of the last item
    losses = [v for n, v, _ in logs if n == "sasrec/loss"]
    assert abs(losses[0] - math.log(N)) < 0.1  # N(0, 0.02) init: near-uniform scores at the start
    assert np.mean(losses[-20:]) < losses[0] - 2.0
    names = {n for n, _, _ in logs}
    assert {"sasrec/loss", "sasrec/steps_per_s", "sasrec/valid_ndcg_at_10", "sasrec/valid_recall_at_20"} <= names
    assert [h["step"] for h in result.history] == [100, 200]
    # The best state really is the reported one.
    model = SASRec(tiny_config(), N)
    model.load_state_dict(result.best_state)
    _, valid = walks
    ranked = rank_all_items(model, left_pad(valid["history"].tolist(), H))
    assert evaluate_rankings(ranked, valid["target"].to_numpy()) == result.best_valid_metrics


def test_resume_gives_identical_weights(walks, tmp_path):
    full = _train(walks, 20, tmp_path / "full.pt")
    part = tmp_path / "part.pt"
    half = _train(walks, 10, part)
    assert half.final_step == 10 and part.exists()
    resumed = _train(walks, 20, part)
    assert resumed.final_step == 20
    _assert_states_equal(full.final_state, resumed.final_state)
    _assert_states_equal(full.best_state, resumed.best_state)
    assert not all(torch.equal(full.final_state[k], half.final_state[k]) for k in full.final_state)
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(part, weights_only=True)
    for ga, gb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        _assert_states_equal(ga, gb)
    assert a["history"] == b["history"] and a["step"] == b["step"] == 20
    with pytest.raises(ValueError, match="other training settings"):
        _train(walks, 30, part, lr=5e-4)
    with pytest.raises(ValueError, match="another model config"):
        _train(walks, 30, part, model_kw=dict(dropout=0.0))


def test_checkpoint_between_evaluations_resumes_to_identical_weights(walks, tmp_path):
    train, valid = walks
    tcfg = SASRecTrainConfig(max_steps=20, batch_size=32, eval_every=10, log_every=5, seed=7, eval_batch_size=64)
    full = _train(walks, 20)

    class Stop(Exception):
        pass

    def stop_at_20(name, value, step):
        if step == 20:
            raise Stop

    part = tmp_path / "part.pt"
    with pytest.raises(Stop):  # a checkpoint at every logging step; killed before the step-20 one
        train_sasrec(tiny_config(), tcfg, train, valid, N, torch.device("cpu"), part, stop_at_20,
                     checkpoint_every_s=1e-9)
    assert torch.load(part, weights_only=True)["step"] == 15
    resumed = _train(walks, 20, part)
    assert resumed.final_step == 20
    _assert_states_equal(full.final_state, resumed.final_state)
    _assert_states_equal(full.best_state, resumed.best_state)


def test_seeded_runs_identical_and_global_rng_untouched(walks):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    r1 = _train(walks, 10)
    assert torch.equal(torch.get_rng_state(), before)
    r2 = _train(walks, 10)
    _assert_states_equal(r1.final_state, r2.final_state)
    assert r1.best_valid_metrics == r2.best_valid_metrics


def test_early_stopping(walks):
    # lr tiny enough that nothing improves after the first evaluation: stop after `patience` evals.
    result = _train(walks, 100, lr=1e-9, eval_every=5, patience=2)
    assert result.stopped_early
    assert result.final_step < 100 and result.best_step == 5
