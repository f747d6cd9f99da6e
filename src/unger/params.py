"""Typed parameter groups, one per pipeline, validated before any node runs (see ``hooks.py``).

Groups whose fields are a model's own config dataclass (``FusionConfig``, ...) point at it by import
path, so the YAML, the validation and the model share one definition and the CLI does not import torch
at start-up.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


# Settings added after runs and checkpoints were recorded, each with the value that behaves as the code
# did before it existed. At that value a setting is left out of checkpoint names and of a study record's
# settings fingerprint, so adding it neither orphans checkpoints nor makes old and new seeds look different.
ADDED_SETTINGS: dict[str, dict[str, Any]] = {"generative": {"lr_schedule": "constant", "head_dim": None}}


def without_added_defaults(group: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of ``group`` less the ``ADDED_SETTINGS`` that are at their old behaviour."""
    added = ADDED_SETTINGS.get(group, {})
    return {k: v for k, v in values.items() if not (k in added and added[k] == v)}


class Params(BaseModel):
    """Base: unknown keys are errors, so a typo in YAML or ``--params`` never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataProcessingParams(Params):
    category: str = Field("Beauty", description="Amazon 2014 category, as in reviews_<category>_5.json.gz")
    k_core: int = Field(5, ge=1)
    max_history: int = Field(20, ge=1, description="history items kept for validation/test users")
    max_bad_lines: int = Field(0, ge=0, description="malformed raw lines tolerated before the run fails")
    require_meta: bool = Field(True, description="fail when the category has no meta file")


class RuntimeParams(Params):
    device: Literal["auto", "cpu", "cuda", "mps"] | str = "auto"
    seed: int = 2024
    checkpoint_dir: str = Field(
        "data/06_models/checkpoints",
        description="resumable training checkpoints, named after a hash of their config and inputs",
    )
    checkpoint_every_s: float = Field(
        600.0, ge=0, description="Stage II/SASRec also checkpoint this often between evaluations (0: only at them)"
    )
    run_label: str = Field("", description="set by the study for its runs: prefixes MLflow metric names")


class EncoderParams(Params):
    model: str = "all-MiniLM-L6-v2"
    pooling: Literal["mean", "last_token"] | None = None
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    normalize: bool = False


class SemanticParams(Params):
    encoder: EncoderParams = EncoderParams()
    template: str = "Title: {title}. Brand: {brand}. Categories: {categories}."
    fallback: str = "brand_categories"


class QuantizationParams(Params):
    method: Literal["hierarchical_kmeans", "residual_kmeans", "unique_residual_kmeans", "random", "rqvae"] = "hierarchical_kmeans"
    K: int = Field(256, ge=2)
    L: int | None = Field(None, ge=1)
    max_depth: int | None = Field(None, ge=1)
    seed: int = 2024


class DominanceParams(Params):
    n_reference: int | None = Field(1024, ge=2)
    perplexity: float = Field(30.0, gt=1)
    tsne_points: int = Field(3000, ge=10)
    tsne_clusters: int = Field(10, ge=2)
    seed: int = 2024


class EvaluationParams(Params):
    beam_size: int = Field(100, ge=1)
    top_k: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1, description="users decoded together")
    ks: tuple[int, ...] = (5, 10, 20)


# Derived from the inputs (codes, integrated embeddings), never set in YAML.
_DERIVED_MODEL_FIELDS = ("codebook_size", "num_levels", "integrated_dim")


def parse_generative(values: dict[str, Any], codes=None, integrated=None) -> tuple[Any, Any]:
    """Split the flat ``generative`` group into ``(GenerativeConfig, TrainConfig)``.

    K, L and the Stage I width come from ``codes`` and ``integrated`` when given, never from YAML.
    """
    from unger.models.generative import GenerativeConfig
    from unger.training.generative import TrainConfig

    derived: dict[str, Any] = {}
    if codes is not None:
        derived["codebook_size"] = int(codes.max()) + 1
        derived["num_levels"] = int(codes.shape[1])
    if integrated is not None:
        derived["integrated_dim"] = int(integrated.shape[1])
    return _split_flat(values, "generative", GenerativeConfig, TrainConfig, derived, _DERIVED_MODEL_FIELDS)


def _split_flat(values: dict[str, Any], group: str, model_cls: type, train_cls: type,
                derived: dict[str, Any] | None = None, not_settable: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """One flat YAML group -> (model config, train config); unknown keys name the group.

    ``not_settable`` model fields are unknown keys in YAML; ``derived`` sets them from the inputs.
    """
    values = dict(values or {})
    model_fields = {f.name for f in dataclasses.fields(model_cls)} - set(not_settable)
    train_fields = {f.name for f in dataclasses.fields(train_cls)}
    unknown = sorted(set(values) - model_fields - train_fields)
    if unknown:
        raise ValueError(f"invalid parameters in group '{group}': unknown key(s) {unknown}; known: {sorted(model_fields | train_fields)}")
    model_values = {**{k: v for k, v in values.items() if k in model_fields}, **(derived or {})}
    model = parse_dataclass(model_cls, model_values, group)
    train = parse_dataclass(train_cls, {k: v for k, v in values.items() if k in train_fields}, group)
    return model, train


def parse_sasrec(values: dict[str, Any]) -> tuple[Any, Any]:
    """Split the flat ``sasrec`` group into ``(SASRecConfig, SASRecTrainConfig)``."""
    from unger.models.sasrec import SASRecConfig
    from unger.training.sasrec import SASRecTrainConfig

    return _split_flat(values, "sasrec", SASRecConfig, SASRecTrainConfig)


PARAMETER_GROUPS: dict[str, type[Params] | str] = {
    "data_processing": DataProcessingParams,
    "runtime": RuntimeParams,
    "semantic": SemanticParams,
    "fusion": "unger.models.fusion:FusionConfig",
    "quantization": QuantizationParams,
    "generative": "unger.params:parse_generative",
    "evaluation": EvaluationParams,
    "dominance": DominanceParams,
    "sasrec": "unger.params:parse_sasrec",
}


def _resolve(spec: type | str) -> type:
    if isinstance(spec, str):
        module, name = spec.split(":")
        return getattr(importlib.import_module(module), name)
    return spec


def _invalid(group: str, exc: ValidationError) -> ValueError:
    """One error naming every bad field of ``group``."""
    problems = "; ".join(f"{group}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return ValueError(f"invalid parameters in group '{group}': {problems}")


def parse_dataclass(cls: type, values: dict[str, Any], group: str) -> Any:
    """Build config dataclass ``cls`` from ``values``: unknown keys and bad types are errors."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values or {}) - known)
    if unknown:
        raise ValueError(f"invalid parameters in group '{group}': unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return TypeAdapter(cls).validate_python(dict(values or {}))
    except ValidationError as exc:
        raise _invalid(group, exc) from None


def validate_group(name: str, values: dict[str, Any]) -> Any:
    """Build the typed group ``name`` from ``values``, with an error naming every bad field."""
    model = _resolve(PARAMETER_GROUPS[name])
    if not isinstance(model, type):
        return model(values)
    if dataclasses.is_dataclass(model):
        return parse_dataclass(model, values, name)
    try:
        return model(**(values or {}))
    except ValidationError as exc:
        raise _invalid(name, exc) from None
