"""Stage I of UNGER (paper section 3.3): fuse collaborative and semantic item knowledge.

A DIN-style sequential recommender learns the collaborative item embeddings E_C by next-item
prediction (eq. 4); a modality adaptation layer (MAL, eq. 2) maps the frozen semantic embeddings E_S
into the same space (E_T); a cross-modality InfoNCE loss (eq. 3) pulls E_C[i] towards E_T[i]. The joint
loss is L_seq + alpha * L_align (eq. 5). After training, each item's *integrated embedding* (the input of
the hierarchical k-means that builds the unicodes) is read off per ``FusionConfig.integrated``.

All item matrices follow docs/CONVENTIONS.md: shape (num_items + 1, dim), row 0 is padding.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unger.stage_one import SIMILARITIES, aligns, stage_one_identity, trains
from unger.utils import unit_rows

VARIANTS = ("unger", "concat", "semantic_only", "collaborative_only")
INTEGRATED = ("collaborative", "adapted_semantic", "sum", "concat")


@dataclass
class FusionConfig:
    """Hyperparameters of Stage I (defaults: the paper's Table 4 where it gives a value).

    ``variant`` picks the item representation that feeds the codes:
      * ``unger``: DIN + MAL + CKA jointly trained (the paper's method); ``use_cka``/``use_mal`` ablate it.
      * ``collaborative_only``: DIN alone, integrated = E_C.
      * ``semantic_only``: no training, integrated = E_S.
      * ``concat``: DIN alone, integrated = [E_C ; PCA(E_S)] (paper section 4.3).
    ``use_cka``, ``use_mal`` and ``integrated`` only matter for ``unger``; the other variants never align.
    """

    variant: str = "unger"
    use_cka: bool = True
    use_mal: bool = True
    embedding_dim: int = 96
    alpha: float = 1.0
    tau: float = 1.0
    similarity: str = "cosine"
    lr: float = 1e-3
    weight_decay: float = 1e-7
    batch_size: int = 256
    max_steps: int = 3000
    eval_every: int = 250
    patience: int = 4
    max_history: int = 20
    align_batch_size: int = 1024
    integrated: str = "collaborative"
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if self.integrated not in INTEGRATED:
            raise ValueError(f"integrated must be one of {INTEGRATED}, got {self.integrated!r}")
        for name in ("embedding_dim", "batch_size", "max_steps", "eval_every", "patience", "max_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.align_batch_size < 2:
            raise ValueError(f"align_batch_size must be >= 2 (InfoNCE needs negatives), got {self.align_batch_size}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got lr={self.lr}, weight_decay={self.weight_decay}")
        # Anything but E_C reads the adapted semantic E_T, which is only trained through the alignment loss;
        # without it E_T would be an untrained random projection.
        if self.variant == "unger" and self.integrated != "collaborative" and not self.use_cka:
            raise ValueError(f"integrated={self.integrated!r} reads E_T, which is untrained when use_cka is False")

    @property
    def aligns(self) -> bool:
        """Whether the model has a semantic adapter and the CKA loss (only the ``unger`` variant can)."""
        return aligns(self.variant, self.use_cka)

    def training_identity(self) -> dict:
        """The fields that decide Stage I's training, for naming and matching checkpoints: every
        configuration that trains DIN alone has the same (``unger.stage_one.stage_one_identity``)."""
        return stage_one_identity(asdict(self))

    @property
    def trains(self) -> bool:
        """Whether the variant needs a trained DIN at all (``semantic_only`` does not)."""
        return trains(self.variant)


class DIN(nn.Module):
    """Deep-Interest-Network-style target attention over the history, scoring every item at once.

    For a candidate item e and history embeddings h_1..h_L (E_C rows):
        a_j(e) = softmax_j(<h_j, e> / sqrt(d) + p_j)   over non-padded positions,
        u(e)   = sum_j a_j(e) W h_j,                    score(e) = <u(e), e>,
    where p_j is a learned bias per (right-aligned) history position, i.e. a recency prior.

    Simplification vs. DIN (Zhou et al. 2018): the original activation unit is an MLP over
    [h_j, e, h_j - e, h_j * e] followed by an MLP over [u, e]; over all ~12k items per user that is
    unaffordable. Here the attention logit and the final score are bilinear, so for all candidates
    both reduce to matmuls of the (non-padded) history, H E^T and (H W^T) E^T (each P x N),
    followed by a per-user softmax over positions: the attention still depends on the candidate,
    which is DIN's defining idea, and the next-item loss can use the exact full softmax.
    """

    def __init__(self, num_items: int, dim: int, max_history: int):
        super().__init__()
        self.num_items = num_items
        self.dim = dim
        self.max_history = max_history
        self.item_embedding = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.value = nn.Linear(dim, dim, bias=False)
        self.position_bias = nn.Parameter(torch.zeros(max_history))
        # Rows of norm ~1 keep the initial attention close to uniform and the initial scores near zero.
        nn.init.normal_(self.item_embedding.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def score_items(self, history: torch.Tensor) -> torch.Tensor:
        """Scores (B, N) of items 1..N (column k is item k + 1) for left-padded histories (B, L)."""
        batch, length = history.shape
        if length > self.max_history:
            raise ValueError(f"history length {length} > max_history {self.max_history}")
        # Work on the P non-padded (user, position) pairs only: histories average ~7 of 20 slots, so
        # the (P, N) attention tensors are ~3x smaller than a padded (B, L, N) layout.
        users, positions = (history > 0).nonzero(as_tuple=True)
        h = self.item_embedding(history[users, positions])  # (P, d)
        candidates = self.item_embedding.weight[1:]  # (N, d)
        # Left padding right-aligns the histories, so position j of L is recency slot max_history - L + j.
        bias = self.position_bias[self.max_history - length + positions].unsqueeze(1)
        logits = torch.addmm(bias, h, candidates.T, alpha=self.dim**-0.5)  # (P, N) <h_j, e>/sqrt(d) + p_j
        values = self.value(h) @ candidates.T  # (P, N) <W h_j, e>
        # Softmax over each user's positions, per candidate, as segment sums; subtracting the per-user
        # max is only for numerical stability, so it needs no gradient.
        with torch.no_grad(), warnings.catch_warnings():
            # index_reduce_ is flagged beta but is ~5x faster here than scatter_reduce_.
            warnings.filterwarnings("ignore", message="index_reduce")
            shift = logits.new_full((batch, logits.shape[1]), float("-inf"))
            shift = shift.index_reduce_(0, users, logits, "amax")
        # In place: neither addmm nor sub needs its output for backward, which saves two (P, N) passes.
        weights = logits.sub_(shift[users]).exp_()
        denominator = logits.new_zeros(batch, logits.shape[1]).index_add(0, users, weights)
        numerator = logits.new_zeros(batch, logits.shape[1]).index_add(0, users, weights * values)
        # A user with an empty history (never produced by our data) gets all-zero scores, not NaN.
        return numerator / denominator.clamp_min(torch.finfo(logits.dtype).tiny)

    def score_all(self, history: torch.Tensor) -> torch.Tensor:
        """Scores (B, N + 1) indexed by item id; column 0 (padding) is -inf so it is never ranked."""
        scores = self.score_items(history)
        pad = scores.new_full((scores.shape[0], 1), float("-inf"))
        return torch.cat([pad, scores], dim=1)

    def forward(self, history: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean full-softmax cross-entropy of the targets (B,) over all N items (eq. 4)."""
        return F.cross_entropy(self.score_items(history), targets - 1)


class AdaLN(nn.Module):
    """LayerNorm whose scale and shift are predicted from a conditioning vector c:
    AdaLN(x; c) = LN(x) * (1 + gamma(c)) + beta(c), with LN carrying no affine of its own.

    The modulation linear is zero-initialised (as in DiT), so AdaLN starts as a plain LayerNorm.
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.modulation = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.modulation(cond).chunk(2, dim=-1)
        return self.norm(x) * (1 + gamma) + beta


class ModalityAdaptationLayer(nn.Module):
    """MAL (eq. 2): E_T = AdaLN(W E_S + b), mapping semantic embeddings into the collaborative space.

    Conditioning choice: the paper says AdaLN has "learnable parameters to adaptively adjust the
    normalization according to the input", and there is no other signal (no timestep or class as in
    DiT), so c is the projected input itself, x = W E_S + b. Each item thus gets its own scale and
    shift, computed before normalisation so that c still carries the magnitude information that LN
    removes. Zero-initialised modulation makes the layer start as LayerNorm(W E_S + b).
    """

    def __init__(self, semantic_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(semantic_dim, dim)
        self.adaln = AdaLN(dim, dim)

    def forward(self, semantic: torch.Tensor) -> torch.Tensor:
        x = self.proj(semantic)
        return self.adaln(x, x)


def cross_modality_alignment_loss(
    e_c: torch.Tensor, e_t: torch.Tensor, tau: float, similarity: str = "cosine"
) -> torch.Tensor:
    """InfoNCE of the CKA task (eq. 3): row i's positive is e_t[i], the negatives are e_t[j], j != i.

    Computed in the standard form: cross-entropy over the (B, B) similarity matrix / tau with the
    diagonal as label, averaged over i. Eq. 3 writes the sum over i inside the log and a denominator
    over the negatives only; we read it as the usual mean over i of -log softmax (positive included in
    the denominator), which is what "Info-NCE [3]" denotes.
    """
    if e_c.shape != e_t.shape or e_c.dim() != 2:
        raise ValueError(f"need two (B, d) tensors of equal shape, got {tuple(e_c.shape)} and {tuple(e_t.shape)}")
    if similarity == "cosine":
        e_c, e_t = F.normalize(e_c, dim=-1), F.normalize(e_t, dim=-1)
    elif similarity != "dot":
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    logits = e_c @ e_t.T / tau
    return F.cross_entropy(logits, torch.arange(e_c.shape[0], device=e_c.device))


class FusionModel(nn.Module):
    """DIN + (when the config aligns) a semantic adapter, trained with L_seq + alpha * L_align (eq. 5).

    The semantic matrix is a frozen, non-persistent buffer: it is data, not a parameter, and is left
    out of checkpoints. With ``use_mal`` False the adapter is the plain projection W E_S + b.
    """

    def __init__(self, semantic: torch.Tensor | np.ndarray, config: FusionConfig):
        super().__init__()
        semantic = torch.as_tensor(np.asarray(semantic, dtype=np.float32))
        if semantic.dim() != 2 or semantic.shape[0] < 2:
            raise ValueError(f"semantic must be (num_items + 1, dim) with num_items >= 1, got {tuple(semantic.shape)}")
        self.config = config
        self.num_items = semantic.shape[0] - 1
        self.register_buffer("semantic", semantic, persistent=False)
        self.din = DIN(self.num_items, config.embedding_dim, config.max_history)
        self.adapter: nn.Module | None = None
        if config.aligns:
            make = ModalityAdaptationLayer if config.use_mal else nn.Linear
            self.adapter = make(semantic.shape[1], config.embedding_dim)

    def adapted_semantic(self, items: torch.Tensor) -> torch.Tensor:
        """E_T rows of the given item ids."""
        if self.adapter is None:
            raise RuntimeError("this configuration has no semantic adapter (variant != 'unger' or use_cka False)")
        return self.adapter(self.semantic[items])

    def forward(self, history: torch.Tensor, targets: torch.Tensor, align_items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses for one batch; ``align_items`` are distinct item ids (1..N) for the in-batch InfoNCE."""
        seq_loss = self.din(history, targets)
        if self.adapter is None:
            align_loss = seq_loss.new_zeros(())
        else:
            align_loss = cross_modality_alignment_loss(
                self.din.item_embedding(align_items),
                self.adapted_semantic(align_items),
                self.config.tau,
                self.config.similarity,
            )
        return {"loss": seq_loss + self.config.alpha * align_loss, "seq_loss": seq_loss, "align_loss": align_loss}


def pca_semantic(semantic: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """PCA of rows 1..N of the semantic matrix to min(dim, N, ds) components; row 0 stays zero."""
    from sklearn.decomposition import PCA

    n_components = min(dim, semantic.shape[0] - 1, semantic.shape[1])
    out = np.zeros((semantic.shape[0], n_components), dtype=np.float32)
    out[1:] = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit_transform(semantic[1:])
    return out


def concat_embeddings(collaborative: np.ndarray, semantic: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """[E_C ; PCA(E_S)] (paper 4.3), each half L2-normalised per row so that neither wins by raw scale
    alone (the analysis notes both are normalised before concatenation); row 0 zero."""
    reduced = pca_semantic(np.asarray(semantic, dtype=np.float32), dim, seed)
    out = np.concatenate([unit_rows(collaborative)[0], unit_rows(reduced)[0]], axis=1)
    out[0] = 0.0
    return out


@torch.no_grad()
def integrated_embeddings(model: FusionModel | None, semantic: np.ndarray, config: FusionConfig) -> np.ndarray:
    """The item vectors to quantise into unicodes, (N + 1, d_out) float32 with row 0 zero.

    * ``semantic_only``: E_S itself (``model`` may be None).
    * ``collaborative_only``: E_C.
    * ``concat``: [E_C ; PCA(E_S)] (``concat_embeddings``).
    * ``unger``: per ``config.integrated``: ``collaborative`` = E_C, pulled towards E_T by CKA, so it
      "encapsulates knowledge from both modalities" (default); ``adapted_semantic`` = E_T;
      ``sum`` = E_C + E_T; ``concat`` = [E_C ; E_T].
    """
    semantic = np.asarray(semantic, dtype=np.float32)
    if config.variant == "semantic_only":
        out = semantic.copy()
        out[0] = 0.0
        return out
    if model is None:
        raise ValueError(f"variant {config.variant!r} needs a trained model")
    collaborative = collaborative_matrix(model)
    if config.variant == "collaborative_only" or (config.variant == "unger" and config.integrated == "collaborative"):
        out = collaborative.copy()
    elif config.variant == "concat":
        return concat_embeddings(collaborative, semantic, config.embedding_dim, config.seed)
    else:
        adapted = adapted_semantic_matrix(model)
        if config.integrated == "adapted_semantic":
            out = adapted
        elif config.integrated == "sum":
            out = collaborative + adapted
        else:
            out = np.concatenate([collaborative, adapted], axis=1)
    out[0] = 0.0
    return out.astype(np.float32)


@torch.no_grad()
def collaborative_matrix(model: FusionModel) -> np.ndarray:
    """E_C, the DIN item embedding table, (N + 1, d) float32 (row 0 is the zero padding row)."""
    return model.din.item_embedding.weight.detach().cpu().numpy().astype(np.float32, copy=True)


@torch.no_grad()
def adapted_semantic_matrix(model: FusionModel, chunk: int = 4096) -> np.ndarray:
    """E_T for every item, (N + 1, d) float32 with row 0 zero (computed in chunks to bound memory)."""
    ids = torch.arange(1, model.num_items + 1, device=model.semantic.device)
    rows = [model.adapted_semantic(ids[i : i + chunk]).cpu() for i in range(0, len(ids), chunk)]
    out = np.zeros((model.num_items + 1, model.config.embedding_dim), dtype=np.float32)
    out[1:] = torch.cat(rows).numpy()
    return out
