"""Constrained beam search over all items and Recall/NDCG@5/10/20 for validation and test users."""

from unger.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
