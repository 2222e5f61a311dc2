# TXO batch toolkit: the front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCRIPT ?=
ORG    ?=
ENV    ?=
ARGS   ?=
DEMO_PORT ?= 8089
ORGS   ?=
ENVS   ?=
PARALLEL ?= 4

.PHONY: help setup lock run run-all demo mock-api-up mock-api-down test pytest lint lint-deploy \
        k8s image-test typecheck check-patterns bench clean new-script

help: ## List every target with its description (default)
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: SCRIPT=name ORG=org_id ENV=env_type ARGS='--log-format json' NAME=new_script"
	@echo "             run-all: ORGS='acme globex' ENVS=prod PARALLEL=4"

setup: $(STAMP) ## Create .venv/ and install the locked dependencies (no-op when up to date)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "❌ $(PYTHON) not found: install Python 3.10+ or run make PYTHON=/path/to/python3"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The lock is pinned on Python 3.11 (numpy, pandas and pyarrow there need 3.11+); on 3.10
	@# the environment comes from pyproject.toml's ranges instead, as tox builds it.
	@if $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "$(PY) -m pip install --quiet -r requirements.lock"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock; \
	else \
	  echo "Python $$($(PY) -c 'import platform; print(platform.python_version())'): requirements.lock is for 3.11+; installing pyproject.toml's ranges"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"; \
	fi
	@touch $(STAMP)

lock: ## Re-resolve dependencies from pyproject.toml and rewrite the lock files
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet ".[dev]"
	{ echo "# Pinned, reproducible install of runtime + development dependencies (Python 3.11)."; \
	  echo "# Regenerate with: make lock"; \
	  $(VENV)-lock/bin/pip freeze --exclude-editable | grep -v '^txo-batch-toolkit'; } > requirements.lock
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet .
	{ echo "# Pinned runtime dependencies only (what the container image installs). Regenerate with: make lock"; \
	  $(VENV)-lock/bin/pip freeze | grep -v '^txo-batch-toolkit'; } > requirements-runtime.lock
	rm -rf $(VENV)-lock

run: $(STAMP) ## Run a script: make run SCRIPT=report ORG=acme ENV=prod [ARGS='--log-format json']
	@if [ -z "$(SCRIPT)" ] || [ -z "$(ORG)" ] || [ -z "$(ENV)" ]; then \
	  echo "❌ Problem: make run needs SCRIPT, ORG and ENV."; \
	  echo "✅ Solution: name the script in src/ (without .py), the organisation and the environment."; \
	  echo "📝 Example: make run SCRIPT=report ORG=demo ENV=test"; \
	  echo "   Scripts: $$(ls src/*.py 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.py$$//' | grep -v '^__' | tr '\n' ' ')"; \
	  exit 2; fi
	@test -f src/$(SCRIPT).py || { echo "❌ Problem: no script src/$(SCRIPT).py"; echo "✅ Solution: pick one of: $$(ls src/*.py | xargs -n1 basename | sed 's/\.py$$//' | grep -v '^__' | tr '\n' ' ')"; exit 2; }
	$(PY) -m src.$(SCRIPT) $(ORG) $(ENV) $(ARGS)

run-all: $(STAMP) ## Run SCRIPT for every org/env with a config: make run-all SCRIPT=report [ORGS="acme globex"] [ENVS=prod] [PARALLEL=4]
	@test -n "$(SCRIPT)" || { \
	  echo "❌ Problem: make run-all needs SCRIPT."; \
	  echo "✅ Solution: name the script in src/ (without .py); ORGS, ENVS and PARALLEL are optional."; \
	  echo "📝 Example: make run-all SCRIPT=report ORGS=\"acme globex\" ENVS=prod PARALLEL=4"; \
	  exit 2; }
	$(PY) -m tools.run_all $(SCRIPT) --orgs "$(ORGS)" --envs "$(ENVS)" --parallel $(PARALLEL) $(if $(ARGS),-- $(ARGS))

