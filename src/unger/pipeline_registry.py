"""Pipelines of the project. Stage modules import torch lazily, so this stays fast to import."""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Pipeline

from unger.pipelines import data_processing, dominance, dual_code, evaluation, fusion, generative, quantization, sasrec, semantic, study
from unger.study import load_experiments


def _conf_source() -> Path:
    """The project's conf folder: the working directory's (Kedro runs from the project root), else
    the one beside the installed source tree."""
    here = Path.cwd() / "conf"
    return here if (here / "base").is_dir() else Path(__file__).resolve().parents[2] / "conf"


def register_pipelines() -> dict[str, Pipeline]:
    """One pipeline per stage; ``full`` chains them from raw files to test metrics; ``dominance`` is the
    semantic-dominance analysis (Table 4, Figure 5); ``study`` every experiment of the paper (one
    namespace per run, ``conf/base/parameters_study.yml``) and ``study_report`` the tables over them."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "semantic": semantic.create_pipeline(),
        "fusion": fusion.create_pipeline(),
        "quantization": quantization.create_pipeline(),
        "generative": generative.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["full"] = sum(pipelines.values(), Pipeline([]))
    # Analyses that train extra variants; run after `full` (or after semantic + fusion).
    pipelines["dominance"] = dominance.create_pipeline()
    # Baselines on the main split (the study runs them per seed): SASRec-CE, and the dual code, which
    # reads the main fusion outputs (E_C only when fusion ran with the collaborative_only variant).
    pipelines["sasrec"] = sasrec.create_pipeline()
    pipelines["dual_code"] = dual_code.create_pipeline()
    experiments = load_experiments(_conf_source())
    pipelines["study"] = study.create_pipeline(experiments)
    pipelines["study_report"] = study.create_report_pipeline(experiments)
    pipelines["__default__"] = pipelines["full"]
    return pipelines
