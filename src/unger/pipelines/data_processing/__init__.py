"""Raw Amazon 2014 files -> 5-core interactions -> leave-one-out splits and statistics."""

from unger.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
