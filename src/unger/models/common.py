"""Initialisation and optimiser parameter groups shared by the project's Transformer models."""

from __future__ import annotations

import torch
import torch.nn as nn


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases (GPT/T5 practice); the padding embedding stays zero.

    Meant for ``model.apply(init_weights)``: Linear and Embedding weights ~ N(0, 0.02), Linear biases 0,
    an Embedding's ``padding_idx`` row 0, LayerNorm weight 1 and bias 0; other modules are left alone.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimiser parameter groups: ``weight_decay`` on matrices/embeddings (dim >= 2), none on biases
    and norms; trainable parameters only, in ``model.parameters()`` order."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


__all__ = ["decay_groups", "init_weights"]
