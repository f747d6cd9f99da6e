"""Wiring of the evaluation pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    model_inputs = ["generative_model", "item_codes", "integrated_embeddings"]
    settings = ["params:evaluation", "params:runtime"]
    return Pipeline(
        [
            Node(
                nodes.recommend,
                inputs=[*model_inputs, "valid_samples", *settings],
                outputs=["valid_recommendations", "valid_beam_stats"],
                name="recommend_valid_node",
            ),
            Node(
                nodes.recommend,
                inputs=[*model_inputs, "test_samples", *settings],
                outputs=["test_recommendations", "test_beam_stats"],
                name="recommend_test_node",
            ),
            Node(
                nodes.compute_metrics,
                inputs=["valid_recommendations", "test_recommendations", "valid_beam_stats", "test_beam_stats",
                        "params:evaluation"],
                outputs=["evaluation_metrics", "evaluation_mlflow_metrics"],
                name="compute_metrics_node",
            ),
            Node(
                nodes.popularity_breakdown,
                inputs=["valid_recommendations", "test_recommendations", "train_sequences", "params:evaluation"],
                outputs="popularity_metrics",
                name="popularity_metrics_node",
            ),
            Node(
                nodes.write_report,
                inputs=["evaluation_metrics", "data_stats", "semantic_info", "fusion_report", "quantization_stats",
                        "generative_report", "params:evaluation"],
                outputs="run_report",
                name="write_report_node",
            ),
        ]
    )
