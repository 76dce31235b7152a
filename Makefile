# mosslib: the MOSS reproduction book.
#   make test       - bootstrap .venv (pinned) and run the test suite
#   make reproduce  - bootstrap .venv and execute the book (PROFILE=quick|cpu|paper|smoke, DATA_ROOT=...,
#                     BOOK_ARGS='--only 01 --force')
#   make lab        - JupyterLab on the notebooks
#   make e2e        - the memory explorer and the HTML book tested in a real (headless) browser
#   make book-html  - re-render the committed cpu book into docs/book/ (no training: the notebooks that
#                     need trained runs are shown from results/cpu/ and figures/cpu/; DATA_ROOT=...)
#   make clean      - remove the build and the quick/smoke results and figures (rebuilt by `make reproduce`)
#   make clean-runs - remove the training runs cached in runs/ (GBs after a book; the next book trains again)
#   make distclean  - both, and the virtual environment
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
DATA_ROOT ?=
BOOK_ARGS ?=
export DATA_ROOT

.PHONY: all test reproduce lab venv clean clean-runs distclean e2e bench book-html

all: test

# The virtual environment is rebuilt when pyproject.toml or constraints.txt change.
$(STAMP): pyproject.toml constraints.txt
	@echo ">> bootstrapping $(VENV) with $(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

reproduce: $(STAMP)
	$(PY) -m mosslib book --profile $(PROFILE) $(if $(DATA_ROOT),--data $(DATA_ROOT),) $(BOOK_ARGS)

bench: $(STAMP)
	$(PY) -m mosslib bench --profile $(PROFILE)

# End-to-end: JupyterLab + headless Debian chromium (installed when missing) driving 05_memory.
e2e: $(STAMP)
	PY=$(PY) bash scripts/e2e.sh

book-html: $(STAMP)
	$(PY) -m mosslib book --profile cpu $(if $(DATA_ROOT),--data $(DATA_ROOT),) --only 00 03 07
	$(PY) -m mosslib site --profile cpu $(if $(DATA_ROOT),--data $(DATA_ROOT),) --from-results --out docs/book

lab: $(STAMP)
	$(PY) -m jupyter lab notebooks/

clean:
	rm -rf build results/smoke results/quick figures/smoke figures/quick

clean-runs:
	rm -rf runs

distclean: clean clean-runs
	rm -rf $(VENV)
