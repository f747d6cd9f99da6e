"""Stage II model and training loop on tiny synthetic data (50 items, K=4, L=3, d=24)."""

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from unger.models.generative import GenerativeConfig, UngerModel, distillation_loss, resolve_config, sample_negatives
from unger.data.sequences import build_training_samples
from unger.training.generative import TrainConfig, learning_rate, train_generative

N, K, L, H = 50, 4, 3, 6


def tiny_codes(seed=0, n=N):
    rng = np.random.default_rng(seed)
    every = np.stack(np.meshgrid(*[np.arange(K)] * L, indexing="ij"), -1).reshape(-1, L)
    codes = np.zeros((n + 1, L), dtype=np.int64)
    codes[1:] = every[rng.permutation(len(every))[:n]]
    return codes


def tiny_config(**kw):
    base = dict(d_model=24, ffn_dim=32, n_heads=2, encoder_layers=1, decoder_layers=2, codebook_size=K, max_history=H, num_negatives=8)
    return GenerativeConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    integrated = rng.normal(size=(N + 1, 16)).astype(np.float32)
    integrated[0] = 0
    return tiny_codes(), integrated


@pytest.fixture(scope="module")
def interactions():
    rng = np.random.default_rng(2)
    seqs = [list(rng.integers(1, N + 1, size=rng.integers(3, 9))) for _ in range(30)]
    train = pd.DataFrame({"user_id": range(30), "items": seqs})
    valid = pd.DataFrame({"user_id": range(30), "history": [s[-H:] for s in seqs], "target": rng.integers(1, N + 1, size=30)})
    return train, valid


def _model(data, **kw):
    torch.manual_seed(0)
    codes, integrated = data
    return UngerModel(tiny_config(**kw), codes, integrated)


def _batch(b=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, N + 1, (b, H), generator=g)
    hist[0, :4] = 0  # a left-padded row
    return hist, torch.randint(1, N + 1, (b,), generator=g)


@pytest.mark.parametrize("history_tokens", ["code", "item"])
def test_forward_shapes_finite_loss_and_gradients(data, history_tokens):
    model = _model(data, history_tokens=history_tokens)
    hist, tgt = _batch()
    out = model(hist, tgt)
    assert set(out) == {"loss", "gen_loss", "distill_loss"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert torch.allclose(out["loss"], out["gen_loss"] + out["distill_loss"])
    assert model.logits(hist, tgt).shape == (5, L, K)
    memory, mask = model.encode(hist)
    s = H * L if history_tokens == "code" else H
    assert memory.shape == (5, s, 24) and mask.shape == (5, s)
    out["loss"].backward()
    assert model.dis_proj is not None  # integrated embeddings are 16-d, the model 24-d
    assert model.tok_emb.weight.grad[model.dis_token].abs().sum() > 0  # c_dis is trained
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_no_projection_when_widths_match(data):
    codes, _ = data
    model = UngerModel(tiny_config(), codes, np.random.default_rng(0).normal(size=(N + 1, 24)).astype(np.float32))
    assert model.dis_proj is None and model.config.integrated_dim == 24


def test_without_distillation_needs_no_embeddings(data):
    codes, _ = data
    model = UngerModel(tiny_config(use_distillation=False), codes)
    out = model(*_batch())
    assert out["distill_loss"] == 0 and torch.equal(out["loss"], out["gen_loss"])


def test_config_resolution_and_validation(data):
    codes, integrated = data
    model = UngerModel(tiny_config(), codes, integrated)
    assert model.config.num_levels == L and model.config.integrated_dim == 16
    assert "codes" in model.state_dict() and "integrated" not in model.state_dict()
    assert resolve_config(tiny_config(), codes, integrated) == model.config  # what the node saves
    bare = UngerModel(tiny_config(use_distillation=False), codes)
    assert bare.config == resolve_config(tiny_config(use_distillation=False), codes)
    assert bare.config.integrated_dim == bare.config.d_model and bare.dis_proj is None
    rebuilt = UngerModel(GenerativeConfig(**model.config.to_dict()), codes)  # loads without the embeddings
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError):
        UngerModel(tiny_config(num_levels=L + 1), codes, integrated)
    with pytest.raises(ValueError):
        UngerModel(tiny_config(codebook_size=2), codes, integrated)
    for bad in (dict(n_heads=5), dict(history_tokens="word"), dict(tau=0.0), dict(dropout=1.0), dict(activation="tanh")):
        with pytest.raises(ValueError):
            tiny_config(**bad)


