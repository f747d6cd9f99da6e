"""The data_processing pipeline with SequentialRunner on an in-memory catalog."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tests.conftest import write_gz
from unger.data.ingest import RawDataError
from unger.pipelines.data_processing import create_pipeline
from unger.pipelines.data_processing.nodes import ingest_reviews

OUTPUTS = ["interactions", "items", "train_sequences", "valid_samples", "test_samples", "data_stats"]
PARAMS = {"category": "Synthetic", "k_core": 5, "max_history": 20, "max_bad_lines": 0, "require_meta": True}


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read intermediate outputs."""

    def _release(self) -> None:
        pass


def _run(raw_dir: Path, params: dict) -> dict:
    catalog = DataCatalog(
        {
            "amazon_raw": MemoryDataset(raw_dir),
            "params:data_processing": MemoryDataset(params),
            **{name: KeptDataset() for name in OUTPUTS},
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def test_pipeline_outputs_are_consistent(raw_dir: Path):
    out = _run(raw_dir, PARAMS)
    inter, stats = out["interactions"], out["data_stats"]
    assert stats["users"] == inter["user_id"].nunique() == len(out["test_samples"])
    assert stats["items"] == inter["item_id"].nunique() == len(out["items"])
    assert stats["interactions"] == len(inter)
    assert (inter.groupby("user_id").size() >= 5).all() and (inter.groupby("item_id").size() >= 5).all()
    assert out["items"]["item_id"].tolist() == list(range(1, stats["items"] + 1))
    per_user = inter.groupby("user_id").size()
    train_len = out["train_sequences"].set_index("user_id")["items"].map(len)
    assert (train_len == per_user - 2).all()
    assert stats["items_without_text"] == int((~out["items"]["has_text"]).sum()) == 1
    assert "&amp;" not in " ".join(out["items"]["title"].dropna())


def test_pipeline_fails_on_bad_line_and_tolerates_when_allowed(raw_dir: Path):
    reviews = raw_dir / "Synthetic" / "reviews_Synthetic_5.json.gz"
    original = gzip.open(reviews).read()
    write_gz(reviews, original + b'{"reviewerID": "U1", "asin": "B000000001"}\n')
    with pytest.raises(RawDataError, match="unixReviewTime"):
        ingest_reviews(raw_dir, PARAMS)
    frame, report = ingest_reviews(raw_dir, {**PARAMS, "max_bad_lines": 1})
    assert report["bad_lines"] == 1 and "unixReviewTime" in report["bad_examples"][0]
    assert len(frame) == original.count(b"\n")


def test_missing_meta_is_a_clear_error_unless_allowed(raw_dir: Path):
    (raw_dir / "Synthetic" / "meta_Synthetic.json.gz").unlink()
    with pytest.raises(Exception, match="meta_Synthetic.json.gz.*no text"):
        _run(raw_dir, PARAMS)
    out = _run(raw_dir, {**PARAMS, "require_meta": False})
    assert out["data_stats"]["items_without_text"] == out["data_stats"]["items"]


def test_unknown_parameter_is_rejected(raw_dir: Path):
    with pytest.raises(Exception, match="k_cor"):
        ingest_reviews(raw_dir, {**PARAMS, "k_cor": 3})
