"""Integrated embeddings -> one unique unicode per item."""

from unger.pipelines.quantization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