def test_distillation_loss_matches_hand_computation():
    c = torch.tensor([[1.0, 0.5]])
    pos = torch.tensor([[0.2, -0.1]])
    neg = torch.tensor([[0.3, 0.4], [-1.0, 2.0]])
    tau = 0.5
    s_pos = (1.0 * 0.2 + 0.5 * -0.1) / tau  # 0.3
    s_neg = [(1.0 * 0.3 + 0.5 * 0.4) / tau, (1.0 * -1.0 + 0.5 * 2.0) / tau]  # 1.0, 0.0
    expected = -math.log(math.exp(s_pos) / (math.exp(s_pos) + sum(math.exp(s) for s in s_neg)))
    assert distillation_loss(c, pos, neg, tau).item() == pytest.approx(expected, rel=1e-6)
    # per-sample (B, M, d) negatives give the same value as shared (M, d) ones
    assert distillation_loss(c, pos, neg[None], tau).item() == pytest.approx(expected, rel=1e-6)


def test_negatives_never_hit_the_target():
    targets = torch.arange(1, N + 1).repeat(20)
    neg = sample_negatives(targets, N, 64, torch.Generator().manual_seed(0))
    assert neg.shape == (len(targets), 64)
    assert neg.min() >= 1 and neg.max() <= N
    assert not (neg == targets[:, None]).any()
    assert len(torch.unique(neg)) == N  # every item is drawn somewhere


def test_decoder_is_causal(data):
    model = _model(data).eval()
    hist, tgt = _batch()
    memory, mask = model.encode(hist)
    kv = model.cross_kv(memory)
    tokens = torch.cat([torch.full((5, 1), model.bos_token), model.code_tokens[tgt], torch.full((5, 1), model.dis_token)], 1)
    changed = tokens.clone()
    changed[:, 2] = model.code_token_ids((model.codes[tgt][:, 1] + 1) % K, 1)  # another level-2 code
    a, _ = model.decode(tokens[:, None], 0, kv, mask)
    b, _ = model.decode(changed[:, None], 0, kv, mask)
    assert torch.allclose(a[:, :, :2], b[:, :, :2], atol=1e-6)
    assert not torch.allclose(a[:, :, 2:], b[:, :, 2:], atol=1e-4)


def test_padding_is_masked(data):
    """A left-padded history scores exactly like the same history without the padding columns."""
    model = _model(data).eval()
    hist, tgt = _batch()
    assert torch.allclose(model.logits(hist[:1], tgt[:1]), model.logits(hist[:1, 4:], tgt[:1]), atol=1e-5)
    empty = torch.zeros(2, H, dtype=torch.long)
    assert torch.isfinite(model.logits(empty, tgt[:2])).all()


@pytest.mark.parametrize("head_dim", [None, 20])
def test_kv_cache_steps_match_teacher_forcing(data, head_dim):
    model = _model(data, head_dim=head_dim).eval()
    hist, tgt = _batch()
    expected = torch.log_softmax(model.logits(hist, tgt), -1)
    memory, mask = model.encode(hist)
    kv = model.cross_kv(memory)
    token, cache = torch.full((5, 1), model.bos_token), None
    for level in range(L):
        logp, cache = model.decode_step(token, level, kv, mask, cache)
        assert torch.allclose(logp[:, 0], expected[:, level], atol=1e-5)
        token = model.code_token_ids(model.codes[tgt][:, level : level + 1], level)


def test_head_dim_widens_attention_only(data):
    """T5-style heads: n_heads * head_dim inside attention, d_model everywhere else."""
    wide, default = _model(data, head_dim=20), _model(data)
    attn = wide.decoder[0].cross_attn
    assert attn.q_proj.weight.shape == (40, 24) and attn.out_proj.weight.shape == (24, 40)
    assert wide.num_parameters() > default.num_parameters()
    assert GenerativeConfig(d_model=96, n_heads=5, head_dim=64).head_dim == 64  # 96 % 5 is fine with head_dim
    with pytest.raises(ValueError, match="head_dim"):
        GenerativeConfig(d_model=96, n_heads=5)
    with pytest.raises(ValueError, match="head_dim"):
        GenerativeConfig(head_dim=0)


