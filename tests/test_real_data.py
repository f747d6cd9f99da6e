"""Checks on the real Amazon 2014 Beauty files in ../shared (skipped only where they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from unger.pipelines.data_processing import create_pipeline

pytestmark = pytest.mark.real_data


def test_beauty_counts_match_the_official_5core(shared_beauty: Path):
    params = {"category": "Beauty", "k_core": 5, "max_history": 20, "max_bad_lines": 0, "require_meta": True}
    catalog = DataCatalog(
        {"amazon_raw": MemoryDataset(shared_beauty.parent), "params:data_processing": MemoryDataset(params)}
    )
    out = SequentialRunner().run(create_pipeline(), catalog)
    stats = out["data_stats"].load()
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    assert stats["items_without_text"] == 7
    assert stats["ingest"]["reviews"]["bad_lines"] == 0 and stats["ingest"]["meta"]["bad_lines"] == 0
    assert stats["ingest"]["reviews"]["duplicate_pairs_dropped"] == 0
    assert stats["sequence_length"]["max"] == 204 and stats["sequence_length"]["users_longer_than_20"] == 1136
    test = out["test_samples"].load()
    assert len(test) == 22363 and test["history"].map(len).max() == 20
