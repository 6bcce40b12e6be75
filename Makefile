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
# `make server`: a shared MLflow tracking server (PostgreSQL backend, artifacts in a folder).
# Bound to 127.0.0.1 unless SERVER_HOST says otherwise (0.0.0.0: every interface; MLflow then
# accepts Host headers of localhost and private IPs, widen with SERVER_ARGS=--allowed-hosts=...).
# The suite logs to it with MLFLOW_TRACKING_URI=http://<host>:$(SERVER_PORT).
SERVER_DB        ?= postgresql+psycopg2://mlflow@127.0.0.1:5432/mlflow
SERVER_ARTIFACTS ?= $(CURDIR)/mlartifacts
SERVER_HOST      ?= 127.0.0.1
SERVER_PORT      ?= 5001
SERVER_ARGS      ?=
# MLflow's background job runner (GenAI features; 7 worker processes): the suite uses none of it.
SERVER_JOBS      ?= false
MLFLOW           ?= $(BIN)/mlflow

.PHONY: install repro test check check-update refresh cpu-profile cpu-faces-profile bench bench-repro ui server lock clean-venv

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

# The cpu profile (actors-synth, learning on 2 cores, ~1 h) in a clone of HEAD -> reports/cpu/.
cpu-profile: $(STAMP)
	$(BIN)/python -m pipelines.run_profile cpu

# The cpu profile on faces-synth (Tables 1 and 4, ~30 min on 2 cores) -> reports/cpu-faces/.
cpu-faces-profile: $(STAMP)
	$(BIN)/python -m pipelines.run_profile cpu-faces

# The regression gate on the current results (smoke baseline; published numbers on MUG/Penn).
check: $(STAMP)
	$(BIN)/python -m pipelines.check

# Accept the current smoke numbers after an intended change (prints what changed); commit the file.
check-update: $(STAMP)
	$(BIN)/python -m pipelines.check --update

# After a change to stage code (a refactor included): a fresh `dvc repro --force` of the working
# tree in a clone, the smoke gate, then dvc.lock and the results copied back and listed for the
# commit (pipelines/refresh.py). UPDATE=1 accepts numbers that moved (check --update).
refresh: $(STAMP)
	$(BIN)/python -m pipelines.refresh $(if $(UPDATE),--update)

# Benchmarks (issue 10): every hot path, figures in reports/benchmarks/*.json and summary.md.
# `bench` takes about 10-15 minutes on 2 cores; `bench-repro` (a fresh smoke `dvc repro` in a
# clone of HEAD under /tmp, then no-op repros) about as long as `make repro`.
bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-only -o python_files="bench_*.py" -p no:cacheprovider --durations=12

bench-repro: $(STAMP)
	$(BIN)/python -m benchmarks.e2e_repro
	$(BIN)/python -m benchmarks.summary

# The UI in its training view (runs, params, metrics: ?workflowType=machine_learning; MLflow 3
# opens on its GenAI view otherwise). The URL is printed; UI_OPEN=1 also opens it in a browser.
UI_URL = http://127.0.0.1:$(UI_PORT)/\#/experiments?workflowType=machine_learning
ui: $(STAMP)
	@echo "MLflow UI: $(UI_URL)"
	@$(if $(UI_OPEN),(sleep 3; $(BIN)/python -m webbrowser -t '$(UI_URL)' >/dev/null 2>&1) &)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

# A team tracking server: `make server SERVER_DB=postgresql+psycopg2://user:pass@dbhost:5432/mlflow
# SERVER_ARTIFACTS=/shared/mlartifacts`. Artifacts are proxied (clients need no access to the folder).
server: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$(SERVER_JOBS) \
	$(MLFLOW) server --backend-store-uri '$(SERVER_DB)' --artifacts-destination '$(SERVER_ARTIFACTS)' \
		--serve-artifacts --host $(SERVER_HOST) --port $(SERVER_PORT) $(SERVER_ARGS)

# Refreeze the transitive pins after changing a direct pin in requirements/main.txt.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^facenet-pytorch==' > requirements/.frozen.txt
	@echo "merge requirements/.frozen.txt into the frozen section of requirements/main.txt"

clean-venv:
	rm -rf $(VENV)
