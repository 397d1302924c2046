# The two commands: `make run` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup browser lint bench clean

run: setup
	$(BIN)/python app.py

test: setup browser
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# Debian's chromium + chromedriver and a CJK font for the browser tests.
browser:
	@sh scripts/ensure-browser.sh

lint: setup
	$(BIN)/python -m ruff check .

bench: setup browser
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
