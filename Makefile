# ganops: `make run` trains, evaluates and registers a generator; `make test` runs the suite.
# Both create .venv on first use and install the pinned versions from requirements.lock.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(abspath $(BIN)):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies (torch 2.13.0, CPU wheel)

run: $(STAMP) ## Run the whole pipeline (Prefect flow) on params.yaml
	ganops run

test: $(STAMP) ## Run the whole test suite (unit, data, model, e2e)
	pytest

test-fast: $(STAMP) ## Run the unit and data tests (under a minute)
	pytest tests/unit tests/data -m "not slow"

lint: $(STAMP) ## ruff lint and format check
	ruff check .
	ruff format --check .

repro: $(STAMP) ## Run the pipeline through DVC (cached stages are skipped)
	dvc repro

mlflow-ui: $(STAMP) ## Browse runs and the model registry on http://127.0.0.1:5000
	mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

lock: $(STAMP) ## Re-pin requirements.lock from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -E '^(ganops|pip|setuptools)==' > requirements.lock

server: $(STAMP) ## Start a Prefect server on http://127.0.0.1:4200 (UI and API)
	prefect server start --host 127.0.0.1 --port 4200

deploy: $(STAMP) ## Create the `ganops` process pool and deploy infra/prefect.yaml (PREFECT_API_URL set)
	prefect work-pool inspect ganops >/dev/null 2>&1 || prefect work-pool create ganops --type process
	prefect deploy --all --prefect-file infra/prefect.yaml

worker: $(STAMP) ## Run a worker for the `ganops` pool (executes scheduled and on-demand runs)
	prefect worker start --pool ganops

clean: ## Remove pipeline outputs (keeps .venv, mlflow.db and the DVC cache)
	rm -rf data/processed models checkpoints reports .cache

stack: $(STAMP) ## Start the team stack (Postgres, S3, MLflow, Prefect server + worker) in .stack/
	$(BIN)/python infra/stack/stack.py up

stack-down: ## Stop exactly the processes `make stack` started
	$(BIN)/python infra/stack/stack.py down

stack-status: ## Health of each stack service
	$(BIN)/python infra/stack/stack.py status

.PHONY: help install run test test-fast lint repro mlflow-ui lock clean server deploy worker stack stack-down stack-status
