"""Stage I fusion: MAL/AdaLN, InfoNCE, DIN scoring, sample building, training variants and resume."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from unger.models.fusion import (
    DIN,
    FusionConfig,
    FusionModel,
    ModalityAdaptationLayer,
    cross_modality_alignment_loss,
    integrated_embeddings,
)
from unger.data.sequences import build_training_samples, left_pad
from unger.training.fusion import train_fusion

NUM_ITEMS, NUM_USERS, SEM_DIM, DIM = 40, 60, 16, 8
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tensors here are tiny: one intra-op thread avoids OpenMP spin-waits that make these tests ~10x
    slower on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    """Synthetic users walking through items mostly in order (so there is something to learn)."""
    rng = np.random.default_rng(0)
    train_rows, valid_rows = [], []
    for user in range(1, NUM_USERS + 1):
        start, length = rng.integers(1, NUM_ITEMS + 1), rng.integers(5, 12)
        items = [int((start - 1 + k) % NUM_ITEMS) + 1 for k in range(length)]
        train_rows.append({"user_id": user, "items": items[:-2]})
        valid_rows.append({"user_id": user, "history": items[:-2][-20:], "target": items[-2]})
    semantic = rng.standard_normal((NUM_ITEMS + 1, SEM_DIM)).astype(np.float32)
    semantic[0] = 0.0
    return pd.DataFrame(train_rows), pd.DataFrame(valid_rows), semantic


def small_config(**overrides) -> FusionConfig:
    base = dict(embedding_dim=DIM, batch_size=16, align_batch_size=16, max_steps=6, eval_every=3, patience=100)
    return FusionConfig(**{**base, **overrides})


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="variant"):
        FusionConfig(variant="late_fusion")
    with pytest.raises(ValueError, match="similarity"):
        FusionConfig(similarity="l2")
    with pytest.raises(ValueError, match="untrained"):
        FusionConfig(use_cka=False, integrated="adapted_semantic")
    assert not FusionConfig(variant="concat").aligns
    assert FusionConfig().aligns and FusionConfig().integrated == "collaborative"


def test_mal_starts_as_layernorm_and_modulates_per_item():
    torch.manual_seed(0)
    mal = ModalityAdaptationLayer(SEM_DIM, DIM)
    x = torch.randn(5, SEM_DIM)
    out = mal(x)
    assert out.shape == (5, DIM)
    expected = F.layer_norm(mal.proj(x), (DIM,))
    assert torch.allclose(out, expected, atol=1e-6)
    # Once the modulation is trained, each item gets its own scale and shift, computed from W x + b.
    with torch.no_grad():
        mal.adaln.modulation.weight.normal_()
    projected = mal.proj(x)
    gamma, beta = mal.adaln.modulation(projected).chunk(2, dim=-1)
    assert torch.allclose(mal(x), F.layer_norm(projected, (DIM,)) * (1 + gamma) + beta, atol=1e-5)
    assert not torch.allclose(mal(x), expected, atol=1e-3)


def test_infonce_dot_matches_hand_computation():
    e_c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Similarity rows: [1, 1] (positive 1) and [0, 1] (positive 1).
    expected = (math.log(2.0) + math.log(1.0 + math.exp(-1.0))) / 2
    got = cross_modality_alignment_loss(e_c, e_t, tau=1.0, similarity="dot")
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_cosine_matches_hand_computation():
    e_c = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    e_t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # Cosine rows / tau=0.5: [2, 0, 2], [0, 2, 0], [sqrt2, sqrt2, sqrt2]; the diagonal is the positive.
    e2 = math.exp(2.0)
    row0 = -math.log(e2 / (e2 + 1.0 + e2))
    row1 = -math.log(e2 / (1.0 + e2 + 1.0))
    row2 = math.log(3.0)
    got = cross_modality_alignment_loss(e_c, e_t, tau=0.5, similarity="cosine")
    assert got.item() == pytest.approx((row0 + row1 + row2) / 3, abs=1e-6)


def _din_with_random_bias(max_history: int = 6) -> DIN:
    torch.manual_seed(1)
    din = DIN(NUM_ITEMS, DIM, max_history)
    with torch.no_grad():
        din.position_bias.normal_()
    return din


def test_din_scores_follow_the_formula_for_every_item():
    din = _din_with_random_bias()
    history = torch.tensor([[0, 0, 0, 0, 3, 7], [1, 2, 3, 4, 5, 6], [0, 0, 9, 9, 40, 2]])
    scores = din.score_all(history)
    assert scores.shape == (3, NUM_ITEMS + 1)
    assert torch.isneginf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()
    table, d = din.item_embedding.weight.detach(), DIM
    for b in range(3):
        keep = history[b] > 0
        h = table[history[b][keep]]
        logits = h @ table[1:].T / math.sqrt(d) + din.position_bias.detach()[keep].unsqueeze(1)
        expected = (torch.softmax(logits, dim=0) * (din.value(h) @ table[1:].T)).sum(0)
        assert torch.allclose(scores[b, 1:], expected, atol=1e-5)


def test_din_right_aligns_positions_whatever_the_padding_width():
    din = _din_with_random_bias(max_history=6)
    wide = din.score_all(torch.tensor([[0, 0, 0, 5, 6, 7]]))
    narrow = din.score_all(torch.tensor([[5, 6, 7]]))
    assert torch.allclose(wide, narrow, atol=1e-6)


def test_din_loss_is_cross_entropy_of_score_all():
    din = _din_with_random_bias()
    history = torch.tensor([[0, 0, 0, 0, 3, 7], [1, 2, 3, 4, 5, 6], [0, 0, 0, 11, 12, 13]])
    targets = torch.tensor([8, 7, 14])
    log_probs = torch.log_softmax(din.score_all(history), dim=1)
    expected = -log_probs[torch.arange(3), targets].mean()
    assert din(history, targets).item() == pytest.approx(expected.item(), abs=1e-5)


def test_build_training_samples_counts_and_left_padding():
    frame = pd.DataFrame({"user_id": [1, 2, 3, 4], "items": [[1, 2, 3, 4], [5, 6], [7], [8, 9, 10]]})
    histories, targets = build_training_samples(frame, max_history=2)
    assert histories.dtype == np.int64 and targets.dtype == np.int64
    np.testing.assert_array_equal(targets, [2, 3, 4, 6, 9, 10])
    np.testing.assert_array_equal(histories, [[0, 1], [1, 2], [2, 3], [0, 5], [0, 8], [8, 9]])
    np.testing.assert_array_equal(left_pad([[1, 2, 3], [4]], 2), [[2, 3], [0, 4]])


def test_integrated_embedding_choices_have_the_documented_shapes(data):
    _, _, semantic = data
    for integrated, width in [("collaborative", DIM), ("adapted_semantic", DIM), ("sum", DIM), ("concat", 2 * DIM)]:
        config = small_config(integrated=integrated)
        model = FusionModel(semantic, config)
        out = integrated_embeddings(model, semantic, config)
        assert out.shape == (NUM_ITEMS + 1, width) and out.dtype == np.float32
        assert not out[0].any()
    config = small_config(integrated="sum")
    model = FusionModel(semantic, config)
    e_c = model.din.item_embedding.weight.detach()[1:]
    e_t = model.adapted_semantic(torch.arange(1, NUM_ITEMS + 1)).detach()
    np.testing.assert_allclose(integrated_embeddings(model, semantic, config)[1:], (e_c + e_t).numpy(), atol=1e-6)


def test_model_drops_alignment_when_cka_is_off(data):
    _, _, semantic = data
    model = FusionModel(semantic, small_config(use_cka=False))
    history, targets, align = torch.tensor([[0, 1, 2]]), torch.tensor([3]), torch.arange(1, 9)
    out = model(history, targets, align)
    assert model.adapter is None and out["align_loss"].item() == 0.0
    assert out["loss"].item() == pytest.approx(out["seq_loss"].item())
    plain = FusionModel(semantic, small_config(use_mal=False))
    assert isinstance(plain.adapter, torch.nn.Linear)
    out = plain(history, targets, align)
    assert out["align_loss"].item() > 0
    expected = out["seq_loss"].item() + out["align_loss"].item()
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "variant, width",
    [("unger", DIM), ("collaborative_only", DIM), ("concat", 2 * DIM), ("semantic_only", SEM_DIM)],
)
def test_train_fusion_variants_return_finite_embeddings(data, variant, width):
    train, valid, semantic = data
    logged = []
    result = train_fusion(train, valid, semantic, small_config(variant=variant), CPU, log_metric=lambda *a: logged.append(a))
    assert result.integrated.shape == (NUM_ITEMS + 1, width)
    assert np.isfinite(result.integrated).all() and not result.integrated[0].any()
    if variant == "semantic_only":
        np.testing.assert_array_equal(result.integrated[1:], semantic[1:])
        assert result.collaborative is None and result.state_dict == {}
        return
    assert result.collaborative.shape == (NUM_ITEMS + 1, DIM) and np.isfinite(result.collaborative).all()
    assert (result.adapted_semantic is not None) == (variant == "unger")
    if variant == "unger":
        assert result.adapted_semantic.shape == (NUM_ITEMS + 1, DIM)
    assert [h["step"] for h in result.history] == [3.0, 6.0]
    assert set(result.best_metrics) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}
    assert result.best_step in (3, 6)
    names = {name for name, _, _ in logged}
    assert {"fusion/loss", "fusion/seq_loss", "fusion/align_loss", "fusion/val_ndcg@10"} <= names
    assert all(step in (3, 6) for _, _, step in logged)


def test_training_learns_the_synthetic_order(data):
    train, valid, semantic = data
    config = small_config(variant="collaborative_only", lr=1e-2, max_steps=60, eval_every=60)
    result = train_fusion(train, valid, semantic, config, CPU)
    # Random ranking of 40 items puts the target in the top 10 a quarter of the time.
    assert result.best_metrics["recall@10"] > 0.5


def test_early_stopping_and_rank_gating(data, tmp_path):
    train, valid, semantic = data
    logged = []
    # A negligible learning rate leaves the metrics flat, so every evaluation after the first is no gain.
    config = small_config(lr=1e-12, max_steps=50, eval_every=1, patience=2)
    result = train_fusion(
        train, valid, semantic, config, CPU, tmp_path / "ckpt.pt", lambda *a: logged.append(a), rank=1
    )
    assert [h["step"] for h in result.history] == [1.0, 2.0, 3.0]
    assert result.best_step == 1
    assert logged == [] and not (tmp_path / "ckpt.pt").exists()


def test_resumed_run_ends_with_the_same_weights(data, tmp_path, caplog):
    train, valid, semantic = data
    full = small_config(max_steps=8, eval_every=2)
    straight = train_fusion(train, valid, semantic, full, CPU, tmp_path / "a.pt")
    train_fusion(train, valid, semantic, small_config(max_steps=4, eval_every=2), CPU, tmp_path / "b.pt")
    halfway = torch.load(tmp_path / "b.pt", weights_only=True)
    assert halfway["step"] == 4
    part = tmp_path / "b.pt"
    with caplog.at_level(logging.INFO, logger="unger.training.fusion"):
        resumed = train_fusion(train, valid, semantic, full, CPU, part)
    assert f"Stage I resumed at step 4 from {part}" in caplog.text
    assert f"Stage I checkpoint at step 8 written to {part}" in caplog.text

    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in straight.state_dict:
        assert torch.equal(straight.state_dict[key], resumed.state_dict[key]), key
    assert straight.best_step == resumed.best_step and straight.best_metrics == resumed.best_metrics
    assert [h["step"] for h in resumed.history] == [2.0, 4.0, 6.0, 8.0]
    np.testing.assert_array_equal(straight.integrated, resumed.integrated)

    with pytest.raises(ValueError, match="different config"):
        train_fusion(train, valid, semantic, small_config(max_steps=8, eval_every=2, lr=5e-3), CPU, tmp_path / "b.pt")


def test_slim_copy_of_a_finished_stage_one_gives_the_same_result_and_trains_no_further(data, tmp_path):
    from unger.training.carry_checkpoint import slim_copy

    train, valid, semantic = data
    config = small_config(max_steps=4, eval_every=2)
    full = train_fusion(train, valid, semantic, config, CPU, tmp_path / "fusion-a.pt")
    slim = slim_copy(tmp_path / "fusion-a.pt", tmp_path / "carry")
    assert slim.stat().st_size < 0.6 * (tmp_path / "fusion-a.pt").stat().st_size
    again = train_fusion(train, valid, semantic, config, CPU, slim)
    for key in full.state_dict:
        assert torch.equal(full.state_dict[key], again.state_dict[key]), key
    assert again.best_step == full.best_step and again.history == full.history
    np.testing.assert_array_equal(full.integrated, again.integrated)
    with pytest.raises(ValueError, match="without optimizer state"):
        train_fusion(train, valid, semantic, small_config(max_steps=6, eval_every=2), CPU, slim)
    with pytest.raises(ValueError, match="already a slim copy"):
        slim_copy(slim, tmp_path / "twice")


def test_a_gpu_call_returns_the_stage_one_checkpoints_it_trained_slim_and_not_the_carried_ones(data, tmp_path):
    from unger.training.carry_checkpoint import carry_back, main

    train, valid, semantic = data
    folder, carried = tmp_path / "checkpoints", tmp_path / "carried"
    carried.mkdir()
    train_fusion(train, valid, semantic, small_config(max_steps=4, eval_every=2), CPU, folder / "fusion-new.pt")
    train_fusion(train, valid, semantic, small_config(max_steps=4, eval_every=2, seed=7), CPU, folder / "fusion-old.pt")
    (carried / "fusion-old.pt").write_bytes(b"")
    stopped = torch.load(folder / "fusion-new.pt", weights_only=True)
    stopped["config"]["max_steps"], stopped["bad_evals"] = 8, 0
    torch.save(stopped, folder / "fusion-stopped.pt")

    (folder / "fusion-new.pt").rename(folder / "stage-one-by-contents.pt")  # kinds are read, not named
    copies, left = carry_back(folder, tmp_path / "back", carried, 2**30, 5)
    assert [p.name for p in copies] == ["fusion-stopped.pt", "stage-one-by-contents.pt"] and left == []
    assert torch.load(copies[0], weights_only=True)["optimizer"] is not None
    assert torch.load(copies[1], weights_only=True)["optimizer"] is None
    assert carry_back(folder, tmp_path / "none", carried, 2**30, 1) == (
        [tmp_path / "none" / "fusion-stopped.pt"], [folder / "stage-one-by-contents.pt"])
    assert main(["back", str(tmp_path / "cli"), str(folder), "--skip", str(carried), "--max-files", "1"]) == 0
    assert [p.name for p in (tmp_path / "cli").iterdir()] == ["fusion-stopped.pt"]


def test_configurations_without_alignment_train_one_din_and_share_its_checkpoint(data, tmp_path):
    train, valid, semantic = data
    din_alone = [small_config(variant="collaborative_only"), small_config(variant="concat", alpha=3.0),
                 small_config(variant="unger", use_cka=False, tau=0.5)]
    results = [train_fusion(train, valid, semantic, config, CPU) for config in din_alone]
    for other in results[1:]:
        for key in results[0].state_dict:
            assert torch.equal(results[0].state_dict[key], other.state_dict[key]), key
    assert all(c.training_identity() == din_alone[0].training_identity() for c in din_alone)
    assert din_alone[0].training_identity()["variant"] == "collaborative_only"
    assert "alpha" not in din_alone[1].training_identity()
    aligned = small_config()
    assert aligned.training_identity() != small_config(alpha=3.0).training_identity()
    assert aligned.training_identity() != din_alone[0].training_identity()

    # A checkpoint written by one is finished training for the others (no new step), and an aligning
    # run refuses it.
    shared = tmp_path / "shared.pt"
    train_fusion(train, valid, semantic, din_alone[0], CPU, shared)
    written = shared.stat().st_mtime_ns
    concat = train_fusion(train, valid, semantic, din_alone[1], CPU, shared)
    assert shared.stat().st_mtime_ns == written and concat.best_step == results[1].best_step
    np.testing.assert_array_equal(concat.integrated, results[1].integrated)
    with pytest.raises(ValueError, match="different config"):
        train_fusion(train, valid, semantic, aligned, CPU, shared)


def test_a_din_alone_checkpoint_is_named_without_the_semantic_matrix_it_never_reads(data):
    from unger.pipelines.fusion.nodes import stage_one_checkpoint_key

    train, valid, semantic = data
    other = semantic + 1.0  # E_S recomputed elsewhere: same items, other bytes
    fewer = semantic[:-1]
    din_alone, aligned = small_config(variant="collaborative_only"), small_config()

    assert stage_one_checkpoint_key(din_alone, semantic, train, valid) == stage_one_checkpoint_key(din_alone, other, train, valid)
    assert stage_one_checkpoint_key(din_alone, semantic, train, valid) != stage_one_checkpoint_key(din_alone, fewer, train, valid)
    assert stage_one_checkpoint_key(aligned, semantic, train, valid) != stage_one_checkpoint_key(aligned, other, train, valid)
    longer = small_config(variant="collaborative_only", max_steps=din_alone.max_steps * 2)
    concat = small_config(variant="concat", alpha=3.0)
    assert stage_one_checkpoint_key(longer, semantic, train, valid) == stage_one_checkpoint_key(din_alone, other, train, valid)
    assert stage_one_checkpoint_key(concat, semantic, train, valid) == stage_one_checkpoint_key(din_alone, semantic, train, valid)


def test_stage_one_evaluation_reports_alignment_only_where_cka_trains(data):
    """Alignment training lifts E_C's retrieval of its own E_T well above chance (1/40 at hit@1)."""
    from unger.training.fusion import evaluate_stage_one

    train, valid, semantic = data
    splits = {"valid": valid}
    aligned = small_config(alpha=5.0, tau=0.1, lr=1e-2, max_steps=60, eval_every=60, align_batch_size=NUM_ITEMS)
    result = train_fusion(train, valid, semantic, aligned, CPU)
    out = evaluate_stage_one(result.state_dict, aligned, semantic, splits, CPU)
    assert out["alignment"]["items"] == NUM_ITEMS
    assert out["alignment"]["hit@1"] > 0.5 and out["alignment"]["median_rank"] <= 2
    untrained = evaluate_stage_one(train_fusion(train, valid, semantic, small_config(lr=1e-12), CPU).state_dict,
                                   small_config(lr=1e-12), semantic, splits, CPU)
    assert untrained["alignment"]["hit@1"] < 0.3
    din_alone = small_config(variant="collaborative_only")
    assert "alignment" not in evaluate_stage_one(train_fusion(train, valid, semantic, din_alone, CPU).state_dict,
                                                 din_alone, semantic, splits, CPU)
