"""Wiring of the semantic pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.semantic import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.embed_item_texts,
                inputs=["items", "params:semantic", "params:runtime"],
                outputs=["semantic_embeddings", "semantic_info"],
                name="embed_item_texts_node",
            )
        ]
    )
