"""Shared fixtures: synthetic raw files in the official formats, and the shared real data."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from unger.data.synthetic import write_synthetic_category

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "amazon2014"


def write_gz(path: Path, payload: bytes) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.write(payload)
    return path


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    """A raw folder holding a synthetic 'Synthetic' category."""
    folder = tmp_path / "amazon2014"
    write_synthetic_category(folder / "Synthetic", category="Synthetic")
    return folder


@pytest.fixture
def shared_beauty() -> Path:
    folder = SHARED_DATA / "Beauty"
    if not (folder / "reviews_Beauty_5.json.gz").exists():
        pytest.skip(f"real data not present at {folder}")
    return folder


def copy_project(tmp_path: Path, env: str = "local") -> Path:
    """A copy of this project's config in ``tmp_path`` with its own MLflow store.

    The store's URI is absolute: MLflow caches stores by URI, so a relative ``sqlite:///mlflow.db``
    would keep pointing at the first test's database after a ``chdir``.
    """
    import shutil

    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / env).mkdir(exist_ok=True)
    (tmp_path / "conf" / env / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    return tmp_path


@pytest.fixture(autouse=True)
def _no_leftover_mlflow_run():
    """Each test starts and ends without an active MLflow run (kedro-mlflow reuses an active one)."""
    import mlflow

    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
