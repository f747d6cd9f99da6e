"""Semantic dominance (paper section 4.3): Table 4 proportions and the Figure 5 t-SNE."""

from unger.pipelines.dominance.pipeline import create_pipeline

__all__ = ["create_pipeline"]
