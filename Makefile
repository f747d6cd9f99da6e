# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data/amazon2014
CATEGORY ?= Beauty
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1

.PHONY: run test install install-test data viz mlflow-ui clean-venv

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

viz: install
	$(BIN)/kedro viz build

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean-venv:
	rm -rf $(VENV)
