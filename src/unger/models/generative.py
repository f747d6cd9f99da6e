"""UNGER Stage II: an encoder-decoder Transformer that generates an item's unicode (paper section 3.4).

The encoder reads the user's history (as code tokens or item tokens); the decoder reads
``[BOS, c_1 .. c_L, c_dis]`` with a causal mask. The output at position ``l`` (0-based, BOS = 0)
predicts ``c_{l+1}`` over the K codes of that level only (L_gen, eq. 6), and the output at the
appended ``[c_dis]`` token is pulled towards the item's Stage I integrated embedding by an InfoNCE
loss against random other items (intra-modality knowledge distillation, IKD, eq. 7).
Total loss: L_gen + beta * L_distillation (eq. 8).

Layers are pre-LN (LayerNorm before each sub-block, one final LayerNorm per stack): it trains
stably without a carefully tuned warmup and matches T5, the backbone of TIGER-style recommenders.
Attention is written with ``F.scaled_dot_product_attention`` so that the beam search can (a) share
one user's encoder keys/values among all its beams without copying them and (b) cache the decoder
self-attention keys/values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unger.models.common import decay_groups, init_weights

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GenerativeConfig:
    """Stage II hyperparameters; defaults are the paper's (Table 4)."""

    d_model: int = 96
    ffn_dim: int = 256
    n_heads: int = 6
    # width of one attention head; None = d_model / n_heads. T5-style models (TIGER's) keep it at 64
    # whatever d_model is, which widens attention to n_heads * head_dim inside a narrow model.
    head_dim: int | None = None
    encoder_layers: int = 1
    decoder_layers: int = 4
    dropout: float = 0.0
    activation: str = "relu"
    max_history: int = 20
    codebook_size: int = 256  # K
    num_levels: int | None = None  # L; None = read from the code table
    integrated_dim: int | None = None  # width of the Stage I embeddings; None = read from them
    history_tokens: str = "code"  # "code": H*L encoder tokens; "item": H tokens (sum of code embeddings)
    use_distillation: bool = True
    beta: float = 1.0
    tau: float = 1.0
    num_negatives: int = 256

    def __post_init__(self):
        positive = ("d_model", "ffn_dim", "n_heads", "encoder_layers", "decoder_layers", "max_history", "codebook_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads} (or set head_dim)")
        if self.head_dim is not None and self.head_dim < 1:
            raise ValueError(f"head_dim must be >= 1, got {self.head_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.history_tokens not in ("code", "item"):
            raise ValueError(f"history_tokens must be 'code' or 'item', got {self.history_tokens!r}")
        if self.num_levels is not None and self.num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {self.num_levels}")
        if self.integrated_dim is not None and self.integrated_dim < 1:
            raise ValueError(f"integrated_dim must be >= 1, got {self.integrated_dim}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {self.num_negatives}")

    def to_dict(self) -> dict:
        return asdict(self)


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def distillation_loss(c_dis: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """IKD InfoNCE (eq. 7), mean over the batch: -log e^{c.E_t/tau} / (e^{c.E_t/tau} + sum_neg e^{c.E_neg/tau}).

    Args:
        c_dis: (B, d) decoder outputs at ``[c_dis]``.
        positives: (B, d) integrated embeddings of the targets.
        negatives: (B, M, d) per-sample negatives, or (M, d) shared by the batch.
    """
    pos = (c_dis * positives).sum(-1, keepdim=True)
    if negatives.dim() == 3:
        neg = torch.einsum("bd,bmd->bm", c_dis, negatives)
    else:
        neg = c_dis @ negatives.T
    logits = torch.cat([pos, neg], dim=1) / tau
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def sample_negatives(targets: torch.Tensor, num_items: int, num_negatives: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, M) item ids drawn uniformly from 1..num_items without the sample's own target.

    Draw from the N-1 ids 1..N-1 and shift every id >= target up by one: an exact uniform draw over
    {1..N} minus the target, with no resampling. Negatives may repeat (sampling with replacement).
    """
    if num_items < 2:
        raise ValueError("need at least two items to sample negatives")
    device = generator.device if generator is not None else targets.device
    neg = torch.randint(1, num_items, (targets.shape[0], num_negatives), generator=generator, device=device)
    neg = neg.to(targets.device)
    return neg + (neg >= targets[:, None]).long()


class Attention(nn.Module):
    """Multi-head attention; keys/values can be projected once and reused (cross-attention, KV cache)."""

    def __init__(self, cfg: GenerativeConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.head_dim or cfg.d_model // cfg.n_heads
        inner = self.n_heads * self.head_dim
        self.q_proj = nn.Linear(cfg.d_model, inner)
        self.kv_proj = nn.Linear(cfg.d_model, 2 * inner)
        self.out_proj = nn.Linear(inner, cfg.d_model)
        self.dropout = cfg.dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, d) -> keys and values, each (B, heads, S, d_head)."""
        k, v = self.kv_proj(x).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def forward(self, x, k, v, mask=None, is_causal=False) -> torch.Tensor:
        """Queries from x (B, T, d) against k/v (B, heads, S, d_head); mask (B, 1, 1, S), True = attend."""
        q = self._heads(self.q_proj(x))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        b, _, t, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: GenerativeConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.d_model)
        self.act = _ACTIVATIONS[cfg.activation]
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: GenerativeConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, *self.attn.project_kv(h), mask=mask))
        return x + self.ffn(self.ln2(x))


