"""The whole pipeline, raw files to test metrics, on the synthetic catalog (``--env=tiny``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import copy_project
from unger.data.synthetic import write_synthetic_category

pytestmark = pytest.mark.slow


def _latest(root: Path, name: str) -> Path:
    files = sorted(p for p in root.rglob(name) if p.is_file())
    assert files, f"no {name} under {root}"
    return files[-1]


@pytest.fixture
def tiny_project(tmp_path: Path, monkeypatch) -> Path:
    copy_project(tmp_path, env="tiny")
    write_synthetic_category(tmp_path / "data" / "01_raw" / "amazon2014" / "Synthetic", "Synthetic")
    monkeypatch.chdir(tmp_path)
    bootstrap_project(tmp_path)
    return tmp_path


def test_full_pipeline_end_to_end_and_single_node_rerun(tiny_project: Path):
    import mlflow

    with KedroSession.create(project_path=tiny_project, env="tiny") as session:
        session.run(pipeline_names=["full"])
    data = tiny_project / "data"
    metrics = json.loads(_latest(data / "08_reporting", "metrics.json").read_text())
    stats = json.loads(_latest(data / "08_reporting", "data_stats.json").read_text())
    for split in ("valid", "test"):
        assert metrics[split]["users"] == stats["users"]
        for k in (5, 10, 20):
            assert 0.0 <= metrics[split][f"ndcg@{k}"] <= metrics[split][f"recall@{k}"] <= 1.0
        # Users walk through one taste's 10 items in order 85% of the time: 20 random items of 60 hit
        # 1/3 of the time, a model that learned the walk far more often.
        assert metrics[split]["recall@20"] > 0.5
    report = _latest(data / "08_reporting", "report.md").read_text()
    assert "## test" in report and "recall@10" in report

    # The benchmark reads these outputs: its decoding reproduces the pipeline's test metrics exactly.
    command = [sys.executable, "-m", "unger.bench", "--train-steps", "20", "--beam", "20", "--dual-users", "40",
               "--dual-repeats", "2"]
    result = subprocess.run(command, cwd=tiny_project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    bench = next(iter(json.loads((tiny_project / "docs" / "benchmarks.json").read_text()).values()))
    assert bench["decoding"]["same_metrics_as_pipeline"] is True
    assert bench["training"]["samples_per_s"] > 0 and bench["dual_code"]["dual_over_unified"] > 1
    assert bench["dual_code"]["repeats"] == 2 and bench["dual_code"]["dual_over_unified_std"] >= 0
    assert bench["pipeline"]["total_seconds"] > 0
    assert "| decoding.ms_per_user |" in (tiny_project / "docs" / "benchmarks.md").read_text()
    assert "mean ± std over 2 rounds taken in turns" in (tiny_project / "docs" / "benchmarks.md").read_text()

    # One node reruns alone from persisted inputs with a changed parameter, through the CLI.
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro), "run", "--env=tiny", "--nodes=train_stage_two_node", "--params=generative.lr=0.002,generative.max_steps=60"]
    result = subprocess.run(command, cwd=tiny_project, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = sorted(p for p in (data / "06_models").rglob("generative_model.pt") if p.is_file())
    assert len(models) == 2

    # The dominance analysis (Table 4, Figure 5) on top of the persisted full-run outputs.
    command = [str(kedro), "run", "--env=tiny", "--pipelines=dominance"]
    result = subprocess.run(command, cwd=tiny_project, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = json.loads(_latest(data / "08_reporting", "semantic_dominance.json").read_text())
    for method in ("unger", "concat"):
        shares = table[method]
        assert abs(shares["similarity_semantic"] + shares["similarity_collaborative"] - 1) < 1e-9
    assert _latest(data / "08_reporting", "tsne_figure.png").stat().st_size > 10_000

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("unger").experiment_id])
    assert len(runs) == 3
    full = [r for r in runs if "eval.test.ndcg_at_10" in r.data.metrics]
    assert len(full) == 1
    history = client.get_metric_history(full[0].info.run_id, "generative/loss")
    assert len(history) >= 2

    # Every run leaves a profile: one timed record per node, and the totals in MLflow.
    profile = json.loads(sorted((data / "08_reporting" / "run_profiles").glob("*-full.json"))[0].read_text())
    timed = {r["node"]: r for r in profile["nodes"]}
    assert {"train_stage_one_node", "train_stage_two_node", "recommend_test_node"} <= set(timed)
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 50 for r in timed.values())
    assert profile["total_seconds"] >= sum(r["seconds"] for r in timed.values())
    assert profile["mlflow_run_id"] == full[0].info.run_id
    assert full[0].data.metrics["profile/total_seconds"] == profile["total_seconds"]

