"""Wall time and peak memory of every node and of the whole run (no Kedro here; the hook calls it).

Peak resident memory is read from ``/proc/self/status`` (VmHWM) and reset before each node by
writing ``5`` to ``/proc/self/clear_refs`` (Linux), so each node gets its own peak; elsewhere the
process-wide ``ru_maxrss`` is reported instead and marked as such. CUDA peaks come from
``torch.cuda.max_memory_allocated`` when torch is already imported and a GPU is in use.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def _read_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter for this process; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    hwm = _read_hwm_mb()
    if hwm is not None:
        return hwm
    scale = 1.0 / 1024 if sys.platform != "darwin" else 1.0 / (1024 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _cuda():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda
    return None


def machine_info() -> dict:
    """CPU model, core count, memory and GPU name: what a benchmark figure must be read against."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "host": platform.node()}
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_key(info: dict) -> str:
    """The name a machine's entries go under in docs/benchmarks.json and docs/decoding_time.json."""
    if info.get("gpu"):
        return f"{info['gpu']}"
    return f"CPU {info['cpu']} x{info['cores']}"


def git_commit() -> str:
    """HEAD of the checkout; ``UNGER_GIT_COMMIT`` names it for a copy of the tree without ``.git``
    (the working tree sent to a GPU machine)."""
    if os.environ.get("UNGER_GIT_COMMIT"):
        return os.environ["UNGER_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _flatten(params: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in (params or {}).items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


def run_command(run_params: dict) -> str:
    """The ``kedro run`` command line that reproduces a run, from Kedro's ``run_params``."""
    parts = ["kedro run"]
    for flag, key in (("--pipelines", "pipeline_names"), ("--namespaces", "namespaces"), ("--nodes", "node_names"),
                      ("--from-nodes", "from_nodes"), ("--to-nodes", "to_nodes"), ("--tags", "tags")):
        if run_params.get(key):
            parts.append(f"{flag}={','.join(run_params[key])}")
    if run_params.get("env"):
        parts.append(f"--env={run_params['env']}")
    params = _flatten(run_params.get("runtime_params") or {})
    if params:
        parts.append(f"--params={','.join(params)}")
    return " ".join(parts)


class RunProfiler:
    """Collects one record per node: wall seconds, peak RSS (MB) and, on a GPU, peak CUDA memory."""

    def __init__(self):
        self.records: list[dict] = []
        self.per_node_rss = False
        self._start: dict[str, float] = {}
        self._run_start = time.perf_counter()
        self._commit = "unknown"

    def start_run(self) -> None:
        self._run_start = time.perf_counter()
        self._commit = git_commit()  # the code that runs, not whatever HEAD is when it ends
        self.records.clear()

    @property
    def commit(self) -> str:
        return self._commit

    def start_node(self, name: str) -> None:
        self.per_node_rss = reset_peak_rss()
        cuda = _cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()
        self._start[name] = time.perf_counter()

    def end_node(self, name: str) -> dict:
        seconds = time.perf_counter() - self._start.pop(name, self._run_start)
        record = {"node": name, "seconds": round(seconds, 3), "peak_rss_mb": round(peak_rss_mb(), 1)}
        cuda = _cuda()
        if cuda is not None:
            record["peak_cuda_mb"] = round(cuda.max_memory_allocated() / 2**20, 1)
        self.records.append(record)
        return record

    def summary(self, pipeline: str) -> dict:
        return {
            "pipeline": pipeline,
            "total_seconds": round(time.perf_counter() - self._run_start, 3),
            "peak_rss_mb": max((r["peak_rss_mb"] for r in self.records), default=round(peak_rss_mb(), 1)),
            "rss_is_per_node": self.per_node_rss,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": self._commit,
            "machine": machine_info(),
            "nodes": list(self.records),
        }
