# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .rag_data
STAMP := $(VENV)/.installed

.PHONY: install demo test ui clean

# torch first, pinned to the CPU build on the machine: any other spec pulls GBs of CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ragpipe ingest --data-dir $(DATA_DIR)

test: install
	$(BIN)/pytest

ui: install
	$(BIN)/ragpipe ui --data-dir $(DATA_DIR)

clean:
	rm -rf $(DATA_DIR)
