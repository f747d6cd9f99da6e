"""`kedro viz build` must succeed (no data on disk needed) and describe every pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import copy_project


def test_kedro_viz_build(tmp_path: Path):
    copy_project(tmp_path)
    kedro = Path(sys.executable).with_name("kedro")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    result = subprocess.run(
        [str(kedro), "viz", "build"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    main = json.loads((tmp_path / "build" / "api" / "main").read_text())
    names = {node["name"] for node in main["nodes"]}
    assert "ingest_reviews_node" in names or "Ingest Reviews Node" in names
    pipelines = {p["id"] for p in main["pipelines"]}
    assert {"data_processing", "full"} <= pipelines
