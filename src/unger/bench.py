"""Speed benchmark (issue 5): ``make bench`` / ``python -m unger.bench``.

Measures, on the machine it runs on, with the persisted outputs of the newest full Beauty run:
  * Stage II training throughput at the paper's settings (the real training loop, train time only),
    and the 20,000-step time it implies;
  * beam-100 / top-20 decoding of every test user with the trained model (ms per user), checked to
    give the same test metrics as the pipeline's evaluation;
  * unified vs dual code decoding at equal beam and top-k (paper Figure 2 reports 2.8x);
  * wall time and peak RSS of every node and of ``kedro run --pipelines=full`` (from the run
    profile that every run writes; ``--run-pipeline`` first runs the whole pipeline from scratch
    with a fresh checkpoint folder so nothing resumes).
Figures are merged into ``docs/benchmarks.json`` under this machine's key (other machines' figures
are kept) and ``docs/benchmarks.md`` is rewritten from the JSON. No Kedro import.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from unger.profiling import git_commit, machine_info, machine_key, peak_rss_mb, reset_peak_rss

PAPER_STEPS = 20_000


def latest_version(path: Path, at_most: str | None = None) -> Path:
    """Newest version of a versioned Kedro dataset (``<path>/<timestamp>/<name>``), or the plain file.

    ``at_most``: the newest version not newer than this one (a run saves all its outputs under one
    version, so the inputs of a model are its own version or older ones).
    """
    versions = sorted(p for p in path.glob(f"*/{path.name}") if p.is_file() and (at_most is None or p.parent.name <= at_most))
    if versions:
        return versions[-1]
    if path.is_file():
        return path
    raise FileNotFoundError(f"{path}: no such dataset (version <= {at_most}); run `kedro run --pipelines=full` first")


def load_run(data: Path) -> dict:
    """The newest persisted inputs and outputs of the main pipeline."""
    import torch

    model_path = latest_version(data / "06_models/generative_model.pt")
    version = model_path.parent.name if model_path.parent != data / "06_models" else None

    def npy(p):
        return np.load(latest_version(data / p, version))

    def parquet(p):
        return pd.read_parquet(latest_version(data / p, version))

    metrics_path = latest_version(data / "08_reporting/metrics.json")
    return {
        # Versions are timestamps: metrics at or after the model's version were computed from it.
        "metrics_match_model": version is None or metrics_path.parent.name >= version,
        "codes": npy("05_model_input/item_codes.npy"),
        "integrated": npy("04_feature/integrated_embeddings.npy"),
        "train_sequences": parquet("05_model_input/train_sequences.parquet"),
        "valid_samples": parquet("05_model_input/valid_samples.parquet"),
        "test_samples": parquet("05_model_input/test_samples.parquet"),
        "model": torch.load(model_path, map_location="cpu", weights_only=True),
        "metrics": json.loads(metrics_path.read_text()),
        "metrics_path": str(metrics_path),
    }


BENCH_INPUTS = ("05_model_input/item_codes.npy", "04_feature/integrated_embeddings.npy",
                "05_model_input/train_sequences.parquet", "05_model_input/valid_samples.parquet",
                "05_model_input/test_samples.parquet", "06_models/generative_model.pt", "08_reporting/metrics.json")


def export_inputs(data: Path, dest: Path) -> None:
    """Copy the newest version of every input the benchmark reads into ``dest`` (same layout, a few
    MB): what to carry to a lent GPU machine, then ``--data <dest> --skip pipeline`` there."""
    import shutil

    version = latest_version(data / "06_models/generative_model.pt").parent.name
    for rel in BENCH_INPUTS:
        src = latest_version(data / rel, None if rel.startswith("08_reporting") else version)
        target = dest / rel / src.parent.name / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        print(f"{src} -> {target}")


def bench_training(run: dict, device, steps: int, warmup: int) -> dict:
    """Throughput of the real Stage II loop at paper settings; evaluation time is excluded."""
    import tempfile

    from unger.models.generative import GenerativeConfig
    from unger.training.generative import TrainConfig, train_generative

    model_cfg = GenerativeConfig()
    train_cfg = TrainConfig(max_steps=warmup + steps, log_every=warmup, eval_every=10**9, eval_users=64, eval_beam=1)
    rates: list[tuple[int, float]] = []

    def log(name, value, step):
        if name == "generative/steps_per_s" and step > warmup:
            rates.append((step, value))

    reset_peak_rss()
    with tempfile.TemporaryDirectory() as tmp:
        train_generative(model_cfg, train_cfg, run["codes"], run["integrated"], run["train_sequences"],
                         run["valid_samples"].head(64), device, checkpoint_path=Path(tmp) / "ckpt.pt", log_metric=log)
    steps_per_s = float(np.mean([r for _, r in rates]))
    out = {
        "timed_steps": steps,
        "warmup_steps": warmup,
        "batch_size": train_cfg.batch_size,
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * train_cfg.batch_size,
        "seconds_for_20000_steps_estimated": PAPER_STEPS / steps_per_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    out.update(_cuda_peak())
    return out


def _cuda_peak() -> dict:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
        return {"peak_cuda_mb": peak}
    return {}


def _unified_model(run: dict, device):
    from unger.models.generative import GenerativeConfig, UngerModel

    model = UngerModel(GenerativeConfig(**run["model"]["model_config"]), run["codes"], run["integrated"])
    model.load_state_dict(run["model"]["model"])
    return model.to(device).eval()


def bench_decoding(run: dict, device, beam: int, top_k: int, batch_size: int) -> dict:
    """Beam search over every test user with the trained model; metrics must match the pipeline's."""
    from unger.evaluation.metrics import evaluate_rankings
    from unger.inference.beam_search import rank_items

    model = _unified_model(run, device)
    samples = run["test_samples"]
    reset_peak_rss()
    start = time.perf_counter()
    items, _, stats = rank_items(model, samples, run["codes"], beam, top_k, device, batch_size)
    seconds = time.perf_counter() - start
    metrics = evaluate_rankings(items, samples["target"].to_numpy(), (5, 10, 20))
    pipeline = run["metrics"]["test"]
    return {
        "users": len(samples),
        "beam_size": beam,
        "top_k": top_k,
        "batch_size": batch_size,
        "seconds": seconds,
        "ms_per_user": 1000 * seconds / len(samples),
        "peak_rss_mb": peak_rss_mb(),
        "test_ndcg@10": metrics["ndcg@10"],
        "pipeline_test_ndcg@10": pipeline["ndcg@10"],
        # None: the newest model was retrained after the newest evaluation, nothing to compare with.
        "same_metrics_as_pipeline": all(abs(metrics[k] - pipeline[k]) < 1e-9 for k in metrics) if run["metrics_match_model"] else None,
        "pipeline_metrics": run["metrics_path"],
        **_cuda_peak(),
    }


