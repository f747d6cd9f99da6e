"""Nodes of the semantic pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from unger import tracking
from unger.params import RuntimeParams, SemanticParams

log = logging.getLogger(__name__)


def embed_item_texts(
    items: pd.DataFrame, params: dict[str, Any], runtime: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode each item's text (template over title, brand, categories) into a semantic embedding.

    Args:
        items: the ``items`` table of data_processing.
        params: ``params:semantic`` (encoder, pooling, template, fallback for items without a title).
        runtime: ``params:runtime`` (device).

    Returns:
        The ``(num_items + 1, dim)`` matrix (row 0 padding) and an info dict (encoder, weights checksum,
        items that used the fallback text), which is also logged to MLflow.
    """
    from unger.semantic.encoders import EncoderConfig, build_semantic_matrix
    from unger.utils import resolve_device

    p = SemanticParams(**params)
    if not items["has_text"].any():
        raise ValueError(
            "no item has a title: the semantic stage needs item text, and this category was ingested "
            "without a meta file (Sports in ../shared has none). Provide meta_<category>.json.gz."
        )
    device = resolve_device(RuntimeParams(**runtime).device)
    config = EncoderConfig(**p.encoder.model_dump(), device=str(device))
    matrix, info = build_semantic_matrix(items, p.template, p.fallback, config, device=device)
    log.info("embedded %d items with %s (%d-d, %d with fallback text)", len(items), info["encoder"],
             info["dim"], info["items_with_fallback"])
    tracking.set_tags({f"semantic.{k}": v for k, v in info.items()})
    return matrix, info
