# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .rag_data
STAMP := $(VENV)/.installed

# Debian packages the tests use: a real PostgreSQL for the ledger, Chromium for the UI test,
# Tesseract for OCR of scanned PDFs and images, LibreOffice (headless, no GUI) to convert legacy
# .doc/.xls/.ppt files.
SYSTEM_PACKAGES := postgresql chromium tesseract-ocr tesseract-ocr-eng \
	libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui

.PHONY: install system-packages node-tools demo test ui clean bench-peers

# torch first, pinned to the CPU build on the machine: any other spec pulls GBs of CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench,onnx]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ragpipe ingest --data-dir $(DATA_DIR)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: install $$missing (apt) or the tests that need them are skipped"; \
	  fi; \
	fi

# Azurite (Azure Blob and Queue emulator) for the tests, pinned by tests/node/package-lock.json.
AZURITE := tests/node/node_modules/.bin/azurite
$(AZURITE): tests/node/package-lock.json
	npm ci --prefix tests/node --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(AZURITE)

node-tools: $(AZURITE)

test: install system-packages node-tools
	$(BIN)/pytest

# ragpipe against LangChain index() and LlamaIndex IngestionPipeline (bench/peers.py), 1,000
# documents; install brings the [bench] extra.
bench-peers: install
	$(BIN)/python bench/peers.py

ui: install
	$(BIN)/ragpipe ui --data-dir $(DATA_DIR)

clean:
	rm -rf $(DATA_DIR)
