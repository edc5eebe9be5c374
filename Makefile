# Two commands: `make run` (the demo, in sandbox mode: SANDBOX=true unless set) and `make test` (the whole suite).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv

.PHONY: run test lint format venv clean

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3.11, python3.12 …)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -qq --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -qq -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -qq -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

venv: $(VENV)/.runtime

run: $(VENV)/.runtime
	$(VENV)/bin/python scripts/run.py

test: $(VENV)/.dev
	scripts/test.sh $(ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var/*.sqlite3* db.sqlite3*