def test_build_training_samples():
    train = pd.DataFrame({"user_id": [1, 2, 3], "items": [[5, 6, 7], [9], [1, 2, 3, 4, 8]]})
    hist, tgt = build_training_samples(train, max_history=2)
    assert hist.dtype == np.int64 and tgt.dtype == np.int64
    assert len(tgt) == 2 + 0 + 4
    np.testing.assert_array_equal(tgt, [6, 7, 2, 3, 4, 8])
    np.testing.assert_array_equal(hist, [[0, 5], [5, 6], [0, 1], [1, 2], [2, 3], [3, 4]])


def test_learning_rate_schedules():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, warmup_init_lr=1e-7, max_steps=110)
    assert learning_rate(0, cfg) == pytest.approx(1e-7)
    assert learning_rate(5, cfg) == pytest.approx(1e-7 + (1e-3 - 1e-7) / 2)
    assert learning_rate(10, cfg) == learning_rate(5000, cfg) == 1e-3
    cosine = replace(cfg, lr_schedule="cosine")
    assert learning_rate(5, cosine) == learning_rate(5, cfg)
    assert learning_rate(10, cosine) == pytest.approx(1e-3)
    assert learning_rate(60, cosine) == pytest.approx(5e-4)
    assert learning_rate(110, cosine) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(200, cosine) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


def _train(data, interactions, max_steps, path=None, logs=None, model=None, **kw):
    codes, integrated = data
    train, valid = interactions
    settings = dict(batch_size=16, warmup_steps=3, eval_every=4, eval_beam=5, log_every=2, seed=7)
    tcfg = TrainConfig(max_steps=max_steps, **{**settings, **kw})
    log = (lambda n, v, s: logs.append((n, v, s))) if logs is not None else None
    return train_generative(tiny_config(**(model or {})), tcfg, codes, integrated, train, valid, torch.device("cpu"),
                            path, log)


def _assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_seeded_runs_identical_and_logged(data, interactions):
    logs = []
    r1 = _train(data, interactions, 8, logs=logs)
    r2 = _train(data, interactions, 8)
    _assert_states_equal(r1.final_state, r2.final_state)
    _assert_states_equal(r1.best_state, r2.best_state)
    assert [h["step"] for h in r1.history] == [4, 8] and r1.best_step in (4, 8)
    assert r1.best_valid_metrics == r2.best_valid_metrics
    names = {n for n, _, _ in logs}
    assert {"generative/loss", "generative/gen_loss", "generative/distill_loss", "generative/lr", "generative/valid_ndcg_at_20"} <= names
    assert all(math.isfinite(v) for _, v, _ in logs)


def test_resume_gives_identical_weights(data, interactions, tmp_path, caplog):
    full = _train(data, interactions, 8, tmp_path / "full.pt")
    part = tmp_path / "part.pt"
    half = _train(data, interactions, 4, part)
    assert half.final_step == 4 and part.exists()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="unger.training.checkpoint"):
        resumed = _train(data, interactions, 8, part)
    assert resumed.final_step == 8
    assert f"resumed at step 4 from {part}" in caplog.text and f"checkpoint at step 8 written to {part}" in caplog.text
    _assert_states_equal(full.final_state, resumed.final_state)
    _assert_states_equal(full.best_state, resumed.best_state)
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(part, weights_only=True)
    for ga, gb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        _assert_states_equal(ga, gb)
    assert a["history"] == b["history"] and a["step"] == b["step"] == 8
    with pytest.raises(ValueError, match="other training settings"):
        _train(data, interactions, 12, part, lr=5e-4)
    with pytest.raises(ValueError, match="select_metric"):  # its best-so-far was chosen on another metric
        _train(data, interactions, 12, part, select_metric="ndcg@10")


class _Stop(Exception):
    """Stands in for a kill: raised from the metric logger at a given step."""


