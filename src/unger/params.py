"""Typed parameter groups, one per pipeline; validated before any node runs (see ``hooks.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


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


PARAMETER_GROUPS: dict[str, type[Params]] = {
    "data_processing": DataProcessingParams,
    "runtime": RuntimeParams,
}


def validate_group(name: str, values: dict[str, Any]) -> Params:
    """Build the typed group ``name`` from ``values``, with an error naming every bad field."""
    model = PARAMETER_GROUPS[name]
    try:
        return model(**(values or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid parameters in group '{name}': {problems}") from None
