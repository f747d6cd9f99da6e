"""Wiring of the quantization pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.quantization import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.quantize_items,
                inputs=["integrated_embeddings", "params:quantization", "params:runtime"],
                outputs=["item_codes", "item_code_table", "quantization_stats"],
                name="quantize_items_node",
            )
        ]
    )
