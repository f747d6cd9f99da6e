"""Wiring of the study: each run (``<experiment>_s<seed>``) is a namespaced copy of the stage
pipelines of its kind, reading ``params:<run>.<group>`` (filled in by ``unger.study.expand_study``);
the report pipeline reads every run's record."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from unger.pipelines import dominance, dual_code, evaluation, fusion, generative, quantization, sasrec, semantic
from unger.pipelines.study import nodes
from unger.study import Experiment, run_name

# Outputs of the main pipeline that every run shares (the split is the same for every experiment).
SHARED = {"items", "train_sequences", "valid_samples", "test_samples", "semantic_embeddings"}


def _evaluation() -> Pipeline:
    """Recommend and score; the per-run markdown report is left to the study report."""
    return evaluation.create_pipeline().only_nodes("recommend_valid_node", "recommend_test_node", "compute_metrics_node",
                                                   "popularity_metrics_node")


def _popularity() -> Pipeline:
    """Scores by the target's training count, from a baseline's ranked lists (renamed as the runs' own)."""
    return evaluation.create_pipeline().only_nodes("popularity_metrics_node")


def _unified_code_stages(kind: str) -> Pipeline:
    """unger: Stage I -> codes of the integrated embeddings -> Stage II with IKD.
    tiger: codes of the semantic embeddings (no Stage I), Stage II as configured (IKD off in the YAML)."""
    if kind == "tiger":
        stages = quantization.create_pipeline() + generative.create_pipeline() + _evaluation()
        return Pipeline(stages, inputs={"integrated_embeddings": "semantic_embeddings"})
    return fusion.create_pipeline() + quantization.create_pipeline() + generative.create_pipeline() + _evaluation()


def _evaluation_outputs(model: str) -> dict[str, str]:
    """A baseline's evaluation outputs under the names the unified-code runs use (one record format)."""
    names = {"metrics": "evaluation_metrics", "mlflow_metrics": "evaluation_mlflow_metrics",
             "valid_recommendations": "valid_recommendations", "test_recommendations": "test_recommendations"}
    return {f"{model}_{name}": renamed for name, renamed in names.items()}


def _sasrec_stages(kind: str) -> Pipeline:
    return Pipeline(sasrec.create_pipeline(), outputs=_evaluation_outputs("sasrec")) + _popularity()


def _dual_code_stages(kind: str) -> Pipeline:
    """Stage I (the experiment sets the collaborative_only variant: E_C) -> codes of E_S and of E_C -> two decoders."""
    stages = Pipeline(dual_code.create_pipeline(), outputs=_evaluation_outputs("dual_code"))
    return fusion.create_pipeline() + stages + _popularity()


def _dominance_stages(kind: str) -> Pipeline:
    """Stage I of the method (E) and of DIN alone (C), the concat baseline, Table 4 and Figure 5."""
    return fusion.create_pipeline() + dominance.create_pipeline()


_BUILDERS = {"unger": _unified_code_stages, "tiger": _unified_code_stages, "sasrec": _sasrec_stages,
             "eager": _dual_code_stages, "dominance": _dominance_stages}


def create_run_pipeline(experiment: Experiment, seed: int) -> Pipeline:
    """The stages of ``experiment`` under namespace ``<experiment>_s<seed>``, ending in its record."""
    if experiment.kind not in _BUILDERS:
        raise ValueError(f"study experiment {experiment.name}: no pipeline for kind {experiment.kind!r}")
    stages = _BUILDERS[experiment.kind](experiment.kind)
    if "semantic" in experiment.overrides:
        stages = semantic.create_pipeline() + stages
    if experiment.kind == "dominance":
        func, inputs = nodes.record_dominance, {"semantic_dominance": "semantic_dominance"}
    else:
        func, inputs = nodes.record_run, {"evaluation_metrics": "evaluation_metrics",
                                          "popularity_metrics": "popularity_metrics"}
        if "fusion_metrics" in stages.all_outputs():
            inputs["stage_one"] = "fusion_metrics"
    inputs.update({"meta": "params:meta", "run_context": "run_context"})
    used = {i for i in stages.inputs() if i.startswith("params:")} | {"params:semantic"}
    inputs.update({name.removeprefix("params:"): name for name in sorted(used - {"params:runtime"})})
    record = Node(func, inputs=inputs, outputs="study_record", name="record_run_node")
    run = stages + Pipeline([record])
    return Pipeline(run, namespace=run_name(experiment.name, seed), inputs=(SHARED | {"run_context"}) & run.inputs())


def create_report_pipeline(experiments: list[Experiment]) -> Pipeline:
    records = {r: f"{r}.study_record" for e in experiments for r in e.run_names()}
    return Pipeline(
        [
            Node(
                nodes.write_study_report,
                inputs={"study": "params:study", "notes": "study_notes", "benchmarks": "speed_benchmarks",
                        "decoding_times": "decoding_times", **records},
                outputs=["study_results_md", "study_results_json", "study_figures"],
                name="write_study_report_node",
            )
        ]
    )


def create_pipeline(experiments: list[Experiment]) -> Pipeline:
    runs = [create_run_pipeline(e, s) for e in experiments for s in e.seeds]
    return sum(runs, Pipeline([])) + create_report_pipeline(experiments)
