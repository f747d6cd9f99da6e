"""Wiring of the fusion pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.fusion import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_stage_one,
                inputs=["train_sequences", "valid_samples", "semantic_embeddings", "params:fusion", "params:runtime"],
                outputs=[
                    "fusion_model",
                    "collaborative_embeddings",
                    "adapted_semantic_embeddings",
                    "integrated_embeddings",
                    "fusion_report",
                ],
                name="train_stage_one_node",
            )
        ]
    )
