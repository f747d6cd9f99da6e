"""Small copies of the study's ranked lists, to bring them back from a machine that returns few, small files.

A run's ``<split>_recommendations.parquet`` (about 3.3 MB for Beauty's 22,363 test users) carries the beam
scores beside the items; a paired per-user test (``unger.evaluation.significance``) needs only
``user_id``, ``target`` and the items. The copy keeps those three columns, items as int32, zstd-compressed
(about 0.8 MB), under the same ``<run>/<split>_recommendations.parquet`` layout, so unpacking it into
``data/07_model_output/study`` makes ``python -m unger.evaluation.significance <run a> <run b>`` work.

    python -m unger.evaluation.pack_recommendations data/bench/recs --split test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from unger.evaluation.significance import STUDY_OUTPUTS, load_recommendations


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """``user_id``, ``target`` and ``items`` (int32) of a recommendation frame; scores dropped."""
    items = [np.asarray(x) for x in frame["items"]]
    largest = max((int(x.max()) for x in items if x.size), default=0)
    if largest > np.iinfo(np.int32).max:
        raise ValueError(f"item id {largest} does not fit int32")
    return pd.DataFrame({"user_id": frame["user_id"].to_numpy(), "target": frame["target"].to_numpy(),
                         "items": [x.astype(np.int32) for x in items]})


def pack(dest: Path, splits: tuple[str, ...] = ("test",), root: Path = STUDY_OUTPUTS) -> list[Path]:
    """Write a compact copy of every run's recommendations for ``splits`` under ``dest``; returns the files
    (none where no run has finished: ``root`` does not exist yet)."""
    written = []
    if not Path(root).is_dir():
        return written
    for run_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for split in splits:
            if not (run_dir / f"{split}_recommendations.parquet").exists():
                continue
            out = Path(dest) / run_dir.name / f"{split}_recommendations.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            compact(load_recommendations(run_dir.name, split, Path(root))).to_parquet(out, compression="zstd")
            written.append(out)
    return written


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="folder for the compact copies (<dest>/<run>/<split>_...)")
    parser.add_argument("--split", action="append", choices=["valid", "test"],
                        help="split(s) to pack (repeatable; default: test)")
    parser.add_argument("--root", type=Path, default=STUDY_OUTPUTS)
    args = parser.parse_args(argv)
    written = pack(args.dest, tuple(args.split or ["test"]), args.root)
    size = sum(p.stat().st_size for p in written)
    print(f"packed {len(written)} recommendation file(s), {size / 2**20:.1f} MiB, under {args.dest}")
    return written


if __name__ == "__main__":
    main()