def bench_dual_code(run: dict, device, beam: int, top_k: int, batch_size: int, users: int, repeats: int = 3) -> dict:
    """Unified vs dual code decoding time at equal beam and top-k on the same users, the two models taking
    turns over ``repeats`` rounds (``unger.evaluation.decoding_time.time_models``; mean and std over rounds).

    The dual model (EAGER-style: one encoder, two decoders of the unified model's size) has
    untrained weights and its second code table is the unified table with items permuted: the same
    trie shape, so the timing is that of two searches plus the merge; it measures cost, not quality.
    """
    import torch

    from unger.data.sequences import left_pad
    from unger.evaluation.decoding_time import summarize, time_models
    from unger.models.dual_code import DualCodeModel
    from unger.models.generative import GenerativeConfig

    samples = run["test_samples"].head(users)
    unified = _unified_model(run, device)
    codes = run["codes"]
    perm = np.concatenate([[0], 1 + np.random.default_rng(0).permutation(len(codes) - 1)])
    cfg = GenerativeConfig(**{**run["model"]["model_config"], "use_distillation": False})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        dual = DualCodeModel(cfg, codes, codes[perm]).to(device).eval()
    histories = left_pad(samples["history"].tolist(), cfg.max_history)
    seconds = time_models({"unified": unified, "dual": dual}, histories, beam, top_k, batch_size, repeats, device)
    timed = summarize(seconds, len(samples))
    return {
        "users": len(samples),
        "beam_size": beam,
        "top_k": top_k,
        "repeats": repeats,
        "unified_ms_per_user": timed["unified"]["ms_per_user"],
        "unified_ms_per_user_std": timed["unified"]["ms_per_user_std"],
        "dual_ms_per_user": timed["dual"]["ms_per_user"],
        "dual_ms_per_user_std": timed["dual"]["ms_per_user_std"],
        "dual_over_unified": timed["dual"]["over_first"],
        "dual_over_unified_std": timed["dual"]["over_first_std"],
        "unified_parameters": unified.num_parameters(),
        "dual_parameters": dual.num_parameters(),
    }


