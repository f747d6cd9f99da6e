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
