"""The study (issue 6): every experiment of the paper as a named set of parameter overrides.

``conf/base/parameters_study.yml`` lists experiments; each runs once per seed as its own Kedro
namespace ``<experiment>_s<seed>`` (a *run*). ``expand_study`` turns the overrides into complete
parameter groups under that namespace (base group, then the experiment's overrides, then the seed),
so a namespaced copy of the stage pipelines reads ``params:<run>.generative`` etc. with no copied
YAML, and ``--params=generative.max_steps=...`` on the command line reaches every run. No Kedro here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unger.stage_one import checkpoint_identity, fusion_aligns

# Parameter groups a run carries; overrides of any other group are an error.
RUN_GROUPS = ("runtime", "semantic", "fusion", "quantization", "generative", "evaluation", "sasrec", "dominance")
# Groups whose ``seed`` the run's seed replaces.
SEEDED_GROUPS = ("runtime", "fusion", "quantization", "generative", "sasrec", "dominance")
# unger/tiger/eager/sasrec train and score a recommender; dominance measures Table 4 and draws Figure 5.
KINDS = ("unger", "tiger", "eager", "sasrec", "dominance")


@dataclass(frozen=True)
class Experiment:
    """One row of a table or one point of a sweep."""

    name: str
    kind: str = "unger"
    label: str = ""
    group: str = "main"  # which table/figure it belongs to (see parameters_study.yml)
    x: Any = None  # the swept value, for figure groups
    seeds: tuple[int, ...] = ()
    overrides: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)  # the paper's Beauty test numbers, where it reports them

    def run_names(self) -> list[str]:
        return [run_name(self.name, s) for s in self.seeds]


def run_name(experiment: str, seed: int) -> str:
    return f"{experiment}_s{seed}"


def _deep_merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_experiments(study: dict) -> list[Experiment]:
    """Experiments of a ``study`` parameter group, with errors that name the experiment and key."""
    if not study:
        return []
    default_seeds = tuple(study.get("seeds") or ())
    out = []
    for name, spec in (study.get("experiments") or {}).items():
        spec = dict(spec or {})
        unknown = set(spec) - {"kind", "label", "group", "x", "seeds", "overrides", "paper"}
        if unknown:
            raise ValueError(f"study.experiments.{name}: unknown key(s) {sorted(unknown)}")
        if not name.isidentifier():
            raise ValueError(f"study.experiments.{name}: names must be identifiers (they become Kedro namespaces)")
        kind = spec.get("kind", "unger")
        if kind not in KINDS:
            raise ValueError(f"study.experiments.{name}.kind must be one of {KINDS}, got {kind!r}")
        bad = set(spec.get("overrides") or {}) - set(RUN_GROUPS)
        if bad:
            raise ValueError(f"study.experiments.{name}.overrides: unknown group(s) {sorted(bad)}; known {RUN_GROUPS}")
        seeds = tuple(int(s) for s in (spec.get("seeds") or default_seeds))
        if not seeds:
            raise ValueError(f"study.experiments.{name}: no seeds (set study.seeds or the experiment's seeds)")
        out.append(Experiment(name=name, kind=kind, label=spec.get("label") or name, group=spec.get("group", "main"),
                              x=spec.get("x"), seeds=seeds, overrides=dict(spec.get("overrides") or {}),
                              paper=dict(spec.get("paper") or {})))
    return out


def study_overrides(study: dict) -> dict:
    """``study.overrides``: settings every run gets on top of the base groups (before its own)."""
    overrides = dict((study or {}).get("overrides") or {})
    bad = set(overrides) - set(RUN_GROUPS)
    if bad:
        raise ValueError(f"study.overrides: unknown group(s) {sorted(bad)}; known {RUN_GROUPS}")
    return overrides


def settings_fingerprint(params: dict) -> str:
    """A short hash of a run's parameter groups with every ``seed`` and ``run_label`` removed (and the
    ``ADDED_SETTINGS`` at their old behaviour): equal for the seeds of one experiment made under the same
    settings, different once a default changes."""
    from unger.params import without_added_defaults

    params = {group: without_added_defaults(group, values) if isinstance(values, dict) else values
              for group, values in params.items()}

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seed", "run_label", "label")}
        return [strip(v) for v in value] if isinstance(value, (list, tuple)) else value

    return hashlib.sha256(json.dumps(strip(params), sort_keys=True, default=str).encode()).hexdigest()[:12]


def expand_study(params: dict) -> dict:
    """Add one top-level entry per run: ``{<run>: {<group>: full group, "meta": {...}}}``.

    Order: the base group, the study-wide overrides, the experiment's overrides, the run's seed,
    then anything already set under the run's own name (a ``--params`` override of one run).
    """
    experiments = parse_experiments(params.get("study") or {})
    common = study_overrides(params.get("study") or {})
    out = dict(params)
    for exp in experiments:
        for seed in exp.seeds:
            name = run_name(exp.name, seed)
            run = {}
            for group in RUN_GROUPS:
                merged = _deep_merge(params.get(group) or {}, common.get(group) or {})
                merged = _deep_merge(merged, exp.overrides.get(group) or {})
                if group in SEEDED_GROUPS and "seed" in merged:
                    merged["seed"] = seed
                run[group] = merged
            run["runtime"]["run_label"] = name  # prefixes its MLflow metrics and checkpoint names
            run["fusion_variants"] = {"main": {"label": name}}
            if exp.kind == "dominance":  # DIN trained alone, the C of equations 9-10 and the concat baseline
                run["fusion_variants"]["collaborative_only"] = {"label": f"{name}.collaborative_only",
                                                                "variant": "collaborative_only"}
            run["meta"] = {"run": name, "experiment": exp.name, "kind": exp.kind, "seed": seed}
            # Values given for the run itself (``--params=unger_s2024.generative.lr=...``) win.
            out[name] = _deep_merge(run, params.get(name) or {})
    _check_stage_one_folders({run_name(e.name, s): out[run_name(e.name, s)] for e in experiments for s in e.seeds})
    return out


def _check_stage_one_folders(runs: dict[str, dict]) -> None:
    """Refuse runs that would share a Stage I checkpoint file with different ``fusion.max_steps``.

    Stage I checkpoints are named without ``max_steps`` (so a run can be extended); two such runs in one
    ``runtime.checkpoint_dir`` would extend or refuse each other's checkpoint, depending on their order.
    """
    seen: dict[str, tuple[str, Any]] = {}
    for name, run in runs.items():
        # As the file's name (``stage_one_checkpoint_key``): DIN alone does not depend on E_S's settings.
        semantic = run["semantic"] if fusion_aligns(run["fusion"]) else None
        key = json.dumps([run["runtime"].get("checkpoint_dir"), checkpoint_identity(run["fusion"]), semantic],
                         sort_keys=True, default=str)
        steps = run["fusion"].get("max_steps")
        other, other_steps = seen.setdefault(key, (name, steps))
        if other_steps != steps:
            raise ValueError(f"study runs {other} (fusion.max_steps={other_steps}) and {name} (fusion.max_steps="
                             f"{steps}) would share one Stage I checkpoint; give one of them its own "
                             "runtime.checkpoint_dir in its overrides")


def load_experiments(conf_source: str | Path = "conf") -> list[Experiment]:
    """Experiments as listed in ``conf/base/parameters_study.yml`` (the registry needs their names
    before any config loader runs; environments may change their settings, not their names)."""
    import yaml

    path = Path(conf_source) / "base" / "parameters_study.yml"
    if not path.exists():
        return []
    return parse_experiments((yaml.safe_load(path.read_text()) or {}).get("study") or {})


def main(argv: list[str] | None = None) -> None:
    """``python -m unger.study list [--missing] [--group main]``: the study's run names, one per line
    (``make study`` runs each as ``kedro run --pipelines=study --namespaces=<run>``)."""
    import argparse

    parser = argparse.ArgumentParser(description="List the study's runs")
    parser.add_argument("command", choices=["list"])
    parser.add_argument("--conf", default="conf")
    parser.add_argument("--missing", action="store_true", help="only runs without a record in docs/runs/<run>.json")
    parser.add_argument("--group", action="append", help="only these groups (main, table5, figure6, ...)")
    args = parser.parse_args(argv)
    for exp in load_experiments(args.conf):
        if args.group and exp.group not in args.group:
            continue
        for name in exp.run_names():
            if args.missing and Path(f"docs/runs/{name}.json").exists():
                continue
            print(name)


if __name__ == "__main__":
    main()
