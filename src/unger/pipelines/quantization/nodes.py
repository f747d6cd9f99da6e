"""Nodes of the quantization pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from unger import tracking
from unger.params import QuantizationParams, RuntimeParams

log = logging.getLogger(__name__)


def quantize_items(
    integrated_embeddings: np.ndarray, params: dict[str, Any], runtime: dict[str, Any], stream: str = ""
) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Turn each item's integrated embedding into a unique code (hierarchical k-means by default).

    Args:
        integrated_embeddings: ``(N + 1, d)`` from Stage I (row 0 padding).
        params: ``params:quantization`` (method, K, L, seed).
        runtime: ``params:runtime`` (device, used by the RQ-VAE only).
        stream: which of several code streams of one run this is (the dual-code baseline quantizes E_S
            and E_C); it names the MLflow metrics and artifact so the streams do not overwrite each other.

    Returns:
        Codes ``(N + 1, L)``, the readable code table (item, codes, depth) and the code statistics
        (depth and cluster-size distributions, collisions), also logged to MLflow.
    """
    from unger.quantize import quantize
    from unger.utils import resolve_device

    p = QuantizationParams(**params)
    rt = RuntimeParams(**runtime)
    device = resolve_device(rt.device)
    kwargs = {"max_depth": p.max_depth} if p.method == "hierarchical_kmeans" and p.max_depth else {}
    result = quantize(integrated_embeddings, p.method, K=p.K, L=p.L, seed=p.seed, device=device, **kwargs)
    if not result.is_unique():
        raise RuntimeError(f"{p.method} produced duplicate item codes; this is a bug in the quantizer")
    stats = {"method": p.method, "K": p.K, **result.stats()}
    name = ".".join(n for n in (rt.run_label, stream, "quantization") if n)
    tracking.log_metrics(
        {
            "num_levels": result.num_levels,
            "collisions_before_dedup": result.collisions_before_dedup,
            "max_depth": int(result.depth[1:].max()),
            "mean_depth": float(result.depth[1:].mean()),
        },
        prefix=f"{name}.",
    )
    tracking.log_json_artifact(stats, f"{name}_stats.json")
    log.info("%s: %d levels, %d collisions before dedup", p.method, result.num_levels, result.collisions_before_dedup)
    table = result.code_table(np.arange(1, result.num_items + 1))
    return result.codes, table, stats
