"""Pipelines of the project. Stage modules import torch lazily, so this stays fast to import."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from unger.pipelines import data_processing, dominance, evaluation, fusion, generative, quantization, semantic


def register_pipelines() -> dict[str, Pipeline]:
    """One pipeline per stage; ``full`` chains them from raw files to test metrics; ``dominance`` is the
    semantic-dominance analysis (Table 4, Figure 5)."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "semantic": semantic.create_pipeline(),
        "fusion": fusion.create_pipeline(),
        "quantization": quantization.create_pipeline(),
        "generative": generative.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["full"] = sum(pipelines.values(), Pipeline([]))
    # Analyses that train extra variants; run after `full` (or after semantic + fusion).
    pipelines["dominance"] = dominance.create_pipeline()
    pipelines["__default__"] = pipelines["full"]
    return pipelines
