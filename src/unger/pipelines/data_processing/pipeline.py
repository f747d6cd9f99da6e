"""Wiring of the data_processing pipeline."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.data_processing import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.ingest_reviews,
                inputs=["amazon_raw", "params:data_processing"],
                outputs=["reviews", "reviews_ingest_report"],
                name="ingest_reviews_node",
            ),
            Node(
                nodes.ingest_item_meta,
                inputs=["amazon_raw", "reviews", "params:data_processing"],
                outputs=["item_meta", "meta_ingest_report"],
                name="ingest_item_meta_node",
            ),
            Node(
                nodes.filter_k_core,
                inputs=["reviews", "params:data_processing"],
                outputs="interactions",
                name="filter_k_core_node",
            ),
            Node(nodes.build_items, inputs=["interactions", "item_meta"], outputs="items", name="build_items_node"),
            Node(
                nodes.split_leave_one_out,
                inputs=["interactions", "params:data_processing"],
                outputs=["train_sequences", "valid_samples", "test_samples"],
                name="split_leave_one_out_node",
            ),
            Node(
                nodes.compute_data_stats,
                inputs=["interactions", "items", "reviews_ingest_report", "meta_ingest_report"],
                outputs=["data_stats", "data_stats_metrics"],
                name="compute_data_stats_node",
            ),
        ]
    )
