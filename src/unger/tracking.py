"""Thin MLflow helpers for nodes: they log into kedro-mlflow's active run and do nothing without one
(unit tests, plain ``SequentialRunner`` runs), so model code only ever sees a callback."""

from __future__ import annotations

import json
import math
from typing import Any, Callable


def _active():
    import mlflow

    return mlflow if mlflow.active_run() is not None else None


def log_metric(name: str, value: float, step: int = 0) -> None:
    """Log one point of a metric history; non-finite values are skipped (MLflow rejects them)."""
    mlflow = _active()
    if mlflow is not None and math.isfinite(float(value)):
        mlflow.log_metric(name.replace("@", "_at_"), float(value), step=int(step))


def metric_logger(prefix: str) -> Callable[[str, float, int], None]:
    """A ``log_metric(name, value, step)`` callback for training loops."""
    return lambda name, value, step: log_metric(f"{prefix}{name}", value, step)


def log_metrics(metrics: dict[str, float], prefix: str = "", step: int = 0) -> None:
    for name, value in metrics.items():
        log_metric(f"{prefix}{name}", value, step)


def set_tags(tags: dict[str, Any]) -> None:
    mlflow = _active()
    if mlflow is not None:
        mlflow.set_tags({k: str(v)[:5000] for k, v in tags.items()})


def log_json_artifact(data: Any, name: str) -> None:
    mlflow = _active()
    if mlflow is not None:
        mlflow.log_text(json.dumps(data, indent=2, default=str), name)
