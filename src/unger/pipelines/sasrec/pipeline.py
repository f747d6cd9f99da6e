"""Wiring of the SASRec-CE baseline: train, then rank every item for every validation/test user."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.sasrec import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_sasrec_baseline,
                inputs=["train_sequences", "valid_samples", "items", "params:sasrec", "params:runtime"],
                outputs=["sasrec_model", "sasrec_report"],
                name="train_sasrec_node",
            ),
            Node(
                nodes.evaluate_sasrec,
                inputs=["sasrec_model", "valid_samples", "test_samples", "params:evaluation", "params:runtime"],
                outputs=["sasrec_metrics", "sasrec_mlflow_metrics", "sasrec_valid_recommendations",
                         "sasrec_test_recommendations"],
                name="evaluate_sasrec_node",
            ),
        ]
    )
