"""Write a small synthetic catalog in the official Amazon 2014 file formats.

Used by the tests and the end-to-end CI run: users follow a few latent tastes, so the sequences hold
real collaborative signal, and titles name the taste, so the text holds real semantic signal.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

TASTES = ["nail polish", "face cream", "shampoo", "lipstick", "perfume", "sunscreen"]
BRANDS = ["Acme", "Belle", "Corvo", "Dune"]


def write_synthetic_category(
    folder: Path, category: str = "Synthetic", n_users: int = 120, n_items: int = 60, seed: int = 0
) -> dict[str, Path]:
    """Write ``reviews_<category>_5.json.gz`` (JSON lines) and ``meta_<category>.json.gz``
    (Python dict literals) under ``folder`` and return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    taste_of_item = np.arange(n_items) % len(TASTES)
    asins = [f"B{index:09d}" for index in range(n_items)]
    lines = []
    for user in range(n_users):
        taste = rng.integers(len(TASTES))
        pool = np.flatnonzero(taste_of_item == taste)
        others = np.flatnonzero(taste_of_item != taste)
        length = int(rng.integers(5, 12))
        picks = [
            int(rng.choice(pool)) if rng.random() < 0.8 else int(rng.choice(others)) for _ in range(length)
        ]
        day = 1_300_000_000 + int(rng.integers(0, 1000)) * 86400
        for item in dict.fromkeys(picks):
            day += int(rng.integers(0, 3)) * 86400
            record = {"reviewerID": f"U{user:05d}", "asin": asins[item], "unixReviewTime": day}
            lines.append(json.dumps(record))
    reviews = folder / f"reviews_{category}_5.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    meta = folder / f"meta_{category}.json.gz"
    with gzip.open(meta, "wt", encoding="utf-8") as fh:
        for index, asin in enumerate(asins):
            taste = TASTES[taste_of_item[index]]
            record = {
                "asin": asin,
                "title": f"{BRANDS[index % len(BRANDS)]} {taste} no. {index} &amp; more",
                "categories": [["Beauty", taste.title()]],
                "brand": BRANDS[index % len(BRANDS)],
            }
            if index == n_items - 1:
                del record["title"]
            fh.write(repr(record) + "\n")
    return {"reviews": reviews, "meta": meta}
