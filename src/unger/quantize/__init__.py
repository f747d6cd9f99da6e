"""Quantizers that turn item embeddings ``(N + 1, d)`` into unique item codes ``(N + 1, L)``.

Kedro-free; :func:`quantize` dispatches on a method name so pipelines can switch quantizers from
parameters (paper section 4.6 compares random codes, RQ-VAE and hierarchical k-means).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unger.quantize.common import QuantizationResult, disambiguate, random_codes
from unger.quantize.kmeans import hierarchical_kmeans, residual_kmeans, unique_residual_kmeans
from unger.quantize.rqvae import train_rqvae

METHODS = ("hierarchical_kmeans", "residual_kmeans", "unique_residual_kmeans", "random", "rqvae")

__all__ = [
    "METHODS",
    "QuantizationResult",
    "disambiguate",
    "hierarchical_kmeans",
    "quantize",
    "random_codes",
    "residual_kmeans",
    "train_rqvae",
    "unique_residual_kmeans",
]


def quantize(
    embeddings: np.ndarray,
    method: str,
    K: int = 256,
    L: int | None = None,
    seed: int = 2024,
    device: Any = None,
    **kw: Any,
) -> QuantizationResult:
    """Quantize ``(N + 1, d)`` embeddings (row 0 padding) with the named method.

    ``L`` is the number of levels: for ``residual_kmeans`` (default 4) and ``rqvae`` (default 3) the
    number of codebooks before a possible disambiguation level, for ``random`` the code length
    (default: smallest with ``K**L >= N``). ``hierarchical_kmeans`` and ``unique_residual_kmeans`` ignore
    ``L`` because their depth follows the data (cap the former's with ``max_depth=`` in ``kw``).
    ``device`` is used by ``rqvae`` only; remaining keyword arguments go to the method's function.
    """
    if method == "hierarchical_kmeans":
        return hierarchical_kmeans(embeddings, K=K, seed=seed, **kw)
    if method == "residual_kmeans":
        return residual_kmeans(embeddings, K=K, L=4 if L is None else L, seed=seed, **kw)
    if method == "unique_residual_kmeans":
        return unique_residual_kmeans(embeddings, K=K, seed=seed, **kw)
    if method == "random":
        return random_codes(np.asarray(embeddings).shape[0] - 1, K=K, L=L, seed=seed, **kw)
    if method == "rqvae":
        return train_rqvae(embeddings, K=K, L=3 if L is None else L, seed=seed, device=device, **kw)
    raise ValueError(f"unknown quantization method {method!r}; expected one of {', '.join(METHODS)}")