def test_checkpoint_between_evaluations_resumes_to_identical_weights(data, interactions, tmp_path):
    codes, integrated = data
    train, valid = interactions
    tcfg = TrainConfig(max_steps=8, batch_size=16, warmup_steps=3, eval_every=4, eval_beam=5, log_every=2, seed=7)
    full = train_generative(tiny_config(), tcfg, codes, integrated, train, valid, torch.device("cpu"))

    def stop_at_8(name, value, step):
        if step == 8:
            raise _Stop

    part = tmp_path / "part.pt"
    with pytest.raises(_Stop):  # a checkpoint at every logging step; killed before the step-8 one
        train_generative(tiny_config(), tcfg, codes, integrated, train, valid, torch.device("cpu"), part, stop_at_8,
                         checkpoint_every_s=1e-9)
    ckpt = torch.load(part, weights_only=True)
    assert ckpt["step"] == 6 and [h["step"] for h in ckpt["history"]] == [4]  # between two evaluations
    resumed = train_generative(tiny_config(), tcfg, codes, integrated, train, valid, torch.device("cpu"), part)
    assert resumed.final_step == 8 and [h["step"] for h in resumed.history] == [4, 8]
    _assert_states_equal(full.final_state, resumed.final_state)
    _assert_states_equal(full.best_state, resumed.best_state)
    assert full.best_valid_metrics == resumed.best_valid_metrics


def test_cosine_run_resumes_only_with_its_length(data, interactions, tmp_path):
    logs = []
    full = _train(data, interactions, 8, tmp_path / "full.pt", logs=logs, lr_schedule="cosine")
    lrs = [v for n, v, _ in logs if n == "generative/lr"]
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12) and lrs[1] > lrs[2] > lrs[3]
    with pytest.raises(ValueError, match="max_steps"):
        _train(data, interactions, 12, tmp_path / "full.pt", lr_schedule="cosine")
    assert full.final_step == 8


@pytest.mark.parametrize("group, setting, other, match", [
    ("train_config", "lr_schedule", {"lr_schedule": "cosine"}, "lr_schedule"),
    ("config", "head_dim", {"model": {"head_dim": 20}}, r"another model config: \['head_dim'\]"),
])
def test_checkpoint_without_an_added_setting_resumes_as_its_default(data, interactions, tmp_path, group, setting,
                                                                     other, match):
    path = tmp_path / "old.pt"
    _train(data, interactions, 4, path)
    ckpt = torch.load(path, weights_only=True)
    del ckpt[group][setting]  # as written before the setting existed
    torch.save(ckpt, path)
    assert _train(data, interactions, 8, path).final_step == 8
    with pytest.raises(ValueError, match=match):
        _train(data, interactions, 8, path, **other)


def test_checkpoint_name_settings():
    from unger.pipelines.generative.nodes import checkpoint_model_config, checkpoint_trajectory
    from unger.training.generative import trajectory_fields

    constant = checkpoint_trajectory(TrainConfig())
    assert "lr_schedule" not in constant and "max_steps" not in constant and "lr" in constant
    # the name and the resume check read one list (less the settings added at their old value)
    assert set(constant) == set(trajectory_fields(TrainConfig())) - {"lr_schedule"}
    cosine = checkpoint_trajectory(TrainConfig(lr_schedule="cosine"))
    assert cosine["lr_schedule"] == "cosine" and cosine["max_steps"] == TrainConfig().max_steps
    # a model setting added later is left out of the name at its old value, kept at any other
    assert "head_dim" not in checkpoint_model_config(GenerativeConfig())
    assert checkpoint_model_config(GenerativeConfig(head_dim=64))["head_dim"] == 64


# The settings that named Stage II checkpoints when the first study runs were made. A setting added since
# must enter ``unger.params.ADDED_SETTINGS`` at the value that behaves as before it existed; otherwise every
# existing checkpoint gets a new name and stops resuming, and every study record a new fingerprint.
NAMED_MODEL_SETTINGS = {"activation", "beta", "codebook_size", "d_model", "decoder_layers", "dropout", "encoder_layers",
                        "ffn_dim", "history_tokens", "integrated_dim", "max_history", "n_heads", "num_levels",
                        "num_negatives", "tau", "use_distillation"}
NAMED_TRAIN_SETTINGS = {"batch_size", "lr", "seed", "select_metric", "warmup_init_lr", "warmup_steps", "weight_decay"}


