# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Both create .venv and install painterly with the tested versions (constraints.txt pins the CPU
# build of PyTorch; an unpinned torch would pull a multi-GB CUDA build).

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
EXTRAS ?= test

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed-$(EXTRAS)

$(VENV)/.installed-$(EXTRAS): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

demo: setup
	$(BIN)/painterly demo -o painterly-demo.png

test: setup
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
