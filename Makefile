# Airlock: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: deps debian-packages sandbox-up sandbox-down sandbox-status demo test unit lint

debian-packages:
	@sh sandbox/install-debian-packages

$(STAMP): requirements.txt
	@echo "deps: creating $(VENV) from requirements.txt (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import airflow, docker, airflow.providers.docker"
	touch $(STAMP)

deps: debian-packages $(STAMP)

sandbox-up: deps
	$(PY) -m sandbox up

sandbox-down:
	@if [ -x $(PY) ]; then $(PY) -m sandbox down; else echo "sandbox: no venv, nothing started"; fi

sandbox-status:
	$(PY) -m sandbox status

demo: deps
	$(PY) -m sandbox up
	$(PY) -m sandbox.demo

lint: deps
	$(PY) -m ruff check .
	$(PY) -m mypy plugins

unit: deps
	$(PY) -m pytest tests/unit -q

# Brings the sandbox up, runs lint and the whole suite, and brings the sandbox down even on failure.
test: deps
	@status=0; \
	$(PY) -m ruff check . || status=1; \
	$(PY) -m mypy plugins || status=1; \
	if $(PY) -m sandbox up; then $(PY) -m pytest tests -ra || status=$$?; else status=1; fi; \
	$(PY) -m sandbox down || status=1; \
	exit $$status
