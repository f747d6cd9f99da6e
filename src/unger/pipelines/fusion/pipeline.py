"""Wiring of the fusion pipeline, and namespaced copies of it for variants."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.fusion import nodes

SHARED_INPUTS = {"train_sequences", "valid_samples", "test_samples", "semantic_embeddings"}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_stage_one,
                inputs=[
                    "train_sequences",
                    "valid_samples",
                    "semantic_embeddings",
                    "params:fusion",
                    "params:fusion_variants.main",
                    "params:runtime",
                ],
                outputs=[
                    "fusion_model",
                    "collaborative_embeddings",
                    "adapted_semantic_embeddings",
                    "integrated_embeddings",
                    "fusion_report",
                ],
                name="train_stage_one_node",
            ),
            Node(
                nodes.evaluate_stage_one,
                inputs=[
                    "fusion_model",
                    "semantic_embeddings",
                    "valid_samples",
                    "test_samples",
                    "params:fusion_variants.main",
                    "params:runtime",
                ],
                outputs="fusion_metrics",
                name="evaluate_stage_one_node",
            ),
        ]
    )


def create_variant(name: str) -> Pipeline:
    """The fusion pipeline under namespace ``name``, reading ``params:fusion_variants.<name>``;
    its outputs are ``<name>.integrated_embeddings`` etc. (catalog factories give them their own files)."""
    return Pipeline(
        create_pipeline(),
        namespace=name,
        inputs=SHARED_INPUTS,
        parameters={
            "params:fusion": "params:fusion",
            "params:runtime": "params:runtime",
            "params:fusion_variants.main": f"params:fusion_variants.{name}",
        },
    )
