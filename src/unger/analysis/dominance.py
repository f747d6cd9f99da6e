"""Semantic dominance analysis (paper section 4.3: equations 9-10, Table 4, Figure 5).

Equations 9-10 compare a fused item representation E with the semantic embeddings S and the collaborative
embeddings C::

    Sim_sem = 1 - KL(S||E) / (KL(S||E) + KL(C||E))
    Sim_col = 1 - KL(C||E) / (KL(S||E) + KL(C||E))

The paper does not say how a KL divergence between two *sets of embeddings* is estimated, and S, C and E
usually live in spaces of different dimension (e.g. 384, 96 and 192), so a density in the embedding space
cannot be compared directly. We compare what every set defines in the same space: for each item, a
probability distribution over the *other items* (a t-SNE style neighbourhood distribution).

Estimator (``semantic_dominance``):

1. Draw ``n_reference`` reference items once (seeded, without replacement), the same for S, C and E.
2. For every item i (all N items, processed in chunks; none is left out), take cosine similarities to the
   reference items (i itself excluded when it is one of them) and turn them into
   ``P_X(i) = softmax(sim / t_X(i))``. Since ``|a - b|^2 = 2 - 2 cos(a, b)`` for unit vectors, this is
   t-SNE's Gaussian neighbourhood kernel on L2-normalised embeddings.
3. ``t_X(i)`` is chosen per item and per set by bisection so that ``P_X(i)`` has a fixed perplexity
   (default 30), exactly as t-SNE calibrates its Gaussian bandwidths. With 1024 references among 12k
   items, perplexity 30 covers roughly the 350 nearest items: the neighbourhood scale of a few dozen
   clusters, i.e. the structure that Figure 5's k-means panels show. Without this, a set whose cosine
   similarities are simply more spread out (typical for collaborative embeddings versus sentence
   embeddings) would look "different" only because its neighbourhoods are sharper. A fixed temperature can
   be chosen instead (``temperature=...``).
4. ``KL(X||E) = mean_i KL(P_X(i) || P_E(i))`` (nats).

Properties: dimension-free; invariant to rotations and to rescaling of any set (cosine), so E = S gives
KL(S||E) = 0 and Sim_sem = 1; cost O(N * n_reference) per set. With the default 1024 reference items the
12k-item Beauty set takes a few seconds on two CPU cores. When both KLs are 0 the ratio is undefined and
both similarities are reported as 0.5.

``tsne_figure`` redraws Figure 5: one t-SNE panel per embedding set of the same seeded item sample,
coloured by k-means clusters fitted on that set.
"""

from __future__ import annotations

import numpy as np

from unger.utils import unit_rows

