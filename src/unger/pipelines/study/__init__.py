"""The paper's experiments as namespaced copies of the stage pipelines, and the report over them."""

from unger.pipelines.study.pipeline import create_pipeline, create_report_pipeline, create_run_pipeline

__all__ = ["create_pipeline", "create_report_pipeline", "create_run_pipeline"]
