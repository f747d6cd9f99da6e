"""Nodes of the dominance pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from unger import tracking
from unger.params import DominanceParams, RuntimeParams

log = logging.getLogger(__name__)


def _measure(
    semantic: np.ndarray, collaborative: np.ndarray, fused: dict[str, np.ndarray], params: dict[str, Any], label: str = ""
) -> dict[str, Any]:
    """Equations 9-10 for each fused embedding set E against S (semantic) and C (collaborative only).

    Args:
        semantic: S, the encoder's item embeddings.
        collaborative: C, the item embeddings of DIN trained alone (no alignment).
        fused: the fused sets E by method name (``unger``, ``concat``).
        params: ``params:dominance`` (estimator settings).

    Returns:
        ``{method: {kl_s_e, kl_c_e, similarity_semantic, similarity_collaborative, ...}}``.
    """
    from unger.analysis.dominance import semantic_dominance

    p = DominanceParams(**params)
    table = {}
    for name, matrix in fused.items():
        table[name] = semantic_dominance(
            semantic, collaborative, matrix, n_reference=p.n_reference, perplexity=p.perplexity, seed=p.seed
        )
        log.info("%s: %.2f%% semantic, %.2f%% collaborative", name, 100 * table[name]["similarity_semantic"],
                 100 * table[name]["similarity_collaborative"])
        tracking.log_metrics(
            {"similarity_semantic": table[name]["similarity_semantic"],
             "similarity_collaborative": table[name]["similarity_collaborative"]},
            prefix=f"{label}.dominance.{name}." if label else f"dominance.{name}.",
        )
    return table


def concatenate_modalities(
    collaborative: np.ndarray, semantic: np.ndarray, fusion: dict[str, Any]
) -> np.ndarray:
    """The concat baseline of section 4.3: DIN's E_C (trained alone) next to PCA(E_S) of the same width.

    Args:
        collaborative: E_C of the ``collaborative_only`` variant.
        semantic: E_S.
        fusion: ``params:fusion`` (embedding_dim, seed).
    """
    from unger.models.fusion import concat_embeddings

    return concat_embeddings(collaborative, semantic, int(fusion["embedding_dim"]), int(fusion["seed"]))


def dominance_table(
    semantic: np.ndarray,
    collaborative: np.ndarray,
    unger: np.ndarray,
    concat: np.ndarray,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> dict[str, Any]:
    """Table 4: semantic vs collaborative proportions of the concat and unger embeddings."""
    label = RuntimeParams(**runtime).run_label
    return _measure(semantic, collaborative, {"concat": concat, "unger": unger}, params, label)


def tsne_plot(
    semantic: np.ndarray, collaborative: np.ndarray, unger: np.ndarray, concat: np.ndarray, params: dict[str, Any]
):
    """Figure 5: t-SNE of the same item sample in each embedding space, coloured by 10-means."""
    from unger.analysis.dominance import tsne_figure

    p = DominanceParams(**params)
    sets = {"semantic": semantic, "collaborative": collaborative, "concat": concat, "unger": unger}
    return tsne_figure(sets, n_clusters=p.tsne_clusters, seed=p.seed, max_points=p.tsne_points)
