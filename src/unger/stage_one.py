"""Which Stage I settings decide its training (torch-free, so the study registry can use it).

A configuration that does not align (``collaborative_only``, ``concat``, ``unger`` without CKA, and
the EAGER-style baseline, which reads ``collaborative_only``) trains DIN alone: no adapter is built,
L_align is zero and the alignment batches come from their own generator. Its variant and the fields
that only act through the adapter and L_align do not change the weights, so such runs share one
checkpoint (tests/unit/test_fusion.py checks that they train bit-identical weights).
"""

from __future__ import annotations

from typing import Any

SIMILARITIES = ("cosine", "dot")  # sim() of eq. 3: the paper allows either
ALIGNMENT_FIELDS = ("use_cka", "use_mal", "alpha", "tau", "similarity", "align_batch_size", "integrated")


def aligns(variant: str, use_cka: bool) -> bool:
    """Whether Stage I has a semantic adapter and the CKA loss (only the ``unger`` variant can)."""
    return variant == "unger" and use_cka


def trains(variant: str) -> bool:
    """Whether Stage I trains a DIN at all (``semantic_only`` does not)."""
    return variant != "semantic_only"


def fusion_aligns(fusion: dict[str, Any]) -> bool:
    """``aligns`` of a ``fusion`` dict (FusionConfig fields; absent ones at their defaults): whether
    Stage I reads E_S itself rather than only its row count."""
    return aligns(fusion.get("variant", "unger"), fusion.get("use_cka", True))


def stage_one_identity(fusion: dict[str, Any]) -> dict[str, Any]:
    """``fusion`` (FusionConfig fields; absent ones at their defaults) as it decides Stage I's
    training: unchanged for an aligning or untrained variant, else variant ``collaborative_only``
    without the alignment fields."""
    if not trains(fusion.get("variant", "unger")) or fusion_aligns(fusion):
        return dict(fusion)
    return {**{k: v for k, v in fusion.items() if k not in ALIGNMENT_FIELDS}, "variant": "collaborative_only"}


def checkpoint_identity(fusion: dict[str, Any]) -> dict[str, Any]:
    """``stage_one_identity`` without ``max_steps``: what names Stage I's checkpoint file, so that a
    run can be extended (or cut short) and still resume."""
    return {k: v for k, v in stage_one_identity(fusion).items() if k != "max_steps"}
