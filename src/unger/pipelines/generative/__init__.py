"""Stage II: Transformer encoder-decoder over unicodes with [c_dis] distillation."""

from unger.pipelines.generative.pipeline import create_pipeline

__all__ = ["create_pipeline"]
