"""Pipelines of the project. Stage modules import torch lazily, so this stays fast to import."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from unger.pipelines import data_processing, fusion, semantic


def register_pipelines() -> dict[str, Pipeline]:
    """``data_processing`` is raw files to leave-one-out splits; ``full`` chains every stage."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "semantic": semantic.create_pipeline(),
        "fusion": fusion.create_pipeline(),
    }
    pipelines["full"] = sum(pipelines.values(), Pipeline([]))
    pipelines["__default__"] = pipelines["full"]
    return pipelines
