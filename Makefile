# mlflow-modelkit — the README names two targets: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SYSTEM_PKGS := docker-registry skopeo apache2-utils zstd chromium

# jlpm (yarn 3) comes with jupyterlab's jupyter-builder; package.json's scripts call `jlpm` again,
# so the venv's bin goes first on PATH for them
JLPM := PATH="$(abspath $(VENV))/bin:$$PATH" jlpm

.PHONY: demo test lint conformance bench system-deps venv clean frontend node-check lab

## node-check: the front end (frontend/) is built by the wheel's build hook and needs node >= 20
node-check:
	@command -v node >/dev/null || { echo "node >= 20 is required to build the JupyterLab front end (apt-get install nodejs npm)"; exit 1; }
	@command -v npm >/dev/null || { echo "npm is required to build the JupyterLab front end"; exit 1; }
	@major=$$(node -p 'process.versions.node.split(".")[0]'); \
	if [ "$$major" -lt 20 ]; then echo "node >= 20 is required (found $$(node --version))"; exit 1; fi

# `pip install -e` runs the hatch jupyter-builder hook: `jlpm install` + `jlpm build` in frontend/
# unless jupyter_ext/labextension is already built (then `make frontend` rebuilds it).
$(VENV)/.installed: pyproject.toml frontend/package.json frontend/yarn.lock | node-check
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

## frontend: install the JS dependencies, build the labextension (dev build) into jupyter_ext/labextension
## and link it into the venv (an editable install copied it), so a rebuild shows after a browser reload
frontend: venv
	cd frontend && $(JLPM) install && $(JLPM) build
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite . >/dev/null

LAB_DIR ?= lab-data
LAB_PORT ?= 8888
## lab: seed ./lab-data (SQLite tracking store, local kit store, a demo key, experiment "fraud-detection"
## with one published run and one with a finding) and start JupyterLab with the ModelKits panel on it
lab: venv
	$(PY) -m jupyter_ext.seed $(LAB_DIR)
	@echo "starting JupyterLab on port $(LAB_PORT): open the http://localhost:$(LAB_PORT)/lab?token=… URL below"
	MLFLOW_TRACKING_URI=sqlite:///$(abspath $(LAB_DIR))/mlflow.db \
	MLFLOW_MODELKIT_CONFIG=$(abspath $(LAB_DIR))/modelkit.toml \
	  $(VENV)/bin/jupyter lab --ServerApp.root_dir=. --ServerApp.port=$(LAB_PORT) --no-browser \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

## demo: create .venv, install, pack the example model, push, pull, unpack, inspect
demo: venv
	./examples/demo.sh

## system-deps: Debian packages the tests need (installed when run as root)
system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v skopeo >/dev/null || missing="$$missing skopeo"; \
	command -v htpasswd >/dev/null || missing="$$missing apache2-utils"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	test -x /usr/lib/chromium/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing$$missing (run 'sudo make system-deps'); registry and UI (chromium) tests will be skipped"; \
	  fi; \
	fi

lint: venv
	$(VENV)/bin/ruff check mlflow_plugin jupyter_ext tests bench
	$(VENV)/bin/mypy --cache-dir $(VENV)/.mypy_cache  # the public API's modules: [tool.mypy] files
	@if [ -d frontend/node_modules ]; then \
	  cd frontend && $(JLPM) lint:check; \
	else echo "frontend/node_modules missing: skipping the front end's lint (make frontend)"; fi

## test: create .venv, install test extras and system packages, run lint and all tests
test: venv system-deps lint
	cd frontend && $(JLPM) install --immutable >/dev/null && $(JLPM) test --silent
	@set +e; $(VENV)/bin/pytest -q -rs $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

conformance: venv
	$(VENV)/bin/pytest -q -rs tests/kit/test_conformance.py tests/kit/test_tar_golden.py

## bench: transfer benchmark against a real registry (2 GiB by default; SIZE_MB=… to change)
bench: venv system-deps
	$(PY) bench/transfer.py --size-mb $${SIZE_MB:-2048}
	$(PY) bench/artifact_store.py --size-mb $${SIZE_MB:-2048}

clean:
	rm -rf $(VENV) demo-out lab-data bench/out *.egg-info frontend/node_modules frontend/lib frontend/.yarn \
	  frontend/tsconfig.tsbuildinfo jupyter_ext/labextension
