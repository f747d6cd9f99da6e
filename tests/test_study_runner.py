"""The parallel study runner: order, failures, the deadline; and the checkpoint guards (locks, resume)."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from unger import study_runner
from unger.utils import checkpoint_lock

# Each fake run sleeps for the seconds its name ends with, then exits with rc 3 if its name says "fail".
FAKE_RUN = "import sys, time; name = sys.argv[1]; time.sleep(float(name.split('_')[-1])); sys.exit(3 if 'fail' in name else 0)"


def _fake_start(run, launch):
    log = open(launch.logs / f"study_{run}.log", "w")
    return subprocess.Popen([sys.executable, "-c", FAKE_RUN, run], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_runner_reports_each_run_and_stops_at_the_deadline(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_runner, "_start", _fake_start)
    runs = ["ok_0.1", "fail_0.1", "slow_60", "quick_0", "queued_0"]
    outcome = study_runner.run_parallel(runs, jobs=2, deadline_s=5)
    assert outcome == {"ok_0.1": "ok", "fail_0.1": "failed rc=3", "slow_60": "interrupted", "quick_0": "ok",
                       "queued_0": "not started"}
    assert (tmp_path / "data/logs/study_slow_60.log").exists()


def test_parallel_runs_get_their_own_mlflow_store(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = {}

    def record_env(run, launch):
        seen[run] = (launch.stores, launch.threads)
        return _fake_start(run, launch)

    monkeypatch.setattr(study_runner, "_start", record_env)
    study_runner.run_parallel(["a_0", "b_0"], jobs=2, deadline_s=60)
    assert {s for s, _ in seen.values()} == {Path("data/mlflow")}
    study_runner.run_parallel(["c_0"], jobs=1, deadline_s=60)
    assert seen["c_0"][0] is None  # one at a time: the project's own store


def test_each_run_gets_its_own_params_and_start_node():
    launch = study_runner.Launch(threads=1, params="runtime.device=cuda", from_node="train_stage_one_node")
    assert study_runner._command("encoder_mpnet_s2024", launch)[3:] == [
        "run", "--pipelines=study", "--namespaces=encoder_mpnet_s2024", "--params=runtime.device=cuda",
        "--from-nodes=encoder_mpnet_s2024.train_stage_one_node"]
    assert "--from-nodes" not in " ".join(study_runner._command("unger_s2024", study_runner.Launch(threads=1)))


def test_checkpoint_lock_serialises_runs_sharing_a_checkpoint(tmp_path: Path):
    checkpoint, order = tmp_path / "ckpt" / "fusion-x.pt", []

    def train(name):
        with checkpoint_lock(checkpoint):
            order.append(f"{name} in")
            time.sleep(0.3)
            order.append(f"{name} out")

    threads = [threading.Thread(target=train, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order[0][0] == order[1][0] and order[2][0] == order[3][0]  # never interleaved


class _LockHeld(Exception):
    """Raised by the stand-in trainers once they have checked the checkpoint lock."""


def _assert_locked_then_stop(*args, checkpoint_path, **kwargs):
    import fcntl

    with open(checkpoint_path.with_name(checkpoint_path.name + ".lock")) as handle:
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    raise _LockHeld(checkpoint_path.name)


@pytest.mark.parametrize("stage", ["generative", "sasrec", "dual_code"])
def test_every_training_node_holds_its_checkpoint_lock(stage: str, tmp_path: Path, monkeypatch):
    """Two runs that share any checkpoint (same settings but max_steps, say) must train it one at a time."""
    import numpy as np
    import pandas as pd
    import yaml

    from unger.pipelines.dual_code import nodes as dual_nodes
    from unger.pipelines.generative import nodes as gen_nodes
    from unger.pipelines.sasrec import nodes as sasrec_nodes

    conf = Path(__file__).resolve().parents[1] / "conf" / "base"
    sequences = pd.DataFrame({"user_id": [1, 2], "item_ids": [[1, 2, 3], [2, 3, 1]]})
    valid = pd.DataFrame({"user_id": [1, 2], "history": [[1, 2], [2, 3]], "target": [3, 1]})
    codes = np.array([[0, 0], [1, 2], [3, 4], [5, 6]])
    runtime = {"device": "cpu", "checkpoint_dir": str(tmp_path)}
    generative = yaml.safe_load((conf / "parameters_generative.yml").read_text())["generative"]
    if stage == "generative":
        monkeypatch.setattr("unger.training.generative.train_generative", _assert_locked_then_stop)
        node, args = gen_nodes.train_stage_two, (sequences, valid, codes, np.ones((4, 8), np.float32),
                                                      generative, runtime)
    elif stage == "sasrec":
        monkeypatch.setattr("unger.training.sasrec.train_sasrec", _assert_locked_then_stop)
        params = yaml.safe_load((conf / "parameters_sasrec.yml").read_text())["sasrec"]
        node, args = sasrec_nodes.train_sasrec_baseline, (sequences, valid, pd.DataFrame({"item_id": [1, 2, 3]}),
                                                                params, runtime)
    else:
        monkeypatch.setattr("unger.training.dual_code.train_dual_code", _assert_locked_then_stop)
        node, args = dual_nodes.train_dual_code_model, (sequences, valid, codes, codes[:, ::-1].copy(),
                                                              generative, runtime)
    with pytest.raises(_LockHeld):
        node(*args)


def test_stage1_refuses_a_checkpoint_trained_past_max_steps(tmp_path: Path):
    from dataclasses import asdict

    from unger.models.fusion import FusionConfig
    from unger.training.fusion import _check_resumable

    config = FusionConfig(max_steps=3000)
    ckpt = {"config": {**asdict(config), "max_steps": 12000}, "step": 12000}
    with pytest.raises(ValueError, match="fusion-x.pt has trained 12000 steps, past this run's max_steps=3000"):
        _check_resumable(tmp_path / "fusion-x.pt", ckpt, config)
    _check_resumable(tmp_path / "fusion-x.pt", {**ckpt, "step": 3000}, config)  # extending or equal is fine


def test_stage_two_refuses_a_checkpoint_that_ran_past_this_runs_stop(tmp_path: Path):
    from unger.training.checkpoint import stop_step

    history = [{"step": s, "ndcg@10": v} for s, v in ((2000, 0.1), (4000, 0.3), (6000, 0.2), (8000, 0.2), (10000, 0.4))]
    assert stop_step(history, "ndcg@10", patience=2, max_steps=20000) == 8000  # two evaluations without a gain
    assert stop_step(history, "ndcg@10", patience=3, max_steps=20000) == 20000  # 10,000 improves in time
    assert stop_step(history, "ndcg@10", patience=0, max_steps=6000) == 6000
    from dataclasses import make_dataclass
    from types import SimpleNamespace

    import torch

    from unger.training.checkpoint import load_checkpoint

    path = tmp_path / "generative-x.pt"
    torch.save({"config": {"d": 1}, "train_config": {"lr": 0.1}, "step": 10000, "history": history}, path)
    model_config = make_dataclass("ModelConfig", [("d", int, 1)])()
    cfg = SimpleNamespace(lr=0.1, select_metric="ndcg@10", patience=2, max_steps=20000)
    with pytest.raises(ValueError, match="trained 10000 steps, past step 8000"):
        load_checkpoint(path, model_config, cfg, ("lr",))
    assert load_checkpoint(path, model_config, SimpleNamespace(**{**vars(cfg), "patience": 3}), ("lr",))["step"] == 10000


def test_a_resumed_run_appends_to_its_log(tmp_path: Path):
    launch = study_runner.Launch(threads=2, logs=tmp_path)
    command = study_runner._command("unger_s2024", launch)
    for leg in ("first leg", "second leg"):
        with study_runner._open_log("unger_s2024", launch, command) as log:
            log.write(leg + "\n")
    lines = (tmp_path / "study_unger_s2024.log").read_text().splitlines()
    assert [line for line in lines if not line.startswith("===")] == ["first leg", "second leg"]
    assert lines[0].startswith("=== ") and lines[0].endswith(
        "-m kedro run --pipelines=study --namespaces=unger_s2024 (OMP_NUM_THREADS=2)")
    assert lines[2].startswith("=== ")


def test_start_leaves_the_log_to_the_child(tmp_path: Path, monkeypatch):
    """The parent closes its copy of the log at once (no ResourceWarning for a file left to the GC)."""
    monkeypatch.setattr(study_runner, "_command",
                        lambda run, launch: [sys.executable, "-c", f"print('{run} trained')"])
    launch = study_runner.Launch(threads=1, logs=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        proc = study_runner._start("unger_s2024", launch)
        gc.collect()
    assert proc.wait(timeout=30) == 0
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) and "study_unger_s2024" in str(w.message)]
    assert (tmp_path / "study_unger_s2024.log").read_text().splitlines()[1:] == ["unger_s2024 trained"]
