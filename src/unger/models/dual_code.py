"""EAGER-style dual-code baseline: one shared encoder, two code decoders (semantic and collaborative).

EAGER (Wang et al., KDD 2024, "EAGER: Two-Stream Generative Recommender with Behavior-Semantic
Collaboration") gives every item two code sequences, a *semantic* code quantised from text
embeddings and a *collaborative* code quantised from behaviour embeddings, and generates both from
one shared encoder of the user's history with two decoders. This module is "EAGER-style": it keeps
the two streams, the sum of their generation losses and the confidence merge of their beam-search
lists (``unger.inference.dual_code_search``), and leaves out EAGER's global summary token with its
contrastive task and its semantic-guided transfer (reconstruction/recognition) task. There is no
UNGER distillation either: ``GenerativeConfig.use_distillation`` (and ``beta``, ``tau``,
``num_negatives``, ``integrated_dim``) are ignored, the model's ``config`` has
``use_distillation=False``. Comparing it with UngerModel isolates one unified code vs. two separate
codes under the same backbone, beam width and top-k.

Construction reuses ``UngerModel`` instead of copying it: ``semantic`` is an UngerModel over the
semantic code table (encoder + semantic decoder, with one token embedding for both, as in UNGER);
``collaborative`` is an UngerModel over the collaborative table whose encoder-side modules are
removed, so it is a decoder with its own token embedding (code tokens, BOS), positions and head that
cross-attends to the shared encoder's memory. Each stream keeps UngerModel's decoder API
(``cross_kv``/``decode``/``decode_step``/``level_logits``/``code_token_ids``/``bos_token``/
``config``), which is what the constrained beam search drives.

History tokens: the shared encoder reads the history through the *semantic* code table, as code
tokens (``history_tokens="code"``: H*L tokens) or item tokens (``"item"``: H tokens, the sum of each
item's semantic code embeddings), exactly like UngerModel reads its unicodes. The semantic codes are
content-derived and defined for every item, and this keeps the encoder input the same kind as the
unified model's, so the comparison changes only the decoder targets. The collaborative codes are
only generated, never read.

Both code tables are (N+1, L) int arrays with row 0 the padding item; they must index the same N
items and use the same codebook size K (``config.codebook_size``); their lengths L may differ
(``config.num_levels`` is then left None and each stream's own config holds its L).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from unger.models.generative import GenerativeConfig, UngerModel

STREAMS = ("semantic", "collaborative")

# UngerModel's modules that only serve the encoder; the collaborative stream drops them.
_ENCODER_MODULES = ("encoder", "enc_ln", "hist_pos_emb", "level_emb")


class DualCodeModel(nn.Module):
    """Shared history encoder and two code decoders trained with L_gen(semantic) + L_gen(collaborative).

    Attributes:
        semantic: UngerModel over ``semantic_codes``; its encoder is the shared one.
        collaborative: UngerModel over ``collaborative_codes`` without encoder modules (decoder only).
        config: the semantic stream's resolved config (``use_distillation=False``); when the tables
            have different lengths ``num_levels`` is None.
    """

    def __init__(self, config: GenerativeConfig, semantic_codes, collaborative_codes):
        super().__init__()
        sem = np.asarray(semantic_codes)
        col = np.asarray(collaborative_codes)
        if sem.ndim != 2 or col.ndim != 2 or sem.shape[0] != col.shape[0]:
            raise ValueError(f"code tables must be (N + 1, L) over the same items, got {sem.shape} and {col.shape}")
        cfg = replace(config, use_distillation=False, integrated_dim=None)
        self.semantic = UngerModel(cfg, sem)
        self.collaborative = UngerModel(cfg, col)
        for name in _ENCODER_MODULES:
            setattr(self.collaborative, name, None)
        same_length = sem.shape[1] == col.shape[1]
        self.config = self.semantic.config if same_length else replace(self.semantic.config, num_levels=None)
        self.num_items = self.semantic.num_items

    def streams(self) -> dict[str, UngerModel]:
        return {"semantic": self.semantic, "collaborative": self.collaborative}

    def encode(self, history_items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared encoder: left-padded history (B, H) -> memory (B, S, d) and mask (B, S)."""
        return self.semantic.encode(history_items)

    def _stream_logits(self, stream: UngerModel, memory, mask, target_items) -> torch.Tensor:
        """Teacher-forced code logits (B, L, K) of one stream: entry l predicts c_{l+1} from BOS, c_1..c_l."""
        b = target_items.shape[0]
        bos = torch.full((b, 1), stream.bos_token, device=target_items.device)
        tokens = torch.cat([bos, stream.code_tokens[target_items][:, :-1]], dim=1)  # [BOS, c_1 .. c_{L-1}]
        hidden, _ = stream.decode(tokens[:, None], 0, stream.cross_kv(memory), mask)
        return torch.stack([stream.level_logits(hidden[:, 0, l], l) for l in range(tokens.shape[1])], dim=1)

    def logits(self, history_items: torch.Tensor, target_items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced code logits per stream, {name: (B, L, K)}; the history is encoded once."""
        memory, mask = self.encode(history_items)
        return {name: self._stream_logits(s, memory, mask, target_items) for name, s in self.streams().items()}

    def forward(self, history_items: torch.Tensor, target_items: torch.Tensor) -> dict:
        """Loss for (B, H) left-padded histories and (B,) targets: L_gen(semantic) + L_gen(collaborative).

        Each L_gen is UngerModel's: the L code cross-entropies summed per sample, averaged over the batch.
        """
        out = {}
        for name, logits in self.logits(history_items, target_items).items():
            targets = self.streams()[name].codes[target_items]
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none")
            out[f"gen_loss_{name}"] = ce.view(targets.shape).sum(1).mean()
        return {"loss": out["gen_loss_semantic"] + out["gen_loss_collaborative"], **out}

    @torch.no_grad()
    def sequence_log_probs(self, history_items: torch.Tensor, target_items: torch.Tensor) -> dict[str, torch.Tensor]:
        """Exact log p(code(target) | history) per stream, {name: (B,)}: each stream's beam-search score."""
        out = {}
        for name, logits in self.logits(history_items, target_items).items():
            codes = self.streams()[name].codes[target_items]
            out[name] = F.log_softmax(logits.float(), dim=-1).gather(-1, codes[..., None]).squeeze(-1).sum(-1)
        return out

    # Same parameter groups (decay on matrices/embeddings only) and counting as UngerModel.
    configure_optimizer = UngerModel.configure_optimizer
    num_parameters = UngerModel.num_parameters


__all__ = ["DualCodeModel", "STREAMS"]
