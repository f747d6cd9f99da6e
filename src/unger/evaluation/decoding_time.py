"""Decoding time of trained study models, timed in one process on the same users (paper Figure 2).

Every study run times its own test decoding, alongside whatever else the machine does then, so two
runs' figures mix the models with the load. This command loads the saved models of two or more runs
(a unified model's ``generative_model.pt`` or a dual-code model's ``dual_code_model.pt``), decodes the
same test users with each in turn, ``repeats`` rounds, and reports each model's ms per user and its
time over the first run's, as mean +- std over the rounds. The entry for this machine in
docs/decoding_time.json is replaced (other machines' stay); the study report quotes the file. Kedro-free.

    python -m unger.evaluation.decoding_time no_tasks_s2024 eager_s2024 [--users 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unger.data.sequences import left_pad
from unger.inference.beam_search import constrained_beam_search
from unger.inference.dual_code_search import dual_code_beam_search
from unger.models.dual_code import DualCodeModel
from unger.models.generative import GenerativeConfig, UngerModel
from unger.profiling import git_commit, machine_info, machine_key

MODEL_FILES = ("generative_model.pt", "dual_code_model.pt")


def load_model(path: Path) -> torch.nn.Module:
    """A saved study model (``{"model": state_dict, "model_config": ...}``), rebuilt from its own code tables."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state, config = saved["model"], GenerativeConfig(**saved["model_config"])
    if "semantic.codes" in state:
        model = DualCodeModel(config, state["semantic.codes"], state["collaborative.codes"])
    else:
        if config.integrated_dim is None:  # saved before the node stored the resolved config (2026-12-07)
            width = state["dis_proj.weight"].shape[0] if "dis_proj.weight" in state else config.d_model
            config = replace(config, integrated_dim=width)
        model = UngerModel(config, state["codes"])
    model.load_state_dict(state)
    return model.eval()


def find_model(models_dir: Path, run: str) -> Path:
    """The one saved model of ``run`` under ``models_dir/<run>/``."""
    found = [models_dir / run / name for name in MODEL_FILES if (models_dir / run / name).exists()]
    if len(found) != 1:
        wanted = " or ".join(str(models_dir / run / name) for name in MODEL_FILES)
        raise FileNotFoundError(f"run {run!r}: expected exactly one of {wanted}, found {len(found)}")
    return found[0]


def decode(model: torch.nn.Module, histories: np.ndarray, beam: int, top_k: int, batch_size: int,
           device: torch.device) -> np.ndarray:
    """Top-k items per user by the model's own search: constrained beam search, or both streams merged."""
    if isinstance(model, DualCodeModel):
        items, _, _ = dual_code_beam_search(model, histories, beam, top_k, batch_size, device)
    else:
        items, _, _ = constrained_beam_search(model, histories, model.codes.cpu().numpy(), beam, top_k, batch_size, device)
    return items


def time_models(models: dict[str, torch.nn.Module], histories: np.ndarray, beam: int, top_k: int, batch_size: int,
                repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per round for each model; the models take turns within every round, so a change in the
    machine's load falls on all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            decode(model, histories, beam, top_k, batch_size, device)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def summarize(seconds: dict[str, list[float]], users: int) -> dict[str, dict[str, float]]:
    """Each model's ms per user and its time over the first model's in the same round, mean and sample std
    over the rounds (std 0 for one round)."""
    first = np.asarray(next(iter(seconds.values())))

    def stats(values: np.ndarray) -> tuple[float, float]:
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    out = {}
    for name, s in seconds.items():
        ms, ratio = stats(1000 * np.asarray(s) / users), stats(np.asarray(s) / first)
        out[name] = {"ms_per_user": ms[0], "ms_per_user_std": ms[1], "over_first": ratio[0], "over_first_std": ratio[1]}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="study runs whose saved models to time (the first is the reference)")
    parser.add_argument("--models-dir", type=Path, default=Path("data/06_models/study"))
    parser.add_argument("--samples", type=Path, default=Path("data/05_model_input/test_samples.parquet"))
    parser.add_argument("--users", type=int, default=2000, help="the first N test users (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("docs/decoding_time.json"))
    args = parser.parse_args(argv)
    if len(args.runs) < 2 or args.repeats < 1 or args.users < 0:
        parser.error("need two or more runs, --repeats >= 1 and --users >= 0")

    device = torch.device(args.device)
    models = {run: load_model(find_model(args.models_dir, run)).to(device) for run in args.runs}
    samples = pd.read_parquet(args.samples, columns=["history"])
    if args.users:
        samples = samples.head(args.users)
    max_history = {m.config.max_history for m in models.values()}
    if len(max_history) != 1:
        raise ValueError(f"the runs' models read histories of different lengths: {sorted(max_history)}")
    histories = left_pad(samples["history"].tolist(), max_history.pop())
    seconds = time_models(models, histories, args.beam, args.top_k, args.batch_size, args.repeats, device)
    machine = machine_info()
    report = {
        "date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(), "machine": machine, "device": str(device),
        "command": " ".join(["python -m unger.evaluation.decoding_time", *(argv if argv is not None else sys.argv[1:])]),
        "runs": args.runs, "users": len(samples), "repeats": args.repeats, "beam_size": args.beam, "top_k": args.top_k,
        "batch_size": args.batch_size, "seconds": seconds, "summary": summarize(seconds, len(samples)),
    }
    entries = json.loads(args.out.read_text()) if args.out.exists() else {}
    entries[machine_key(machine)] = report
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(entries, indent=2) + "\n")
    print(f"{len(samples)} users, beam {args.beam}, top {args.top_k}, {args.repeats} rounds, {device}")
    for run, s in report["summary"].items():
        print(f"{run}: {s['ms_per_user']:.2f} +- {s['ms_per_user_std']:.2f} ms/user, "
              f"{s['over_first']:.2f} +- {s['over_first_std']:.2f}x {args.runs[0]}")
    return report


if __name__ == "__main__":
    main()
