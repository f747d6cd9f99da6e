"""Smoke runs through a real KedroSession: project settings, catalog, hooks and MLflow tracking."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT, copy_project
from unger.data.synthetic import write_synthetic_category


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A copy of this project's config in a temp folder, with synthetic raw files."""
    copy_project(tmp_path)
    write_synthetic_category(tmp_path / "data" / "01_raw" / "amazon2014" / "Synthetic", category="Synthetic")
    monkeypatch.chdir(tmp_path)
    bootstrap_project(tmp_path)
    return tmp_path


def _run(project: Path, pipeline: str, **params) -> None:
    runtime = {"data_processing": {"category": "Synthetic"}, **params}
    with KedroSession.create(project_path=project, runtime_params=runtime) as session:
        session.run(pipeline_names=[pipeline])


def test_data_processing_session_run_is_tracked(project: Path):
    import mlflow

    _run(project, "data_processing")
    stats_files = [p for p in (project / "data" / "08_reporting").rglob("data_stats.json") if p.is_file()]
    assert len(stats_files) == 1
    assert list((project / "data" / "05_model_input").rglob("train_sequences.parquet"))
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("unger")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["data_processing.category"] == "Synthetic"
    assert run.data.metrics["data.users"] > 0 and run.data.metrics["data.bad_lines_reviews"] == 0


def test_bad_parameter_fails_before_any_node(project: Path):
    with pytest.raises(ValueError, match=r"data_processing\.k_core"):
        _run(project, "data_processing", data_processing={"category": "Synthetic", "k_core": 0})
    assert not list((project / "data" / "02_intermediate").rglob("*.parquet"))


def test_notebook_code_runs_against_the_catalog(project: Path):
    import nbformat

    _run(project, "data_processing")
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "explore_outputs.ipynb", as_version=4)
    namespace: dict = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "explore_outputs.ipynb", "exec"), namespace)
    assert namespace["stats"]["users"] == len(namespace["test"]) == len(namespace["train"])


def test_legacy_pipeline_flag_still_runs(project: Path):
    import os
    import subprocess
    import sys

    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro), "run", "--pipeline=data_processing", "--params=data_processing.category=Synthetic"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [p for p in (project / "data" / "08_reporting").rglob("data_stats.json") if p.is_file()]