_BISECTION_STEPS = 30


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _entropy(masked_sims: np.ndarray, zeroed_sims: np.ndarray, log_beta: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of softmax(beta * sims); masked entries are -inf, i.e. probability 0."""
    beta = np.exp(log_beta)
    scaled = masked_sims * beta
    row_max = scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled - row_max)
    total = weights.sum(axis=1, keepdims=True)
    # H = log Z - E_p[scaled - max]; zeroed_sims avoids 0 * -inf at masked entries.
    mean_scaled = (weights * (zeroed_sims * beta)).sum(axis=1, keepdims=True) / total
    return np.log(total) - (mean_scaled - row_max)


def _neighbourhood_logp(sims: np.ndarray, valid: np.ndarray, perplexity: float | None, temperature: float | None):
    """Row-wise log-probabilities over reference items; invalid entries get -inf (probability 0)."""
    masked = np.where(valid, sims, -np.inf)
    if temperature is not None:
        return _log_softmax(masked / temperature)
    target = np.log(perplexity)
    # Bisection on log(beta) (beta = 1/temperature): entropy falls monotonically as beta grows.
    # float32 is ample for the search; the final distribution is computed in float64.
    masked32, zeroed32 = masked.astype(np.float32), np.where(valid, sims, 0.0).astype(np.float32)
    lo = np.full((sims.shape[0], 1), -10.0, dtype=np.float32)
    hi = np.full((sims.shape[0], 1), 14.0, dtype=np.float32)
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        too_flat = _entropy(masked32, zeroed32, mid) > target
        lo = np.where(too_flat, mid, lo)
        hi = np.where(too_flat, hi, mid)
    return _log_softmax(masked * np.exp((lo + hi).astype(np.float64) / 2))


def neighbourhood_kl(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    n_reference: int | None = 1024,
    perplexity: float | None = 30.0,
    temperature: float | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
) -> float:
    """Mean over items of KL(P_X(i) || P_Y(i)) for two ``(N+1, d)`` matrices (row 0 ignored)."""
    return _kls([X], Y, n_reference, perplexity, temperature, seed, chunk_size)[0]


def _kls(sources, target, n_reference, perplexity, temperature, seed, chunk_size) -> list[float]:
    """KL(P_X || P_target) for each X in ``sources``; one reference sample, one pass over the items."""
    sets = [np.asarray(x) for x in sources] + [np.asarray(target)]
    n_items = sets[0].shape[0] - 1
    if any(x.ndim != 2 or x.shape[0] != n_items + 1 for x in sets):
        raise ValueError("all embedding sets must be 2-D with the same number of rows (N + 1)")
    if n_items < 3:
        raise ValueError("need at least 3 items")
    if (perplexity is None) == (temperature is None):
        raise ValueError("give exactly one of perplexity or temperature")
    m = n_items if n_reference is None or n_reference >= n_items else int(n_reference)
    refs = np.sort(np.random.default_rng(seed).choice(np.arange(1, n_items + 1), size=m, replace=False))
    if perplexity is not None and not 1.0 < perplexity < m - 1:
        raise ValueError(f"perplexity must lie in (1, {m - 1}) for {m} reference items, got {perplexity}")
    # Zero rows stay zero: every similarity becomes 0, i.e. a uniform neighbourhood.
    units = [unit_rows(x, np.float64)[0] for x in sets]
    ref_units = [u[refs] for u in units]
    totals = np.zeros(len(sources))
    for start in range(1, n_items + 1, chunk_size):
        rows = np.arange(start, min(start + chunk_size, n_items + 1))
        valid = rows[:, None] != refs[None, :]
        logps = [
            _neighbourhood_logp(u[rows] @ r.T, valid, perplexity, temperature) for u, r in zip(units, ref_units)
        ]
        logq = np.where(valid, logps[-1], 0.0)
        for k, logp in enumerate(logps[:-1]):
            p = np.exp(logp)
            totals[k] += np.where(valid & (p > 0), p * (np.where(valid, logp, 0.0) - logq), 0.0).sum()
    # KL is >= 0; tiny negatives are float round-off.
    return [float(v) for v in np.maximum(totals / n_items, 0.0)]


def semantic_dominance(
    S: np.ndarray,
    C: np.ndarray,
    E: np.ndarray,
    *,
    n_reference: int | None = 1024,
    perplexity: float | None = 30.0,
    temperature: float | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
) -> dict:
    """Proportional similarity of S and C to E (equations 9-10) with the neighbourhood KL estimator.

    S, C, E: ``(N+1, d_*)`` matrices indexed by item id (row 0 ignored; dimensions may differ).
    ``n_reference=None`` uses every item as a reference (exact, O(N^2)). Deterministic for a given seed.
    """
    kwargs = dict(
        n_reference=n_reference, perplexity=perplexity, temperature=temperature, seed=seed, chunk_size=chunk_size
    )
    kl_s_e, kl_c_e = _kls([S, C], E, **kwargs)
    total = kl_s_e + kl_c_e
    sim_sem = 0.5 if total <= 0 else 1.0 - kl_s_e / total
    n_items = np.asarray(S).shape[0] - 1
    return {
        "kl_s_e": float(kl_s_e),
        "kl_c_e": float(kl_c_e),
        "similarity_semantic": float(sim_sem),
        "similarity_collaborative": float(1.0 - sim_sem),
        "n_items": int(n_items),
        "n_reference": int(n_items if n_reference is None else min(n_reference, n_items)),
        "perplexity": perplexity,
        "temperature": temperature,
    }


def tsne_figure(
    embeddings: dict[str, np.ndarray],
    n_clusters: int = 10,
    seed: int = 0,
    max_points: int = 3000,
    normalize: bool = True,
    perplexity: float = 30.0,
    method: str = "auto",
):
    """Figure 5: t-SNE of the same seeded item sample for each set, coloured by that set's k-means.

    Each matrix is ``(N+1, d)`` (row 0 ignored). k-means runs on all N items of a set; t-SNE on at most
    ``max_points`` of them. With ``normalize`` rows are L2-normalised first, matching the cosine view of
    ``semantic_dominance``. ``method="auto"`` runs exact t-SNE below 500 points (cheap there, and free of
    the Barnes-Hut OpenMP start-up cost) and Barnes-Hut above. Returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.cluster import KMeans
    from sklearn.manifold import TSNE

    if not embeddings:
        raise ValueError("no embedding sets given")
    n_items = {name: np.asarray(x).shape[0] - 1 for name, x in embeddings.items()}
    if len(set(n_items.values())) != 1:
        raise ValueError(f"embedding sets disagree on the number of items: {n_items}")
    n = next(iter(n_items.values()))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(np.arange(1, n + 1), size=min(max_points, n), replace=False))

    fig = Figure(figsize=(5 * len(embeddings), 5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(embeddings), squeeze=False)[0]
    for ax, (name, matrix) in zip(axes, embeddings.items()):
        x = np.asarray(matrix, dtype=np.float64)[1:]
        if normalize:
            x = unit_rows(x, np.float64)[0]
        labels = KMeans(n_clusters=min(n_clusters, n), random_state=seed, n_init=4).fit_predict(x)
        points = x[sample - 1]
        tsne = TSNE(
            n_components=2,
            perplexity=min(perplexity, (len(sample) - 1) / 3),
            init="pca",
            method=method if method != "auto" else ("exact" if len(sample) < 500 else "barnes_hut"),
            random_state=seed,
        )
        xy = tsne.fit_transform(points)
        ax.scatter(xy[:, 0], xy[:, 1], c=labels[sample - 1], cmap="tab10", s=4, linewidths=0)
        ax.set_title(f"{name} ({matrix.shape[1]}-d)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"t-SNE of {len(sample)} of {n} items (same items in every panel)\n"
        f"colours: k-means, k={n_clusters}, fitted on each set",
        fontsize="medium",
    )
    return fig