demo: $(STAMP) ## Start the demo API, run the report for demo/test against it, stop the API
	@test -f config/demo-test-config-secrets.json || { \
	  cp config/demo-test-config-secrets_example.json config/demo-test-config-secrets.json && \
	  chmod 600 config/demo-test-config-secrets.json && \
	  echo "Created config/demo-test-config-secrets.json from its demo-only example."; }
	@$(PY) -m tools.wiremock_server start --root mock-api --port $(DEMO_PORT)
	@trap '$(PY) -m tools.wiremock_server stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	  $(PY) -m src.report demo test $(ARGS); status=$$?; echo; \
	  if [ $$status -eq 0 ]; then \
	    echo "✅ Report:  $$(ls -t output/demo-test-report_*.xlsx | head -n 1)"; \
	    echo "   Summary: $$(ls -t output/demo-test-report-summary_*.json | head -n 1)"; \
	    log=$$(ls -t logs/demo-test-report_*.log 2>/dev/null | head -n 1); \
	    if [ -n "$$log" ]; then echo "   Log:     $$log, where the 202 polling and the 429 retry show:"; \
	      grep -E "202 Accepted|HTTP 429" "$$log" | sed -E 's/^.*\.py:[0-9]+ /     /; s#http://[^ ]*/companies\([^)]*\)#…#' || true; fi; \
	  else echo "❌ The report failed with exit code $$status: the log is in logs/."; fi; \
	  exit $$status

new-script: $(STAMP) ## Write src/NAME.py, its settings schema and its tests: make new-script NAME=update_customers
	@if [ -z "$$NAME" ]; then \
	  echo "❌ Problem: make new-script needs NAME, the new script's snake_case name."; \
	  echo "✅ Solution: name it after what it does; it becomes src/NAME.py."; \
	  echo "📝 Example: make new-script NAME=update_customers"; \
	  exit 2; fi
	@$(PY) -m tools.new_script "$$NAME"

mock-api-up: $(STAMP) ## Start the demo API (WireMock) in the background (port 8089, DEMO_PORT=…)
	$(PY) -m tools.wiremock_server start --root mock-api --port $(DEMO_PORT)

mock-api-down: $(STAMP) ## Stop the demo API started by mock-api-up
	$(PY) -m tools.wiremock_server stop

test: lint typecheck check-patterns pytest ## The whole suite: static checks, unit and integration tests (real WireMock)

pytest: $(STAMP) ## Unit and integration tests only
	$(PY) -m pytest

lint: $(STAMP) lint-deploy ## ruff on the code, plus the container and Kubernetes checks
	$(PY) -m ruff check utils src tests bench tools
	$(PY) -m ruff format --check utils tools

lint-deploy: $(STAMP) ## hadolint, the compose file against the Compose schema, deploy/k8s/ vs deploy/schedules.yaml (kubernetes-validate --strict)
	$(VENV)/bin/hadolint --failure-threshold warning Dockerfile
	$(PY) -m tools.check_compose docker-compose.yml
	$(PY) -m tools.render_k8s --check
	$(PY) -m ruff check deploy
	$(PY) -m ruff format --check deploy

k8s: $(STAMP) ## Render deploy/k8s/ from deploy/schedules.yaml (one CronJob per scheduled script)
	$(PY) -m tools.render_k8s

image-test: $(STAMP) ## Build the image and run it for real (Docker, else podman): demo report, state, SIGTERM, exit 2
	$(PY) -m tools.image_test

typecheck: $(STAMP) ## mypy on utils/, src/ and tools/
	$(PY) -m mypy

check-patterns: $(STAMP) ## Check the scripts in src/ follow the toolkit's patterns
	$(PY) -m tools.check_patterns src

bench: $(STAMP) ## Benchmarks, written to bench/RESULTS.md (not part of make test)
	$(PY) -m bench.run

clean: ## Remove the environment, caches, outputs and logs (keeps config/ and data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .tox tmp
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find output logs -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
