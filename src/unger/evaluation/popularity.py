"""Where a model's hits come from: Recall/NDCG@k split by how often the target occurs in training.

Generative recommenders are argued to help long-tail items (their codes share tokens with similar
items), and the test targets of a leave-one-out split are, being later, rarer in the training data
than the validation targets. A breakdown by the target's training count shows both: how each model
does on rare and frequent items, and how much of a validation-to-test drop is the change in that mix.
Buckets are the target's occurrences in the training sequences, with fixed edges so that every run's
breakdown lines up. The other side of the same question, where a model's recommendations go, is in
each bucket's ``rec_share@k`` (the share of all top-k slots filled with the bucket's items) and
``coverage@k`` (the share of the bucket's catalog items that some user gets in a top-k list).

    python -m unger.evaluation.popularity semantic_only_s2025 sasrec_ce_s2025
    python -m unger.evaluation.popularity <run> --codes data/05_model_input/study/<run>/item_codes.npy
    python -m unger.evaluation.popularity <a> <b> --codes <a's item_codes.npy> <b's item_codes.npy>
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from unger.evaluation.metrics import rank_of_target, user_recall_ndcg
from unger.evaluation.significance import STUDY_OUTPUTS, load_recommendations

# Lower edges of the buckets: [0, 5), [5, 10), [10, 20), [20, 50), [50, inf) training occurrences.
POPULARITY_EDGES = (0, 5, 10, 20, 50)


def bucket_labels(edges: Iterable[int] = POPULARITY_EDGES) -> list[str]:
    """``["0-4", "5-9", ..., "50+"]`` for the lower edges ``edges``."""
    edges = list(edges)
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f"{edges[-1]}+"]


def training_counts(train_sequences: pd.DataFrame) -> pd.Series:
    """How often each item id occurs in the training sequences (``items`` column), as a Series by item id."""
    items = [np.asarray(seq, dtype=np.int64) for seq in train_sequences["items"]]
    flat = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
    return pd.Series(flat).value_counts()


def metrics_by_popularity(recommendations: pd.DataFrame, counts: pd.Series, ks: Iterable[int],
                          edges: Iterable[int] = POPULARITY_EDGES, num_items: int | None = None) -> list[dict]:
    """One entry per popularity bucket: its label, edges, users, share of users and Recall/NDCG@k,
    and on the recommendation side ``items``, ``rec_share@k`` and ``coverage@k``.

    ``recommendations``: ``target`` and ``items`` (ranked ids, best first) per user; ``counts``: the
    training count of each item (items absent from it count 0). Every user falls in exactly one bucket,
    so the users of the buckets add up to the split's, and the share-weighted means to its metrics.
    The catalog is item ids 1..``num_items``; without it, every id in ``counts``, the targets or the
    lists (an item in none of them could not be counted, nor covered).
    """
    edges, ks = list(edges), list(ks)
    if edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"popularity edges must start at 0 and increase, not {edges}")
    targets = recommendations["target"].to_numpy(dtype=np.int64)
    if len(targets) == 0:
        raise ValueError("no users to break down")
    ranked = np.stack([np.asarray(x) for x in recommendations["items"]])
    if ranked.shape[1] < max(ks):
        raise ValueError(f"recommendation lists hold {ranked.shape[1]} items, fewer than k={max(ks)}")
    ranks = rank_of_target(ranked, targets)
    if num_items is None:
        catalog = np.union1d(np.union1d(counts.index.to_numpy(dtype=np.int64), targets), ranked[:, :max(ks)])
        catalog = catalog[catalog > 0]
    else:
        catalog = np.arange(1, num_items + 1)
    bucket_of = _bucketer(counts, edges)
    bucket = bucket_of(targets)
    catalog_bucket = bucket_of(catalog)
    top = {k: ranked[:, :k] for k in ks}
    top_bucket = {k: bucket_of(top[k].ravel()) for k in ks}
    out = []
    for b, label in enumerate(bucket_labels(edges)):
        mask = bucket == b
        bucket_items = catalog[catalog_bucket == b]
        entry = {"bucket": label, "min_count": edges[b], "max_count": edges[b + 1] - 1 if b + 1 < len(edges) else None,
                 "users": int(mask.sum()), "share": float(mask.mean()), "items": int(len(bucket_items))}
        for k in ks:
            recall, ndcg = user_recall_ndcg(ranks[mask], k)
            entry[f"recall@{k}"] = float(recall.mean()) if mask.any() else None
            entry[f"ndcg@{k}"] = float(ndcg.mean()) if mask.any() else None
            entry[f"rec_share@{k}"] = float((top_bucket[k] == b).mean())
            covered = np.isin(bucket_items, top[k])
            entry[f"coverage@{k}"] = float(covered.mean()) if len(bucket_items) else None
        out.append(entry)
    return out


def at_mix(buckets: list[dict], mix: list[dict], metric: str = "ndcg@10") -> float:
    """``metric`` of a split if its users had ``mix``'s bucket shares: the per-bucket values of ``buckets``
    weighted by the ``share`` of each bucket in ``mix`` (both from ``metrics_by_popularity`` with the same
    edges). With ``buckets`` from validation and ``mix`` from test it says how much of a validation-to-test
    change the rarer test targets alone would make; the rest is change within the buckets."""
    if [e["bucket"] for e in buckets] != [e["bucket"] for e in mix]:
        raise ValueError(f"bucket edges differ: {[e['bucket'] for e in buckets]} vs {[e['bucket'] for e in mix]}")
    return float(sum(m["share"] * (b[metric] or 0.0) for b, m in zip(buckets, mix)))


def prefix_hits_by_popularity(recommendations: pd.DataFrame, counts: pd.Series, codes: np.ndarray, k: int = 10,
                              edges: Iterable[int] = POPULARITY_EDGES) -> list[dict]:
    """Per popularity bucket, the share of users whose top-k holds an item sharing the target's first
    ``l`` codes, for l = 1..L (``prefix_hit@k`` list), then the item itself (``hit@k``).

    For a generative model this says at which code level a bucket's targets are lost: a rare target
    whose cluster (level-1 prefix) is in the list as often as a frequent one's, but which itself is
    not, is lost at the later levels. ``codes``: one row per item id (row 0 padding), as the pipeline's
    ``item_codes.npy``; any ranked list can be read against any code table.
    """
    edges = list(edges)
    codes = np.asarray(codes)
    targets = recommendations["target"].to_numpy(dtype=np.int64)
    ranked = np.stack([np.asarray(x) for x in recommendations["items"]])[:, :k]
    if max(targets.max(), ranked.max()) >= len(codes):
        raise ValueError(f"item ids go up to {max(targets.max(), ranked.max())}, the code table has {len(codes)} rows")
    bucket = _bucketer(counts, edges)(targets)
    listed, wanted = codes[ranked], codes[targets][:, None, :]
    same = np.cumprod(listed == wanted, axis=2).astype(bool)  # (users, k, L): first l+1 codes all equal
    prefix_hit = same.any(axis=1)  # (users, L)
    hit = (ranked == targets[:, None]).any(axis=1)
    out = []
    for b, label in enumerate(bucket_labels(edges)):
        m = bucket == b
        out.append({"bucket": label, "users": int(m.sum()),
                    f"prefix_hit@{k}": [float(x) for x in prefix_hit[m].mean(axis=0)] if m.any() else None,
                    f"hit@{k}": float(hit[m].mean()) if m.any() else None})
    return out


def _bucketer(counts: pd.Series, edges: list[int]):
    """A function from item ids to bucket indices by their training count (absent ids count 0)."""
    def bucket_of(items: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(edges), counts.reindex(items).fillna(0).to_numpy(), side="right") - 1
    return bucket_of


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="study run names (ranked lists in --root/<run>/) or recommendations .parquet paths")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--train", type=Path, default=Path("data/05_model_input/train_sequences.parquet"))
    parser.add_argument("--root", type=Path, default=STUDY_OUTPUTS)
    parser.add_argument("--codes", type=Path, nargs="+", help="item_codes.npy files, one for every run or one per "
                        "run in the order of the runs: also print, per bucket, how often the top-k holds the "
                        "target's level-1..L code prefix under that run's codes")
    args = parser.parse_args(argv)
    if args.codes is not None and len(args.codes) not in (1, len(args.runs)):
        parser.error(f"--codes takes one file for every run or one per run ({len(args.runs)}), not {len(args.codes)}")
    counts = training_counts(pd.read_parquet(args.train))
    table, frames = {}, {}
    for run in args.runs:
        frames[run] = load_recommendations(run, args.split, args.root)
        table[run] = metrics_by_popularity(frames[run], counts, [args.k])
    labels = bucket_labels()
    first = next(iter(table.values()))
    print(f"{args.split} NDCG@{args.k} by the target's training count")
    print("| run | " + " | ".join(labels) + " | all |")
    print("|---" * (len(labels) + 2) + "|")
    print("| users | " + " | ".join(f"{e['users']} ({e['share']:.0%})" for e in first) + f" | {sum(e['users'] for e in first)} |")
    for run, entries in table.items():
        overall = sum(e["share"] * (e[f"ndcg@{args.k}"] or 0.0) for e in entries)
        cells = " | ".join("-" if e[f"ndcg@{args.k}"] is None else f"{e[f'ndcg@{args.k}']:.4f}" for e in entries)
        print(f"| {run} | {cells} | {overall:.4f} |")
    print(f"\nshare of the top-{args.k} slots (and of the bucket's items recommended to anyone)")
    print("| run | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    print("| catalog items | " + " | ".join(str(e["items"]) for e in first) + " |")
    for run, entries in table.items():
        print(f"| {run} | " + " | ".join(f"{e[f'rec_share@{args.k}']:.0%} ({e[f'coverage@{args.k}']:.0%})"
                                          if e["items"] else "-" for e in entries) + " |")
    if args.codes is not None:
        code_files = dict(zip(args.runs, args.codes if len(args.codes) > 1 else args.codes * len(args.runs)))
        codes = {run: np.load(path) for run, path in code_files.items()}
        print(f"\nshare of users whose top-{args.k} holds the target's code prefix of length 1..L, "
              "then the target itself (each run against its code file)")
        print("| run (codes) | " + " | ".join(labels) + " |")
        print("|---" * (len(labels) + 1) + "|")
        for run, frame in frames.items():
            hits = prefix_hits_by_popularity(frame, counts, codes[run], args.k)
            print(f"| {run} ({code_files[run]}, L={codes[run].shape[1]}) | " + " | ".join("-" if e["users"] == 0 else " / ".join(
                f"{x:.3f}" for x in [*e[f"prefix_hit@{args.k}"], e[f"hit@{args.k}"]]) for e in hits) + " |")
    return table


if __name__ == "__main__":
    main()
