"""Baseline: EAGER-style dual codes (a semantic and a collaborative code per item, two decoders)."""

from unger.pipelines.dual_code.pipeline import create_pipeline

__all__ = ["create_pipeline"]
