"""The project's config loader: Kedro's OmegaConfigLoader, plus the study runs (``unger.study``)
expanded into full parameter groups after environments and ``--params`` are merged."""

from __future__ import annotations

from typing import Any

from kedro.config import OmegaConfigLoader

from unger.study import expand_study


class UngerConfigLoader(OmegaConfigLoader):
    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key == "parameters" and isinstance(config, dict) and "study" in config:
            config = expand_study(config)
        return config