def test_a_new_setting_at_its_default_keeps_checkpoint_names():
    from unger.pipelines.generative.nodes import checkpoint_model_config, checkpoint_trajectory

    why = "see the comment on NAMED_MODEL_SETTINGS"
    assert set(checkpoint_model_config(GenerativeConfig())) == NAMED_MODEL_SETTINGS, why
    assert set(checkpoint_trajectory(TrainConfig())) == NAMED_TRAIN_SETTINGS, why


def test_training_reduces_loss(data, interactions):
    logs = []
    _train(data, interactions, 40, logs=logs, lr=3e-3, eval_every=40, log_every=10)
    losses = [v for n, v, _ in logs if n == "generative/loss"]
    assert losses[-1] < losses[0]


def test_train_config_validation():
    with pytest.raises(ValueError):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError):
        TrainConfig(select_metric="mrr")
    cfg = replace(TrainConfig(), eval_users=100)
    assert cfg.eval_users == 100


def test_selection_keeps_best_and_stops_on_patience(data):
    from unger.training.checkpoint import Selection

    model = _model(data)
    sel = Selection("ndcg@20", patience=2)
    assert sel.update(4, {"ndcg@20": 0.1}, model)
    assert not sel.update(8, {"ndcg@20": 0.1}, model)  # a tie keeps the earlier weights
    assert sel.best_step == 4 and sel.bad_evals == 1 and not sel.stopped
    assert sel.update(12, {"ndcg@20": 0.2}, model) and sel.bad_evals == 0
    assert not sel.update(16, {"ndcg@20": 0.0}, model) and not sel.stopped
    assert not sel.update(20, {"ndcg@20": 0.0}, model) and sel.stopped
    assert [h["step"] for h in sel.history] == [4, 8, 12, 16, 20] and sel.best_metrics == {"ndcg@20": 0.2}
    _assert_states_equal(sel.best_state, model.state_dict())
    state = sel.state()
    assert list(state) == ["best_step", "best_metrics", "best_state", "history", "bad_evals", "stopped_early"]
    again = Selection("ndcg@20", patience=2)
    again.load({"step": 20, **state})  # a whole checkpoint's extra keys are ignored
    assert again.state() is not state and again.best_state is sel.best_state
    assert (again.best_step, again.best_metrics, again.history, again.bad_evals, again.stopped) == (
        sel.best_step, sel.best_metrics, sel.history, sel.bad_evals, sel.stopped)


def test_slim_copies_of_finished_runs_and_whole_copies_of_unfinished_ones(data, interactions, tmp_path):
    from unger.training.carry_checkpoint import carry_back, main, slim_copy

    folder = tmp_path / "checkpoints"
    done = _train(data, interactions, 8, folder / "generative-done.pt")
    _train(data, interactions, 4, folder / "generative-half.pt")
    # Finished under its own 4 steps; with a budget of 8 it is what a run stopped at a deadline leaves.
    ckpt = torch.load(folder / "generative-half.pt", weights_only=True)
    ckpt["train_config"]["max_steps"] = 8
    torch.save(ckpt, folder / "generative-half.pt")

    with pytest.raises(ValueError, match="before its run finished"):
        slim_copy(folder / "generative-half.pt", tmp_path / "carry")
    slim = slim_copy(folder / "generative-done.pt", tmp_path / "carry")
    again = _train(data, interactions, 8, slim)
    _assert_states_equal(done.best_state, again.best_state)
    assert again.best_valid_metrics == done.best_valid_metrics and again.history == done.history
    with pytest.raises(ValueError, match="without optimizer state"):
        _train(data, interactions, 12, slim)

    # Finished Stage II checkpoints (done) stay behind: only Stage I ones come back slim.
    assert carry_back(folder, tmp_path / "back", None, 2**30, 5) == ([tmp_path / "back" / "generative-half.pt"], [])
    assert carry_back(folder, tmp_path / "none", None, 10, 5) == ([], [folder / "generative-half.pt"])
    assert main(["back", str(tmp_path / "cli"), str(folder)]) == 0
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["generative-half.pt"]


def test_checkpoint_clock():
    from unger.training.checkpoint import CheckpointClock

    assert not CheckpointClock(0).due()  # 0: only at evaluations
    clock = CheckpointClock(1e-9)
    assert clock.due()
    assert not CheckpointClock(3600).due()
    with pytest.raises(ValueError, match="checkpoint_every_s"):
        CheckpointClock(-1)
