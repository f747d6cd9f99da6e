"""Nodes of the study: one record per run, then the tables, figures and JSON over all runs."""

from __future__ import annotations

import time
from typing import Any

from unger.study import parse_experiments, settings_fingerprint
from unger.study_report import METRICS, render_figures, render_markdown, summarize


def record_run(evaluation_metrics: dict[str, Any], meta: dict[str, Any], run_context: dict[str, str],
               stage_one: dict[str, Any] | None = None, popularity_metrics: dict[str, Any] | None = None,
               **params: dict[str, Any]) -> dict[str, Any]:
    """What the report needs of a finished run: its metrics, where and when it ran, how to rerun it.

    ``run_context`` (set by ``ProfileRunHook`` as the run starts): the commit the run started from and
    its full ``kedro run`` command, extra ``--params`` included. ``stage_one``: Stage I's DIN scored
    alone (runs with a Stage I that trains one). ``popularity_metrics``: metrics by the target's
    training count (``unger.evaluation.popularity``), kept as ``by_popularity`` (test) and
    ``by_popularity_valid``. ``params``: the run's parameter groups (all but ``runtime``), kept with
    their ``settings_fingerprint`` so the report can tell runs of one experiment made under different
    settings apart.
    """
    test, valid = evaluation_metrics["test"], evaluation_metrics["valid"]
    extra = {}
    if stage_one and "test" in stage_one:
        extra["stage_one"] = {split: {m: stage_one[split][m] for m in METRICS} for split in ("test", "valid")}
        if "alignment" in stage_one:
            extra["stage_one"]["alignment"] = stage_one["alignment"]
    if popularity_metrics:
        extra["by_popularity"] = popularity_metrics["test"]
        if "valid" in popularity_metrics:
            extra["by_popularity_valid"] = popularity_metrics["valid"]
    return {
        **meta,
        **extra,
        "test": {m: test[m] for m in METRICS},
        "valid": {m: valid[m] for m in METRICS},
        "users": test["users"],
        **_settings(params),
        "test_ms_per_user": test.get("beam", {}).get("ms_per_user"),
        "test_decoding": {k: test.get("beam", {}).get(k) for k in ("beam_size", "top_k", "device")},
        **_provenance(run_context),
    }


def record_dominance(semantic_dominance: dict[str, Any], meta: dict[str, Any], run_context: dict[str, str],
                     **params: dict[str, Any]) -> dict[str, Any]:
    """The record of a Table 4 run: the dominance proportions of each fused embedding, with provenance."""
    return {**meta, "dominance": semantic_dominance, **_settings(params), **_provenance(run_context)}


def _settings(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The parameters a run used and their fingerprint (seeds left out of it)."""
    return {"params": params, "settings_fingerprint": settings_fingerprint(params)}


def _provenance(run_context: dict[str, str]) -> dict[str, Any]:
    """Where, when and from which commit and command a run's record came."""
    from unger.profiling import machine_info

    return {
        "machine": machine_info(),
        "git_commit": run_context["git_commit"],
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": run_context["command"],
    }


def write_study_report(study: dict[str, Any], notes: str, benchmarks: dict[str, Any] | None,
                       decoding_times: dict[str, Any] | None, **records: dict[str, Any] | None) -> tuple[str, dict, dict]:
    """docs/results.md, docs/results.json and docs/figures/*.png from every run that has a record.

    ``notes`` (docs/study_notes.md, written by hand) is appended: what was tried and what it means.
    ``benchmarks`` (docs/benchmarks.json; None when absent) adds the benchmark's Figure 2 timing, and
    ``decoding_times`` (docs/decoding_time.json; None when absent) that of trained models in one process.
    Runs without a record (not run yet) are listed as missing, never silently dropped.
    """
    experiments = parse_experiments(study)
    summary = summarize(experiments, records)
    markdown = render_markdown(experiments, summary, study, notes, benchmarks, decoding_times)
    return markdown, summary["json"], render_figures(experiments, summary, study)
