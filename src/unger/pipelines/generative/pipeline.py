"""Wiring of the generative pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.generative import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_stage_two,
                inputs=[
                    "train_sequences",
                    "valid_samples",
                    "item_codes",
                    "integrated_embeddings",
                    "params:generative",
                    "params:runtime",
                ],
                outputs=["generative_model", "generative_report"],
                name="train_stage_two_node",
            )
        ]
    )
