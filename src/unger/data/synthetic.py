"""Write a small synthetic catalog in the official Amazon 2014 file formats.

Used by the tests and the end-to-end CI run: each user walks through the items of one taste in order,
so the sequences hold real collaborative signal, and titles name the taste, so the text holds real
semantic signal.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

TASTES = ["nail polish", "face cream", "shampoo", "lipstick", "perfume", "sunscreen"]
BRANDS = ["Acme", "Belle", "Corvo", "Dune"]


def write_synthetic_category(
    folder: Path, category: str = "Synthetic", n_users: int = 200, n_items: int = 60, seed: int = 0
) -> dict[str, Path]:
    """Write ``reviews_<category>_5.json.gz`` (JSON lines) and ``meta_<category>.json.gz``
    (Python dict literals) under ``folder`` and return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    taste_of_item = np.arange(n_items) % len(TASTES)
    asins = [f"B{index:09d}" for index in range(n_items)]
    lines = []
    for user in range(n_users):
        # Each user walks through one taste's items in order (a strong sequential pattern), with an
        # occasional item from elsewhere.
        pool = np.flatnonzero(taste_of_item == rng.integers(len(TASTES)))
        position = int(rng.integers(len(pool)))
        picks = []
        for _ in range(int(rng.integers(6, 12))):
            if rng.random() < 0.85:
                picks.append(int(pool[position % len(pool)]))
                position += 1
            else:
                picks.append(int(rng.integers(n_items)))
        day = 1_300_000_000 + int(rng.integers(0, 1000)) * 86400
        for item in dict.fromkeys(picks):
            day += int(rng.integers(1, 3)) * 86400
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


def main(argv: list[str] | None = None) -> None:
    """``python -m unger.data.synthetic [--dest DIR]`` writes the synthetic category for ``--env=tiny``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dest", type=Path, default=Path("data/01_raw/amazon2014/Synthetic"))
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_synthetic_category(args.dest, "Synthetic", args.users, args.items, args.seed).values():
        print(path)


if __name__ == "__main__":
    main()
