"""Baseline: SASRec with full-softmax cross-entropy, trained and scored on the same split."""

from unger.pipelines.sasrec.pipeline import create_pipeline

__all__ = ["create_pipeline"]
