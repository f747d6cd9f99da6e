"""Wiring of the quantization pipeline."""

from functools import partial

from kedro.pipeline import Node, Pipeline

from unger.pipelines.quantization import nodes


def create_pipeline(stream: str = "", **kwargs) -> Pipeline:
    """``stream`` names one of several code streams of a run in MLflow (see ``nodes.quantize_items``)."""
    return Pipeline(
        [
            Node(
                partial(nodes.quantize_items, stream=stream) if stream else nodes.quantize_items,
                inputs=["integrated_embeddings", "params:quantization", "params:runtime"],
                outputs=["item_codes", "item_code_table", "quantization_stats"],
                name="quantize_items_node",
            )
        ]
    )
