"""Turn item metadata rows into the strings a text encoder reads.

A template such as ``"Title: {title}. Brand: {brand}. Categories: {categories}."`` is split into one
segment per placeholder (the literal text before a placeholder belongs to it, and the literal text right
after it up to the first whitespace is its closing punctuation). A segment whose field is missing is
dropped whole, so a missing brand leaves neither ``"None"`` nor a dangling ``"Brand: ."``.

Items without a title get a fallback text instead of a zero vector (a zero row would put every such item in
the same place and make it unreachable for cosine-based steps later on):

* ``"brand_categories"`` (default): the same template without the title, i.e. brand and category paths,
  which every Amazon Beauty item has;
* ``"unknown"``: ``"Unknown item <asin>"``;
* any other string is used as a template of its own (same placeholders).

Whatever the choice, an item whose fallback text is still empty becomes ``"Unknown item <asin>"``.
The output depends only on the rows, so it is deterministic.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable

import numpy as np
import pandas as pd

DEFAULT_TEMPLATE = "Title: {title}. Brand: {brand}. Categories: {categories}."
FALLBACKS = ("brand_categories", "unknown")
FIELDS = ("title", "brand", "categories", "asin", "item_id")
_SENTENCE_END = ".!?"


def _clean(value) -> str | None:
    """Missing values (None, NaN, empty or blank strings) become None; others a stripped string."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = " ".join(str(value).split())
    return text or None


def _categories_text(paths) -> str | None:
    """Join category paths with "; ", dropping blanks and repeats (order kept)."""
    if paths is None or (isinstance(paths, float) and math.isnan(paths)):
        return None
    if isinstance(paths, str):
        paths = [paths]
    seen: list[str] = []
    for path in paths:
        text = _clean(path)
        if text and text not in seen:
            seen.append(text)
    return "; ".join(seen) or None


def _segments(template: str) -> list[tuple[str, str, str]]:
    """Split ``template`` into ``(prefix, field, suffix)`` triples, one per placeholder."""
    parsed = [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]
    fields = [f for _, f in parsed if f is not None]
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown:
        raise ValueError(f"unknown template field(s) {unknown}; allowed: {list(FIELDS)}")
    if not fields:
        raise ValueError(f"template {template!r} has no placeholder")
    literals = [lit for lit, _ in parsed]
    # Formatter yields a trailing (literal, None) only when text follows the last field.
    if parsed[-1][1] is not None:
        literals.append("")
    triples = []
    prefix = literals[0]
    for k, field in enumerate(fields):
        after = literals[k + 1]
        if k + 1 == len(fields):
            suffix, next_prefix = after, ""
        else:
            # Closing punctuation sticks to the field before it; the rest opens the next segment.
            match = re.match(r"\S*", after)
            suffix, next_prefix = after[: match.end()], after[match.end():]
        triples.append((prefix, field, suffix))
        prefix = next_prefix
    return triples


def _render(segments: list[tuple[str, str, str]], values: dict[str, str | None], skip: Iterable[str] = ()) -> str:
    parts = []
    for prefix, field, suffix in segments:
        value = values.get(field)
        if field in skip or value is None:
            continue
        # Avoid "1oz.." when the value already ends a sentence and the template adds a full stop.
        if suffix[:1] == "." and value[-1] in _SENTENCE_END:
            suffix = suffix[1:]
        parts.append(f"{prefix}{value}{suffix}")
    return " ".join("".join(parts).split())


def item_texts(
    items: pd.DataFrame,
    template: str = DEFAULT_TEMPLATE,
    fallback: str = "brand_categories",
) -> tuple[list[str], np.ndarray]:
    """Render one text per row of ``items`` (in row order).

    Returns the texts and a bool array marking rows that had no title and so used ``fallback``
    (see the module docstring for its values).
    """
    main = _segments(template)
    if fallback == "brand_categories":
        fallback_segments, skip = main, ("title",)
    elif fallback == "unknown":
        fallback_segments, skip = None, ()
    else:
        fallback_segments, skip = _segments(fallback), ()

    texts: list[str] = []
    used = np.zeros(len(items), dtype=bool)
    columns = set(items.columns)
    for row_index, row in enumerate(items.itertuples(index=False)):
        record = row._asdict()
        values = {
            "title": _clean(record.get("title")),
            "brand": _clean(record.get("brand")),
            "categories": _categories_text(record.get("categories")) if "categories" in columns else None,
            "asin": _clean(record.get("asin")),
            "item_id": _clean(record.get("item_id")),
        }
        unknown = f"Unknown item {values['asin'] or values['item_id'] or row_index}"
        if values["title"] is not None:
            text = _render(main, values)
        else:
            used[row_index] = True
            text = _render(fallback_segments, values, skip) if fallback_segments is not None else ""
        texts.append(text or unknown)
    return texts, used
