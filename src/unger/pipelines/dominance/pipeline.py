"""Wiring of the dominance pipeline: DIN trained alone (a namespaced fusion variant), the concat
baseline built from it, and the analysis."""

from kedro.pipeline import Node, Pipeline

from unger.pipelines.dominance import nodes
from unger.pipelines.fusion.pipeline import create_variant


def create_pipeline(**kwargs) -> Pipeline:
    embeddings = [
        "semantic_embeddings",
        "collaborative_only.collaborative_embeddings",
        "integrated_embeddings",
        "concat_embeddings",
        "params:dominance",
    ]
    analysis = Pipeline(
        [
            Node(
                nodes.concatenate_modalities,
                inputs=["collaborative_only.collaborative_embeddings", "semantic_embeddings", "params:fusion"],
                outputs="concat_embeddings",
                name="concatenate_modalities_node",
            ),
            Node(nodes.dominance_table, inputs=[*embeddings, "params:runtime"], outputs="semantic_dominance",
                 name="semantic_dominance_node"),
            Node(nodes.tsne_plot, inputs=embeddings, outputs="tsne_figure", name="tsne_figure_node"),
        ]
    )
    return create_variant("collaborative_only") + analysis
