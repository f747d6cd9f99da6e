"""Project hooks: validate every typed parameter group before the first node runs."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from unger.params import PARAMETER_GROUPS, validate_group


class ValidateParametersHook:
    """Fail fast on a bad parameter instead of an hour into a run."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        for name in PARAMETER_GROUPS:
            key = f"params:{name}"
            if key in catalog:
                validate_group(name, catalog.load(key))
        # Each fusion variant is the base group with its overrides on top (its label aside).
        if "params:fusion_variants" in catalog and "params:fusion" in catalog:
            base = catalog.load("params:fusion")
            for variant, overrides in (catalog.load("params:fusion_variants") or {}).items():
                merged = {**base, **{k: v for k, v in (overrides or {}).items() if k != "label"}}
                validate_group("fusion", merged)
