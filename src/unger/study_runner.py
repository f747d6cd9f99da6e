"""Run several study runs at once, one ``kedro run --pipelines=study --namespaces=<run>`` process each.

    python -m unger.study_runner --jobs 6 --deadline 900 unger_s2025 sasrec_ce_s2025 ...

Meant for a machine with a GPU and many cores, where one small run leaves the card mostly idle. With
``--jobs`` above 1 each process gets its own MLflow SQLite file (``data/mlflow/<run>.db``, through
``UNGER_MLFLOW_URI``: SQLite takes one writer at a time); always its own log (``data/logs/study_<run>.log``) and an equal share of the CPU
threads. Runs that share a Stage I checkpoint train it once (``unger.utils.checkpoint_lock``). At the
deadline the runs still going are interrupted; their checkpoints stay, so the same command resumes them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _start(run: str, params: str | None, threads: int, logs: Path, stores: Path | None) -> subprocess.Popen:
    command = [sys.executable, "-m", "kedro", "run", "--pipelines=study", f"--namespaces={run}"]
    if params:
        command.append(f"--params={params}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    if stores is not None:
        env["UNGER_MLFLOW_URI"] = f"sqlite:///{stores / (run + '.db')}"
    log = open(logs / f"study_{run}.log", "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run_parallel(runs: list[str], jobs: int, deadline_s: float, params: str | None = None) -> dict[str, str]:
    """Run ``runs`` in order, ``jobs`` at a time; returns each run's outcome (``ok``, ``failed rc=N``,
    ``interrupted`` or ``not started``)."""
    logs = Path("data/logs")
    logs.mkdir(parents=True, exist_ok=True)
    stores = Path("data/mlflow") if jobs > 1 else None  # one at a time: the project's own store
    if stores is not None:
        stores.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    started_at, queue, active, outcome = time.monotonic(), list(runs), {}, {}
    try:
        _loop(queue, active, outcome, jobs, deadline_s, started_at, params, threads, logs, stores)
    finally:  # the runner itself stopped (Ctrl-C, SIGTERM): its runs live in their own sessions, stop them too
        for proc, _ in active.values():
            _stop(proc)
    return outcome


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (SIGINT may be ignored in a background job), then SIGKILL; checkpoints are written
    atomically at each evaluation, so a stopped run resumes from its last one."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _loop(queue, active, outcome, jobs, deadline_s, started_at, params, threads, logs, stores) -> None:
    while queue or active:
        late = time.monotonic() - started_at > deadline_s
        while queue and len(active) < jobs and not late:
            run = queue.pop(0)
            active[run] = (_start(run, params, threads, logs, stores), time.monotonic())
            print(f"[{time.monotonic() - started_at:6.0f}s] start {run}", flush=True)
        for run, (proc, t0) in list(active.items()):
            if proc.poll() is None and late:
                _stop(proc)
                outcome[run] = "interrupted"
            elif proc.poll() is not None:
                outcome[run] = "ok" if proc.returncode == 0 else f"failed rc={proc.returncode}"
            else:
                continue
            print(f"[{time.monotonic() - started_at:6.0f}s] {outcome[run]} {run} ({time.monotonic() - t0:.0f}s)", flush=True)
            del active[run]
        if late:
            outcome.update({run: "not started" for run in queue})
            queue.clear()
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="study run names (python -m unger.study list)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds before unfinished runs are stopped")
    parser.add_argument("--params", help="passed to every run as --params")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    outcome = run_parallel(args.runs, args.jobs, args.deadline, args.params)
    for run in args.runs:
        print(f"{run}: {outcome[run]}")
    return 0 if all(v == "ok" for v in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
