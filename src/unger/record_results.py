"""Add the latest run's metrics to ``docs/results.json`` as one experiment entry.

Usage: ``python -m unger.record_results --experiment NAME --machine "..." --command "..." [--seeds 2024]``.
Reads the newest ``data/08_reporting/metrics.json`` version; the entry holds test metrics at the top level
(the paper's table reports test) and the validation metrics beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def latest_version(root: Path, name: str) -> Path:
    files = sorted(p for p in (root / name).glob(f"*/{name}") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no versions of {root / name}")
    return files[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--dataset", default="Beauty")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2024])
    parser.add_argument("--reporting", type=Path, default=Path("data/08_reporting"))
    parser.add_argument("--out", type=Path, default=Path("docs/results.json"))
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)

    source = latest_version(args.reporting, "metrics.json")
    metrics = json.loads(source.read_text())
    entry = {
        "dataset": args.dataset,
        "split": "test",
        **{k: metrics["test"][k] for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")},
        "seeds": args.seeds,
        "std": None if len(args.seeds) < 2 else "see docs/results.md",
        "machine": args.machine,
        "command": args.command,
        "valid": {k: metrics["valid"][k] for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")},
        "users": metrics["test"]["users"],
        "source": str(source),
        "note": args.note,
    }
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.experiment] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
