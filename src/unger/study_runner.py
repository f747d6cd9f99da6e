"""Run several study runs at once, one ``kedro run --pipelines=study --namespaces=<run>`` process each.

    python -m unger.study_runner --jobs 6 --deadline 900 unger_s2025 sasrec_ce_s2025 ...

Meant for a machine with a GPU and many cores, where one small run leaves the card mostly idle. Each
process appends to its own log (``data/logs/study_<run>.log``) and gets an equal share of the CPU threads;
with ``--jobs`` above 1 also its own MLflow SQLite file (``data/mlflow/<run>.db``, through
``UNGER_MLFLOW_URI``: SQLite takes one writer at a time). Runs that share a checkpoint (any stage) train
it one at a time (``unger.utils.checkpoint_lock``). At the deadline the runs still going are stopped; their
checkpoints stay, so the same command resumes them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launch:
    """How each run's process is started."""

    threads: int
    logs: Path = Path("data/logs")
    stores: Path | None = None  # None: the project's own MLflow store
    params: str | None = None
    from_node: str | None = None  # start each run at its node of this name (inputs persisted)


def _command(run: str, launch: Launch) -> list[str]:
    command = [sys.executable, "-m", "kedro", "run", "--pipelines=study", f"--namespaces={run}"]
    if launch.params:
        command.append(f"--params={launch.params}")
    if launch.from_node:
        command.append(f"--from-nodes={run}.{launch.from_node}")
    return command


def _open_log(run: str, launch: Launch, command: list[str]):
    """The run's log, appended to (a resumed run keeps the log of its earlier legs) after a line that
    says when, what and on how many threads this leg started."""
    log = open(launch.logs / f"study_{run}.log", "a")
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    log.write(f"=== {when} started {' '.join(command[1:])} (OMP_NUM_THREADS={launch.threads})\n")
    log.flush()
    return log


def _start(run: str, launch: Launch) -> subprocess.Popen:
    command = _command(run, launch)
    env = {**os.environ, "OMP_NUM_THREADS": str(launch.threads), "MKL_NUM_THREADS": str(launch.threads),
           "PYTHONUNBUFFERED": "1"}
    if launch.stores is not None:
        env["UNGER_MLFLOW_URI"] = f"sqlite:///{launch.stores / (run + '.db')}"
    with _open_log(run, launch, command) as log:  # the child holds its own copy of the descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (SIGINT is ignored by a job started in the background), then SIGKILL; checkpoints are
    written atomically at each evaluation, so a stopped run resumes from its last one."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_parallel(runs: list[str], jobs: int, deadline_s: float, params: str | None = None,
                 from_node: str | None = None) -> dict[str, str]:
    """Run ``runs`` in order, ``jobs`` at a time; returns each run's outcome (``ok``, ``failed rc=N``,
    ``interrupted`` or ``not started``). Stopping the runner stops its runs too."""
    stores = Path("data/mlflow") if jobs > 1 else None
    launch = Launch(threads=max(1, (os.cpu_count() or 1) // jobs), stores=stores, params=params,
                    from_node=from_node)
    for folder in (launch.logs, stores):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    began, queue, active, outcome = time.monotonic(), list(runs), {}, {}

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:6.0f}s] {message}", flush=True)

    try:
        while queue or active:
            late = time.monotonic() - began > deadline_s
            while queue and len(active) < jobs and not late:
                run = queue.pop(0)
                active[run] = (_start(run, launch), time.monotonic())
                say(f"start {run}")
            for run, (proc, started) in list(active.items()):
                if proc.poll() is None and not late:
                    continue
                if proc.poll() is None:
                    _stop(proc)
                    outcome[run] = "interrupted"
                else:
                    outcome[run] = "ok" if proc.returncode == 0 else f"failed rc={proc.returncode}"
                say(f"{outcome[run]} {run} ({time.monotonic() - started:.0f}s)")
                del active[run]
            if late:
                outcome.update({run: "not started" for run in queue})
                queue.clear()
            time.sleep(2)
    finally:  # the runs live in their own sessions: a stopped runner must stop them itself
        for proc, _ in active.values():
            _stop(proc)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="study run names (python -m unger.study list)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds before unfinished runs are stopped")
    parser.add_argument("--params", help="passed to every run as --params")
    parser.add_argument("--from-node", help="start every run at its node of this name (e.g. train_stage_one_node "
                        "on a machine without the text encoder, with each run's semantic embeddings carried)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    outcome = run_parallel(args.runs, args.jobs, args.deadline, args.params, args.from_node)
    for run in args.runs:
        print(f"{run}: {outcome[run]}")
    return 0 if all(v == "ok" for v in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