class DecoderLayer(nn.Module):
    """Causal self-attention over the code prefix, cross-attention to the history, feed-forward.

    Hidden states are (U, beams, T, d): self-attention runs per beam, while cross-attention folds the
    beams into the query axis of their user, so one user's memory keys/values serve all its beams.
    """

    def __init__(self, cfg: GenerativeConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg)
        self.ln3 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory_kv, memory_mask, cache=None):
        u, nb, t, d = x.shape
        h = self.ln1(x).reshape(u * nb, t, d)
        k, v = self.self_attn.project_kv(h)
        if cache is not None:
            # Incremental decoding: the new position(s) see every cached one; only T == 1 is used.
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        new_cache = (k, v)
        causal = cache is None and t > 1
        x = x + self.drop(self.self_attn(h, k, v, is_causal=causal)).view(u, nb, t, d)
        h = self.ln2(x).reshape(u, nb * t, d)
        x = x + self.drop(self.cross_attn(h, *memory_kv, mask=memory_mask)).view(u, nb, t, d)
        return x + self.ffn(self.ln3(x)), new_cache


def resolve_config(config: GenerativeConfig, codes, integrated=None) -> GenerativeConfig:
    """``config`` checked against the code table and Stage I embeddings, with ``num_levels`` and
    ``integrated_dim`` filled in from them: the configuration a model is built with, and saved with."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 3:
        raise ValueError(f"codes must be (num_items + 1, L) with at least two items, got {tuple(codes.shape)}")
    n_levels = codes.shape[1]
    if config.num_levels is not None and config.num_levels != n_levels:
        raise ValueError(f"config.num_levels={config.num_levels} but codes have {n_levels} levels")
    if int(codes[1:].min()) < 0 or int(codes[1:].max()) >= config.codebook_size:
        raise ValueError(f"codes must lie in [0, {config.codebook_size})")
    if integrated is not None:
        if integrated.shape[0] != codes.shape[0]:
            raise ValueError(f"integrated has {integrated.shape[0]} rows, codes {codes.shape[0]}")
        if config.integrated_dim is not None and config.integrated_dim != integrated.shape[1]:
            raise ValueError(f"config.integrated_dim={config.integrated_dim}, embeddings are {integrated.shape[1]}-d")
        config = replace(config, integrated_dim=int(integrated.shape[1]))
    elif config.use_distillation and config.integrated_dim is None:
        raise ValueError("use_distillation needs the integrated embeddings or config.integrated_dim")
    config = replace(config, num_levels=n_levels)
    if config.integrated_dim is None:
        config = replace(config, integrated_dim=config.d_model)
    return config


class UngerModel(nn.Module):
    """Encoder-decoder generative recommender over item unicodes, with the IKD ``[c_dis]`` token.

    Token ids: 0 = pad, ``1 + level * K + code`` for codes, then BOS and ``[c_dis]``. The code
    embedding table is shared by the encoder (history) and the decoder (target prefix).
    """

    def __init__(self, config: GenerativeConfig, codes, integrated=None):
        super().__init__()
        codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        if integrated is not None:
            integrated = torch.as_tensor(np.asarray(integrated), dtype=torch.float32)
        self.config = cfg = resolve_config(config, codes, integrated)
        K, L, d = cfg.codebook_size, cfg.num_levels, cfg.d_model
        self.num_items = codes.shape[0] - 1
        self.bos_token = 1 + L * K
        self.dis_token = 2 + L * K

        # The code table travels with the weights (a model is useless without it); the integrated
        # embeddings only serve the training loss, so they stay out of the state_dict.
        self.register_buffer("codes", codes)
        self.register_buffer("code_tokens", 1 + torch.arange(L) * K + codes, persistent=False)
        self.register_buffer("integrated", integrated, persistent=False)

        self.tok_emb = nn.Embedding(L * K + 3, d, padding_idx=0)
        self.hist_pos_emb = nn.Embedding(cfg.max_history, d)  # left-padded: H-1 = most recent item
        self.level_emb = nn.Embedding(L, d) if cfg.history_tokens == "code" else None
        self.dec_pos_emb = nn.Embedding(L + 2, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.enc_ln = nn.LayerNorm(d)
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.dec_ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, L * K)  # rows l*K..(l+1)*K-1 score level l's codes only
        # Project [c_dis] into the integrated space only when the widths differ, so the distillation
        # targets stay the frozen Stage I embeddings.
        self.dis_proj = nn.Linear(d, cfg.integrated_dim) if cfg.integrated_dim != d else None
        self.apply(init_weights)

    # ----- encoder -----
    def encode(self, history_items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded history (B, H<=max_history) -> memory (B, S, d) and its mask (B, S), True = real."""
        b, h = history_items.shape
        if h > self.config.max_history:
            raise ValueError(f"history has {h} items, max_history is {self.config.max_history}")
        valid = history_items > 0
        # A row with no history at all would make every attention weight NaN; let it attend to its
        # (padding) last slot instead, which gives a constant, history-free representation.
        valid[:, -1] |= ~valid.any(dim=1)
        pos = self.hist_pos_emb(torch.arange(self.config.max_history - h, self.config.max_history, device=history_items.device))
        tokens = self.code_tokens[history_items]  # (B, H, L), rows of item 0 are ignored via the mask
        if self.config.history_tokens == "item":
            x = self.tok_emb(tokens).sum(2) + pos
            mask = valid
        else:
            L = self.config.num_levels
            x = self.tok_emb(tokens) + self.level_emb.weight + pos[:, None, :]
            x = x.reshape(b, h * L, -1)
            mask = valid.repeat_interleave(L, dim=1)
        x = self.drop(x)
        attn_mask = mask[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, attn_mask)
        return self.enc_ln(x), mask

    def cross_kv(self, memory: torch.Tensor) -> KVCache:
        """Project the memory once into every decoder layer's cross-attention keys/values."""
        return [layer.cross_attn.project_kv(memory) for layer in self.decoder]

    # ----- decoder -----
    def decode(self, tokens, start, memory_kv, memory_mask, cache=None):
        """Run the decoder on tokens (U, beams, T) at positions start..start+T-1.

        Returns the final-LayerNorm hidden states (U, beams, T, d) and the self-attention cache
        (per layer, (U*beams, heads, start+T, d_head)) extended by these positions.
        """
        t = tokens.shape[-1]
        pos = self.dec_pos_emb(torch.arange(start, start + t, device=tokens.device))
        x = self.drop(self.tok_emb(tokens) + pos)
        mask = memory_mask[:, None, None, :]
        new_cache = []
        for i, layer in enumerate(self.decoder):
            x, kv = layer(x, memory_kv[i], mask, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.dec_ln(x), new_cache

    def level_logits(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Logits over the K codes of one level from hidden states (..., d)."""
        K = self.config.codebook_size
        sl = slice(level * K, (level + 1) * K)
        return F.linear(hidden, self.head.weight[sl], self.head.bias[sl])

    def decode_step(self, tokens, level, memory_kv, memory_mask, cache=None):
        """Feed the token at decoder position ``level`` (BOS for 0, else the level-1 code token) for
        (U, beams) sequences; return log-probs over level ``level``'s codes (U, beams, K) and the cache."""
        hidden, cache = self.decode(tokens[..., None], level, memory_kv, memory_mask, cache)
        return F.log_softmax(self.level_logits(hidden[:, :, 0], level).float(), dim=-1), cache

    def code_token_ids(self, codes: torch.Tensor, level: int | None = None) -> torch.Tensor:
        """Token ids of codes: (..., L) for full rows, or a single level's codes when ``level`` is given."""
        K = self.config.codebook_size
        if level is not None:
            return 1 + level * K + codes
        return 1 + torch.arange(codes.shape[-1], device=codes.device) * K + codes

    def _teacher_forced(self, history_items, target_items):
        """Hidden states at [BOS, c_1..c_L, c_dis] for the targets, (B, L+2, d)."""
        memory, mask = self.encode(history_items)
        b = target_items.shape[0]
        bos = torch.full((b, 1), self.bos_token, device=target_items.device)
        dis = torch.full((b, 1), self.dis_token, device=target_items.device)
        tokens = torch.cat([bos, self.code_tokens[target_items], dis], dim=1)
        hidden, _ = self.decode(tokens[:, None], 0, self.cross_kv(memory), mask)
        return hidden[:, 0]

    def logits(self, history_items: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
        """Teacher-forced code logits (B, L, K): entry l predicts c_{l+1} from BOS, c_1..c_l."""
        hidden = self._teacher_forced(history_items, target_items)
        return self._all_level_logits(hidden)

    def _all_level_logits(self, hidden):
        L, K = self.config.num_levels, self.config.codebook_size
        w = self.head.weight.view(L, K, -1)
        return torch.einsum("bld,lkd->blk", hidden[:, :L], w) + self.head.bias.view(L, K)

    def forward(self, history_items, target_items, negative_items=None, generator=None) -> dict:
        """Stage II loss for (B, H) left-padded histories and (B,) target item ids.

        gen_loss sums the L code cross-entropies per sample (eq. 6) and averages over the batch;
        distill_loss is eq. 7 with ``num_negatives`` uniform negatives per sample (``negative_items``
        (B, M) when given, else drawn with ``generator``).
        """
        cfg = self.config
        hidden = self._teacher_forced(history_items, target_items)
        logits = self._all_level_logits(hidden)
        targets = self.codes[target_items]
        gen = F.cross_entropy(logits.reshape(-1, cfg.codebook_size).float(), targets.reshape(-1), reduction="none")
        gen_loss = gen.view(targets.shape).sum(1).mean()
        if not cfg.use_distillation or cfg.beta == 0:
            zero = gen_loss.new_zeros(())
            return {"loss": gen_loss, "gen_loss": gen_loss, "distill_loss": zero}
        if self.integrated is None:
            raise RuntimeError("distillation needs the integrated embeddings; pass them to UngerModel")
        if negative_items is None:
            negative_items = sample_negatives(target_items, self.num_items, cfg.num_negatives, generator)
        c_dis = hidden[:, cfg.num_levels + 1]
        if self.dis_proj is not None:
            c_dis = self.dis_proj(c_dis)
        distill = distillation_loss(c_dis.float(), self.integrated[target_items], self.integrated[negative_items], cfg.tau)
        return {"loss": gen_loss + cfg.beta * distill, "gen_loss": gen_loss, "distill_loss": distill}

    @torch.no_grad()
    def sequence_log_probs(self, history_items: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
        """Exact log p(code(target) | history) summed over levels, (B,): the beam search's score."""
        logp = F.log_softmax(self.logits(history_items, target_items).float(), dim=-1)
        return logp.gather(-1, self.codes[target_items][..., None]).squeeze(-1).sum(-1)

    def configure_optimizer(self, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        """Adam (the paper's optimiser) with L2 decay on matrices/embeddings, none on biases and norms."""
        # foreach: one fused kernel per op over all tensors instead of a Python loop (CPU default).
        return torch.optim.Adam(decay_groups(self, weight_decay), lr=lr, foreach=True)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = [
    "GenerativeConfig",
    "UngerModel",
    "distillation_loss",
    "sample_negatives",
]
