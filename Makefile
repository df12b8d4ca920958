# The two commands of the README: `make demo` and `make test`. Both set themselves up.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup-host setup-dev

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup-host: $(BIN)/python
	$(BIN)/pip install -q -e '.[host]'

setup-dev: $(BIN)/python
	tests/setup-system.sh
	$(BIN)/pip install -q -e '.[host,train,dev]'

demo: setup-host
	$(BIN)/python -m caed_host.demo

test: setup-dev
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && echo "no tests collected" && rc=0; exit $$rc
