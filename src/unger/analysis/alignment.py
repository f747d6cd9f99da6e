"""How far Stage I's cross-modality alignment (CKA, eq. 3) has pulled each item's collaborative embedding
E_C[i] towards its own adapted semantic embedding E_T[i], measured over the whole catalog.

The InfoNCE value during training only sees in-batch negatives; these numbers rank every item's E_T
against all N, so runs with different batch sizes, temperatures or similarity functions compare directly.
For reference, a random pairing gives hit@k = k / N and a median rank of about N / 2.
"""

from __future__ import annotations

import numpy as np

from unger.stage_one import SIMILARITIES
from unger.utils import unit_rows


def alignment_diagnostics(collaborative: np.ndarray, adapted: np.ndarray, similarity: str = "cosine",
                          ks: tuple[int, ...] = (1, 10, 100), chunk: int = 2048) -> dict[str, float]:
    """Alignment of E_C to E_T over items 1..N (row 0, padding, is skipped).

    Returns the mean and std of the positive similarity sim(E_C[i], E_T[i]) under ``similarity``, the
    mean over all pairs sim(E_C[i], E_T[j]) (the level a positive has to stand out from), the cosine of
    the positives whatever ``similarity`` is, the mean row norm of each matrix, and the rank of E_T[i]
    among all E_T[j] scored against E_C[i]: hit@k for each k, mean reciprocal rank and median rank (1 =
    best; ties counted against i).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    collaborative, adapted = np.asarray(collaborative), np.asarray(adapted)
    if collaborative.shape != adapted.shape or collaborative.ndim != 2 or collaborative.shape[0] < 3:
        raise ValueError("need E_C and E_T of one shape (N + 1, d) with N >= 2, got "
                         f"{collaborative.shape} and {adapted.shape}")
    rows_c, rows_t = collaborative[1:].astype(np.float32), adapted[1:].astype(np.float32)
    (unit_c, norm_c), (unit_t, norm_t) = unit_rows(rows_c), unit_rows(rows_t)
    c, t = (unit_c, unit_t) if similarity == "cosine" else (rows_c, rows_t)
    n = c.shape[0]
    positive = np.empty(n, dtype=np.float32)
    ranks = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        scores = c[start:start + chunk] @ t.T
        rows = np.arange(scores.shape[0])
        # The positive is read off the same product, so rounding never ranks an item below itself.
        positive[start:start + chunk] = own = scores[rows, start + rows]
        ranks[start:start + chunk] = (scores >= own[:, None]).sum(axis=1)
    out = {
        "items": n,
        "positive_mean": float(positive.mean()),
        "positive_std": float(positive.std()),
        "all_pairs_mean": float(c.mean(axis=0) @ t.mean(axis=0)),
        "positive_cosine_mean": float(np.einsum("ij,ij->i", unit_c, unit_t).mean()),
        # With the dot product the adapter can sharpen the InfoNCE by scaling E_T alone, leaving E_C unmoved.
        "collaborative_norm_mean": float(norm_c.mean()),
        "adapted_norm_mean": float(norm_t.mean()),
        "mrr": float((1.0 / ranks).mean()),
        "median_rank": float(np.median(ranks)),
    }
    out.update({f"hit@{k}": float((ranks <= k).mean()) for k in ks})
    return out
