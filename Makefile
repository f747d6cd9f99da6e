# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data/amazon2014
CATEGORY ?= Beauty
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1

.PHONY: run test install install-test data viz mlflow-ui clean-venv bench study study-report

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate requirements.txt pyproject.toml
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## data: link ../shared/data/amazon2014 when present, else download the official files
data: install
	$(BIN)/python -m unger.data.download --category $(CATEGORY) --dest data/01_raw/amazon2014 --source $(SHARED_DATA)

## run: set up everything and run the whole pipeline
run: data
	$(BIN)/kedro run --pipelines=full

## test: install what the tests need and run them
test: install-test
	$(BIN)/python -m pytest -q

## bench: time training, decoding and the whole pipeline on this machine -> docs/benchmarks.{md,json}
## (BENCH_ARGS=--skip pipeline reuses the newest run profile instead of running the pipeline again)
BENCH_ARGS ?=
bench: data
	$(BIN)/python -m unger.bench --run-pipeline $(BENCH_ARGS)

## study: every experiment of the paper, one `kedro run` per run (resumable: finished runs keep
## their record; STUDY_RUNS picks runs, STUDY_PARAMS passes --params, STUDY_JOBS>1 runs that many at
## once with logs in data/logs/ and one MLflow store each in data/mlflow/), then the report:
## docs/results.md, docs/results.json, docs/figures/
STUDY_RUNS ?=
STUDY_PARAMS ?=
STUDY_JOBS ?= 1
study: data
	$(BIN)/kedro run --pipelines=data_processing,semantic
	runs="$(STUDY_RUNS)"; [ -n "$$runs" ] || runs=$$($(BIN)/python -m unger.study list); \
	if [ "$(STUDY_JOBS)" -gt 1 ]; then \
		$(BIN)/python -m unger.study_runner --jobs $(STUDY_JOBS) $(if $(STUDY_PARAMS),--params=$(STUDY_PARAMS)) $$runs || exit 1; \
	else for run in $$runs; do \
		$(BIN)/kedro run --pipelines=study --namespaces=$$run $(if $(STUDY_PARAMS),--params=$(STUDY_PARAMS)) || exit 1; \
	done; fi
	$(MAKE) study-report

study-report: install
	$(BIN)/kedro run --pipelines=study_report

viz: install
	$(BIN)/kedro viz build

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean-venv:
	rm -rf $(VENV)
