#!/bin/bash
# Study runs in parallel on a GPU machine that has no internet and holds the split and the semantic
# embeddings under data/ (copied from a machine that ran `kedro run --pipelines=data_processing,semantic`).
# Usage: scripts/gpu_batch.sh DEADLINE_S JOBS [--from-node NODE] RUN [RUN ...]
# (--from-node train_stage_one_node: runs whose semantic embeddings were carried, on a machine without the
# text encoder's weights, e.g. the Figure 7 encoders: data/04_feature/study/<run>/semantic_embeddings.npy.)
# Installs the wheels in .whl/ (scripts/offline_wheels.sh) into /tmp/site when that folder exists, runs
# `python -m unger.study_runner`, prints the tail of each failed log, and packs the records, logs,
# MLflow stores and reports into ${OUT:-data/bench}/runs.tgz, and compact copies of the test ranked lists
# (for per-user tests; unpack into data/07_model_output/study) into recs.tar. Set UNGER_GIT_COMMIT to the
# commit the tree was copied from (the copy has no .git).
# Finished checkpoints in data/carry/checkpoints (`python -m unger.training.carry_checkpoint slim
# data/carry/checkpoints <checkpoint>...`: 4.9 MB for a Stage I instead of 19) go into the checkpoint folder
# first, so the runs resume those stages. Back in checkpoints/ come the checkpoints of runs stopped at the
# deadline, then slim copies of the Stage I checkpoints trained here (a stopped Stage II resumes only on
# its own Stage I): at most 6 files of at most 16 MiB, what a call returns beside runs.tgz and recs.tar.
# Put them in data/06_models/checkpoints here and the same runs resume them, where their inputs come out
# bit-identical here (checkpoints are named after them). Seen on 2026-11-28: semantic_only's Stage II
# (k-means of the semantic embeddings) resumed here; concat's (its Stage I carried back slim) got another
# name on this CPU and on the H200 with another thread count, and started again.
set -u
deadline=$1 jobs=$2
shift 2
if [ -d .whl ]; then
  rm -rf /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src
fi
export KEDRO_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
carried=(data/carry/checkpoints/*.pt)
if [ -e "${carried[0]}" ]; then
  mkdir -p data/06_models/checkpoints && cp "${carried[@]}" data/06_models/checkpoints/ || exit 1
fi
python3 -c "import mlflow.store.tracking.sqlalchemy_store, kedro_mlflow.framework.hooks, torch, kedro
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'kedro', kedro.__version__)" || exit 1
python3 -m unger.study_runner --jobs "$jobs" --deadline "$deadline" "$@"
for f in data/logs/*.log; do
  grep -q "Pipeline execution completed" "$f" || { echo "== $f"; grep -v "^ \{20,\}" "$f" | tail -n 12; }
done | head -150
out=${OUT:-data/bench}
mkdir -p "$out"
tar czf "$out/runs.tgz" --exclude='*.parquet' --exclude='*.pt' docs/runs data/logs data/mlflow data/08_reporting 2>/dev/null
rm -rf /tmp/recs && mkdir -p /tmp/recs
python3 -m unger.evaluation.pack_recommendations /tmp/recs --split test && tar cf "$out/recs.tar" -C /tmp/recs .
python3 -m unger.training.carry_checkpoint back "$out/checkpoints" data/06_models/checkpoints \
  --skip data/carry/checkpoints --max-files 6
ls -laR "$out"
