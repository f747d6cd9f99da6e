"""Wiring of the dual-code baseline: codes of E_S and of E_C (two copies of the quantization
pipeline), one shared encoder with two decoders, and the confidence-merged evaluation.

Inputs: ``semantic_embeddings`` and ``integrated_embeddings`` (run the fusion stage with the
``collaborative_only`` variant so that these are E_C). Settings: ``params:generative`` (the same
size and schedule as UNGER's Stage II) and ``params:quantization``.
"""

from kedro.pipeline import Node, Pipeline

from unger.pipelines import quantization
from unger.pipelines.dual_code import nodes


def _codes(stream: str, embeddings: str) -> Pipeline:
    return Pipeline(
        quantization.create_pipeline(stream=stream),
        namespace=f"{stream}_codes",
        inputs={"integrated_embeddings": embeddings},
        outputs={name: f"{stream}_{name}" for name in ("item_codes", "item_code_table", "quantization_stats")},
        parameters={"params:quantization": "params:quantization", "params:runtime": "params:runtime"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    codes = ["semantic_item_codes", "collaborative_item_codes"]
    return _codes("semantic", "semantic_embeddings") + _codes("collaborative", "integrated_embeddings") + Pipeline(
        [
            Node(
                nodes.train_dual_code_model,
                inputs=["train_sequences", "valid_samples", *codes, "params:generative", "params:runtime"],
                outputs=["dual_code_model", "dual_code_report"],
                name="train_dual_code_node",
            ),
            Node(
                nodes.evaluate_dual_code_model,
                inputs=["dual_code_model", *codes, "valid_samples", "test_samples", "params:evaluation", "params:runtime"],
                outputs=["dual_code_metrics", "dual_code_mlflow_metrics", "dual_code_valid_recommendations",
                         "dual_code_test_recommendations"],
                name="evaluate_dual_code_node",
            ),
        ]
    )