def run_pipeline(project: Path, checkpoint_dir: str) -> None:
    """``kedro run --pipelines=full`` from scratch: a fresh checkpoint folder, so nothing resumes."""
    kedro = Path(sys.executable).with_name("kedro")
    cmd = [str(kedro), "run", "--pipelines=full", f"--params=runtime.checkpoint_dir={checkpoint_dir}"]
    print("running:", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=project, check=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})


def pipeline_profile(data: Path) -> dict | None:
    """The newest profile of a complete ``full`` run (not a single-node rerun)."""
    profiles = sorted((data / "08_reporting" / "run_profiles").glob("*-full.json"))
    for path in reversed(profiles):
        profile = json.loads(path.read_text())
        if not profile.get("node_names") and len(profile["nodes"]) >= 10:
            return {**profile, "source": str(path)}
    return None


# Issue 5's targets: (figure path, limit, unit) per kind of machine.
TARGETS = {
    "cpu": [("decoding.ms_per_user", 27.0, "ms/user"), ("pipeline.total_seconds", 90 * 60.0, "s")],
    "gpu": [("training.seconds_for_20000_steps_estimated", 60.0, "s"), ("decoding.ms_per_user", 0.2, "ms/user"),
            ("pipeline.total_seconds", 300.0, "s")],
}


def _get(entry: dict, path: str):
    for key in path.split("."):
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry


