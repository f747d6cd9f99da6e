"""SASRec baseline trained with full-softmax cross-entropy ("SASRec-CE").

SASRec (Kang & McAuley, 2018) is a causal Transformer over the item sequence: the output at every
position scores the next item. The original trains it with one sampled negative per position (BCE);
Klenitskiy & Vasilev (2023, "Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?")
show that a cross-entropy over *all* items at every non-padded position makes it a much stronger
baseline, on par with or better than BERT4Rec. That is the variant here.

Item ids: 0 = padding, 1..N = items. Output scores are the dot products of the hidden state with the
(tied) item-embedding matrix, as in the original SASRec; the padding column is masked to -inf.

Layers are pre-LN (LayerNorm before each sub-block, one final LayerNorm), like the original SASRec
code (which normalises the attention input and the FFN input) and like
``unger.models.generative``: it trains stably without warmup. Attention uses
``F.scaled_dot_product_attention`` with a causal mask that also hides left-padding keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from unger.models.common import decay_groups, init_weights

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec hyperparameters; defaults follow the original paper and Klenitskiy & Vasilev (2023)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2  # embedding, attention and residual/FFN dropout
    max_history: int = 50  # input positions; the training windows hold max_history + 1 items
    ffn_dim: int | None = None  # None = hidden (the original SASRec's point-wise FFN is d -> d -> d)
    activation: str = "relu"

    def __post_init__(self):
        for name in ("hidden", "layers", "heads", "max_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.ffn_dim is not None and self.ffn_dim < 1:
            raise ValueError(f"ffn_dim must be >= 1 (or None for hidden), got {self.ffn_dim}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")

    @property
    def ffn_width(self) -> int:
        return self.hidden if self.ffn_dim is None else self.ffn_dim

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.out_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, d); mask (B, 1, T, T), True = attend."""
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(x).chunk(3, dim=-1))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LN Transformer block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden)
        self.fc1 = nn.Linear(cfg.hidden, cfg.ffn_width)
        self.fc2 = nn.Linear(cfg.ffn_width, cfg.hidden)
        self.act = _ACTIVATIONS[cfg.activation]
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask):
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.drop(self.fc2(self.drop(self.act(self.fc1(self.ln2(x))))))


class SASRec(nn.Module):
    """Causal self-attention next-item model with tied item embeddings and a full-softmax loss."""

    def __init__(self, config: SASRecConfig, num_items: int):
        super().__init__()
        if num_items < 2:
            raise ValueError(f"num_items must be >= 2, got {num_items}")
        self.config = cfg = config
        self.num_items = num_items
        self.item_emb = nn.Embedding(num_items + 1, cfg.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_history, cfg.hidden)  # left-padded: max_history-1 = most recent
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.hidden)
        self.apply(init_weights)

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        """Left-padded item ids (B, T<=max_history) -> final-LayerNorm hidden states (B, T, d).

        Position ``t`` sees items 0..t only, and never a padding key. Positions are right-aligned
        (the last column is position max_history-1), so a history scores the same however wide it is
        padded. Outputs at padding positions are meaningless (they attend to themselves only, which
        keeps softmax finite) and must be ignored.
        """
        b, t = histories.shape
        h = self.config.max_history
        if t > h:
            raise ValueError(f"histories have {t} positions, max_history is {h}")
        dev = histories.device
        pos = self.pos_emb(torch.arange(h - t, h, device=dev))
        x = self.drop(self.item_emb(histories) + pos)
        causal = torch.ones(t, t, dtype=torch.bool, device=dev).tril()
        keys = (histories > 0)[:, None, :] | torch.eye(t, dtype=torch.bool, device=dev)  # (B, T, T)
        mask = (causal & keys)[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of all N+1 items (..., N+1) by the tied item embeddings; column 0 (padding) is -inf."""
        scores = hidden @ self.item_emb.weight.T
        return scores.index_fill(-1, torch.zeros(1, dtype=torch.long, device=scores.device), float("-inf"))

    def loss(self, histories: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean full-softmax cross-entropy over positions whose target is an item (target 0 = ignored).

        ``targets`` (B, T) holds the next item of every input position (histories shifted by one);
        logits are computed only at the kept positions, which saves the (B, T, N) tensor's padding part.
        """
        if histories.shape != targets.shape:
            raise ValueError(f"histories {tuple(histories.shape)} and targets {tuple(targets.shape)} differ")
        keep = targets > 0
        hidden = self(histories)[keep]
        return F.cross_entropy(self.logits(hidden).float(), targets[keep])

    def configure_optimizer(self, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
        """AdamW with decoupled decay on matrices/embeddings, none on biases and norms (Adam when 0)."""
        return torch.optim.AdamW(decay_groups(self, weight_decay), lr=lr, foreach=True)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = ["SASRec", "SASRecConfig"]
