"""Stage I: DIN + modality adaptation layer + cross-modality alignment -> integrated item embeddings."""

from unger.pipelines.fusion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
