"""Item text -> semantic embeddings with a Hugging Face encoder."""

from unger.pipelines.semantic.pipeline import create_pipeline

__all__ = ["create_pipeline"]
