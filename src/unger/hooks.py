"""Project hooks: validate every typed parameter group before the first node runs, and record the
wall time and peak memory of every node and of the whole run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from unger.params import PARAMETER_GROUPS, validate_group
from unger.profiling import RunProfiler, run_command

logger = logging.getLogger(__name__)


class ValidateParametersHook:
    """Fail fast on a bad parameter instead of an hour into a run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        for name in PARAMETER_GROUPS:
            key = f"params:{name}"
            if key in catalog:
                validate_group(name, catalog.load(key))
        # Each fusion variant is the base group with its overrides on top (its label aside).
        if "params:fusion_variants" in catalog and "params:fusion" in catalog:
            base = catalog.load("params:fusion")
            for variant, overrides in (catalog.load("params:fusion_variants") or {}).items():
                merged = {**base, **{k: v for k, v in (overrides or {}).items() if k != "label"}}
                validate_group("fusion", merged)


class ProfileRunHook:
    """Per-node wall time and peak memory, logged to MLflow and to
    ``data/08_reporting/run_profiles/<time>-<pipelines>.json`` (the benchmark reads these files)."""

    def __init__(self):
        self._profiler = RunProfiler()
        self._mlflow_run_id: str | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import mlflow

        active = mlflow.active_run()
        self._mlflow_run_id = active.info.run_id if active is not None else None
        self._profiler.start_run()
        # What a study record says about the run: the code it started with and the command that reproduces it.
        catalog["run_context"] = {"git_commit": self._profiler.commit, "command": run_command(run_params)}

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._profiler.start_node(node.name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        record = self._profiler.end_node(node.name)
        self._log({f"profile/{node.name}/seconds": record["seconds"], f"profile/{node.name}/peak_rss_mb": record["peak_rss_mb"]})

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        names = run_params.get("pipeline_names") or ["__default__"]
        summary = self._profiler.summary("+".join(names))
        summary.update(env=run_params.get("env"), kedro_run_id=run_params.get("run_id"), mlflow_run_id=self._mlflow_run_id)
        summary["runtime_params"] = run_params.get("runtime_params") or {}
        summary["node_names"] = run_params.get("node_names") or []
        self._log({"profile/total_seconds": summary["total_seconds"], "profile/peak_rss_mb": summary["peak_rss_mb"]})
        folder = Path(run_params["project_path"]) / "data" / "08_reporting" / "run_profiles"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = summary["finished_at"].replace(":", "")[:17]
        path = folder / f"{stamp}-{summary['pipeline']}.json"
        path.write_text(json.dumps(summary, indent=2))
        logger.info("Run profile (%.0f s, peak RSS %.0f MB) written to %s", summary["total_seconds"], summary["peak_rss_mb"], path)

    def _log(self, metrics: dict[str, float]) -> None:
        """Log into the kedro-mlflow run even after it closed (its hook ends the run before ours)."""
        if self._mlflow_run_id is None:
            return
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        for name, value in metrics.items():
            client.log_metric(self._mlflow_run_id, name, float(value))
