# The front door: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
FRAUDOPS := $(VENV)/bin/fraudops
PYTEST := $(VENV)/bin/pytest

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: bootstrap
bootstrap: ## install Debian packages and the Python venv (only what is missing)
	@bash scripts/bootstrap.sh

.PHONY: lock
lock: bootstrap ## recompile requirements.lock from requirements.in
	UV_SYSTEM_CERTS=1 $(VENV)/bin/uv pip compile -q --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu requirements.in -o requirements.lock

.PHONY: secrets
secrets: bootstrap ## generate missing secrets into env/*.env (needed before `docker compose up` too)
	@$(FRAUDOPS) stack secrets

.PHONY: up
up: bootstrap ## install what is missing and start the whole native stack
	@$(FRAUDOPS) stack up

.PHONY: down
down: ## stop the processes `make up` started (data is kept)
	@$(FRAUDOPS) stack down

.PHONY: status
status: ## every service with its health and URL
	@$(FRAUDOPS) stack status

.PHONY: logs
logs: ## last lines of every service log (make logs S=kafka-1 F=1 to follow one)
	@$(FRAUDOPS) stack logs $(S) $(if $(F),--follow,)

.PHONY: clean
clean: ## stop the stack and wipe its data folder
	@$(FRAUDOPS) stack clean --yes

.PHONY: demo
demo: bootstrap ## the main job: stack up, history, retraining via Airflow, live scoring, where to look
	@PYTHONUNBUFFERED=1 $(FRAUDOPS) demo $(DEMO_ARGS)

.PHONY: test
test: bootstrap ## all tests: unit, DAG integrity, integration on the real stack (started if needed)
	$(PYTEST) tests --ignore=tests/compose

.PHONY: test-unit
test-unit: bootstrap ## fast tier: no services
	$(PYTEST) tests/unit tests/dags

.PHONY: test-integration
test-integration: bootstrap ## the real services (the stack is started if needed)
	$(PYTEST) tests/integration

.PHONY: compose-build
compose-build: bootstrap ## build every image of docker-compose.yaml (starts a Docker engine if none answers)
	@$(FRAUDOPS) compose build

.PHONY: compose-up
compose-up: bootstrap ## the platform in containers: build, start, wait until every container is healthy
	@$(FRAUDOPS) compose up

.PHONY: compose-down
compose-down: bootstrap ## stop and remove the containers (volumes kept)
	@$(FRAUDOPS) compose down

.PHONY: compose-test
compose-test: bootstrap ## build, run the stack in containers, check it end to end, remove it
	$(PYTEST) tests/compose

.PHONY: lint
lint: ## ruff lint and format check
	$(VENV)/bin/ruff check src tests dags plugins scripts spark-jobs
	$(VENV)/bin/ruff format --check src tests dags plugins scripts spark-jobs

.PHONY: format
format: ## ruff fix and format
	$(VENV)/bin/ruff check --fix src tests dags plugins scripts spark-jobs
	$(VENV)/bin/ruff format src tests dags plugins scripts spark-jobs

.PHONY: bench
bench: bench-stack bench-model bench-stream ## all benchmarks (figures go to BENCHMARKS.md)

.PHONY: bench-stack
bench-stack: bootstrap ## native stack: warm start time and resident memory
	$(PY) scripts/bench_stack.py

.PHONY: bench-stream
bench-stream: bootstrap ## scorer: drain, live latency, 5 min sustained, baseline, stage breakdown (stack up)
	$(PY) scripts/bench_stream.py

.PHONY: bench-compose
bench-compose: bootstrap ## containers: cold build of every image, up to all-healthy, memory (~15 min)
	$(PY) scripts/bench_compose.py

.PHONY: bench-model
bench-model: bootstrap ## model core: generation, features, training, scoring speed
	$(PY) scripts/bench_model.py

.PHONY: bench-console
bench-console: bootstrap ## console: search by id and alert list on 3 M scored rows in a scratch schema (stack up)
	$(PY) scripts/bench_console.py $(BENCH_ARGS)

.PHONY: console-screenshots
console-screenshots: bootstrap ## the console's browser tests, saving each page's screenshot into docs/console
	FRAUDOPS_CONSOLE_SCREENSHOTS=docs/console $(PYTEST) tests/integration/test_console_browser.py

.PHONY: bench-features
bench-features: bootstrap ## feature ablation under the protocol, both families, logged to MLflow
	$(PY) scripts/bench_features.py
