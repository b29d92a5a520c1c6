# mlflow-modelkit — the README names two targets: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SYSTEM_PKGS := docker-registry skopeo apache2-utils zstd

.PHONY: demo test lint conformance bench system-deps venv clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

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
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing$$missing (run 'sudo make system-deps'); registry tests will be skipped"; \
	  fi; \
	fi

lint: venv
	$(VENV)/bin/ruff check mlflow_plugin tests bench
	$(VENV)/bin/mypy --cache-dir $(VENV)/.mypy_cache  # the public API's modules: [tool.mypy] files

## test: create .venv, install test extras and system packages, run lint and all tests
test: venv system-deps lint
	@set +e; $(VENV)/bin/pytest -q -rs $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

conformance: venv
	$(VENV)/bin/pytest -q -rs tests/kit/test_conformance.py tests/kit/test_tar_golden.py

## bench: transfer benchmark against a real registry (2 GiB by default; SIZE_MB=… to change)
bench: venv system-deps
	$(PY) bench/transfer.py --size-mb $${SIZE_MB:-2048}
	$(PY) bench/artifact_store.py --size-mb $${SIZE_MB:-2048}

clean:
	rm -rf $(VENV) demo-out bench/out *.egg-info
