# FRGAN-Repro. Two commands set everything up on a fresh machine:
#   make repro   venv + pinned install + `dvc repro` on the embedded default (synthetic data)
#   make test    venv + pinned install + the test suite
# Both are idempotent: the install reruns only when requirements/ or pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
UI_PORT ?= 5000

.PHONY: install repro test check check-update bench ui lock clean-venv

install: $(STAMP)

$(STAMP): requirements/main.txt requirements/nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/main.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The regression gate on the current results (smoke baseline; published numbers on MUG/Penn).
check: $(STAMP)
	$(BIN)/python -m pipelines.check

# Accept the current smoke numbers after an intended change (prints what changed); commit the file.
check-update: $(STAMP)
	$(BIN)/python -m pipelines.check --update

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-only -o python_files="bench_*.py"

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

# Refreeze the transitive pins after changing a direct pin in requirements/main.txt.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^facenet-pytorch==' > requirements/.frozen.txt
	@echo "merge requirements/.frozen.txt into the frozen section of requirements/main.txt"

clean-venv:
	rm -rf $(VENV)