def render_markdown(results: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m unger.bench`) from docs/benchmarks.json; one section per",
        "machine, each figure measured on that machine by the command shown. Beauty, paper settings",
        "(Stage II: d 96, 1 encoder + 4 decoder layers, batch 256; decoding: beam 100, top 20, every test user).",
        "",
    ]
    for key, entry in results.items():
        kind = "gpu" if entry["machine"].get("gpu") else "cpu"
        lines += [f"## {key}", "", f"Measured {entry['date']} at commit {entry['git_commit']}: `{entry['command']}`.",
                  f"Machine: {json.dumps(entry['machine'])}.", "", "| target | limit | measured | met |", "|---|---|---|---|"]
        for path, limit, unit in TARGETS[kind]:
            value = _get(entry, path)
            shown = "not measured" if value is None else f"{value:.3f} {unit}" if value < 10 else f"{value:.0f} {unit}"
            met = "-" if value is None else ("yes" if value <= limit else "NO")
            lines.append(f"| {path} | <= {limit:g} {unit} | {shown} | {met} |")
        lines.append("")
        tr = entry.get("training")
        if tr:
            lines += [f"Stage II training: {tr['samples_per_s']:.0f} samples/s ({tr['steps_per_s']:.2f} steps/s at batch "
                      f"{tr['batch_size']}, mean of {tr['timed_steps']} timed steps after {tr['warmup_steps']} warm-up steps, "
                      f"evaluation excluded) -> {tr['seconds_for_20000_steps_estimated']:.0f} s for 20,000 steps. "
                      f"Peak RSS {tr['peak_rss_mb']:.0f} MB" + (f", peak CUDA {tr['peak_cuda_mb']:.0f} MB." if "peak_cuda_mb" in tr else "."), ""]
        dec = entry.get("decoding")
        if dec:
            same = {True: "identical to", False: "DIFFERENT from", None: "not comparable with (model newer than)"}[dec["same_metrics_as_pipeline"]]
            lines += [f"Decoding: {dec['users']} test users, beam {dec['beam_size']}, top {dec['top_k']}, {dec['batch_size']} users "
                      f"per batch: {dec['seconds']:.1f} s = {dec['ms_per_user']:.2f} ms/user; test NDCG@10 {dec['test_ndcg@10']:.4f}, "
                      f"{same} the pipeline's ({dec['pipeline_metrics']}). Peak RSS {dec['peak_rss_mb']:.0f} MB.", ""]
        dual = entry.get("dual_code")
        if dual:
            spread = {k: f" ± {dual[k + '_std']:.2f}" if k + "_std" in dual else "" for k in
                      ("unified_ms_per_user", "dual_ms_per_user", "dual_over_unified")}
            rounds = f", mean ± std over {dual['repeats']} rounds taken in turns" if "repeats" in dual else ""
            lines += [f"Unified vs dual code ({dual['users']} test users, beam {dual['beam_size']}, top {dual['top_k']}{rounds}): "
                      f"{dual['unified_ms_per_user']:.2f}{spread['unified_ms_per_user']} vs {dual['dual_ms_per_user']:.2f}"
                      f"{spread['dual_ms_per_user']} ms/user, dual/unified {dual['dual_over_unified']:.2f}"
                      f"{spread['dual_over_unified']}x (paper Figure 2: 2.8x); parameters {dual['unified_parameters']:,} vs "
                      f"{dual['dual_parameters']:,}. The dual model has untrained weights (cost, not quality).", ""]
        pipe = entry.get("pipeline")
        if pipe:
            lines += [f"`kedro run --pipelines=full` from scratch: {pipe['total_seconds']:.0f} s "
                      f"({pipe['total_seconds'] / 60:.1f} min), peak RSS {pipe['peak_rss_mb']:.0f} MB "
                      f"(profile {pipe['source']}, finished {pipe['finished_at']}, commit {pipe['git_commit']}).", "",
                      "| node | seconds | peak RSS MB |", "|---|---|---|"]
            lines += [f"| {n['node']} | {n['seconds']:.1f} | {n['peak_rss_mb']:.0f} |" for n in pipe["nodes"]]
            lines.append("")
        if entry.get("notes"):
            lines += [f"Notes: {entry['notes']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Speed benchmark: writes docs/benchmarks.json and docs/benchmarks.md")
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--run-pipeline", action="store_true", help="first run the whole pipeline from scratch and time it")
    parser.add_argument("--train-steps", type=int, default=None, help="timed Stage II steps (default 300 on CPU, 2000 on GPU)")
    parser.add_argument("--beam", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=None, help="users per decoding batch (default 64 CPU, 1024 GPU)")
    parser.add_argument("--dual-users", type=int, default=2000, help="test users for the unified-vs-dual timing")
    parser.add_argument("--dual-repeats", type=int, default=3, help="rounds of the unified-vs-dual timing (models take turns)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "decoding", "dual_code", "pipeline"])
    parser.add_argument("--notes", default="")
    parser.add_argument("--export", type=Path, help="only copy the newest inputs to this folder (for a GPU machine)")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks.json"))
    parser.add_argument("--md", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    if args.export:
        export_inputs(args.data, args.export)
        return

    import torch

    from unger.utils import resolve_device

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    entry: dict = {"date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(),
                   "command": "python -m unger.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "device": str(device), "notes": args.notes}
    if args.run_pipeline:
        run_pipeline(Path.cwd(), f"data/bench/checkpoints-{time.strftime('%Y%m%dT%H%M%S')}")
    run = load_run(args.data)
    if "training" not in args.skip:
        steps = args.train_steps or (2000 if gpu else 300)
        entry["training"] = bench_training(run, device, steps, warmup=max(20, steps // 10))
        print("training:", entry["training"], flush=True)
    batch = args.batch_size or (1024 if gpu else 64)
    if "decoding" not in args.skip:
        entry["decoding"] = bench_decoding(run, device, args.beam, args.top_k, batch)
        print("decoding:", entry["decoding"], flush=True)
    if "dual_code" not in args.skip:
        entry["dual_code"] = bench_dual_code(run, device, args.beam, args.top_k, batch, args.dual_users, args.dual_repeats)
        print("dual code:", entry["dual_code"], flush=True)
    if "pipeline" not in args.skip:
        entry["pipeline"] = pipeline_profile(args.data)
    entry["machine"] = machine_info()
    entry["torch_threads"] = torch.get_num_threads()
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    key = machine_key(entry["machine"])
    results[key] = {**results.get(key, {}), **{k: v for k, v in entry.items() if v is not None}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.md.write_text(render_markdown(results))
    print(f"wrote {args.json} and {args.md} ({key})")


if __name__ == "__main__":
    main()
