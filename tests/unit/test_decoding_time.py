"""One-process decoding time of saved study models (tiny synthetic models, 50 items, K=4, L=3)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from unger.evaluation.decoding_time import decode, find_model, load_model, main
from unger.models.dual_code import DualCodeModel
from unger.models.generative import UngerModel

from .test_dual_code import COL, N, SEM, histories, tiny_config


def _save(model, config, path):
    path.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "model_config": config.to_dict(), "best_step": 1}, path)


@pytest.fixture
def saved(tmp_path):
    """A unified model with [c_dis] projected to 16-d (its saved config, like the pipeline's, leaves the
    width unset) and a dual-code model, saved as the study saves them."""
    torch.manual_seed(0)
    unified_config = tiny_config(use_distillation=True)
    unified = UngerModel(unified_config, SEM, np.random.default_rng(0).normal(size=(N + 1, 16)))
    dual = DualCodeModel(tiny_config(), SEM, COL)
    _save(unified, unified_config, tmp_path / "models/a_s1/generative_model.pt")
    _save(dual, tiny_config(), tmp_path / "models/b_s1/dual_code_model.pt")
    hist = histories(u=7)
    pd.DataFrame({"history": [[int(i) for i in row if i > 0] for row in hist.tolist()]}).to_parquet(tmp_path / "test.parquet")
    return tmp_path, unified.eval(), dual.eval()


def test_saved_models_decode_as_the_trained_ones(saved):
    tmp_path, unified, dual = saved
    hist = histories(u=7).numpy()
    cpu = torch.device("cpu")
    for run, original in (("a_s1", unified), ("b_s1", dual)):
        loaded = load_model(find_model(tmp_path / "models", run))
        assert type(loaded) is type(original)
        np.testing.assert_array_equal(decode(loaded, hist, 5, 4, 3, cpu), decode(original, hist, 5, 4, 3, cpu))


def test_main_times_every_run_in_turn_and_keeps_other_machines(saved):
    tmp_path, _, _ = saved
    out = tmp_path / "decoding_time.json"
    out.write_text(json.dumps({"GPU Z": {"runs": ["x", "y"]}}))
    report = main(["a_s1", "b_s1", "--models-dir", str(tmp_path / "models"), "--samples", str(tmp_path / "test.parquet"),
                   "--users", "0", "--repeats", "2", "--beam", "5", "--top-k", "4", "--batch-size", "3", "--out", str(out)])
    entries = json.loads(out.read_text())
    assert entries.pop("GPU Z") == {"runs": ["x", "y"]} and list(entries.values()) == [report]
    assert report["users"] == 7 and report["runs"] == ["a_s1", "b_s1"] and report["command"].endswith("--out " + str(out))
    assert all(len(s) == 2 and min(s) > 0 for s in report["seconds"].values())
    first, dual = report["summary"]["a_s1"], report["summary"]["b_s1"]
    assert first["over_first"] == 1.0 and first["over_first_std"] == 0.0
    seconds = np.asarray(report["seconds"]["b_s1"])
    assert dual["ms_per_user"] == pytest.approx(1000 * seconds.mean() / 7)
    assert dual["ms_per_user_std"] == pytest.approx(1000 * seconds.std(ddof=1) / 7)
    assert dual["over_first"] == pytest.approx(np.mean(seconds / np.asarray(report["seconds"]["a_s1"])))


def test_a_run_without_a_saved_model_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run 'missing_s1'.*generative_model.pt or .*dual_code_model.pt"):
        find_model(tmp_path, "missing_s1")
