# The two commands a newcomer types: `make verify` and `make test`.
# Each target installs what it needs first (the CPU build of torch, then this package with its
# test and dev extras, editable: pip writes induction_heads.egg-info/ beside the sources).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
OUT ?= results/verify

.PHONY: install notebooks docs verify test test-quick test-thorough bench lint

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==2.13.0"
	@$(PIP) install -q -e ".[test,dev]"

notebooks: install
	@$(PIP) install -q -e ".[notebooks]"
	$(PYTHON) -m jupyter notebook notebooks/

# The documentation site into site/, failing on any warning (a docstring citing a name that does
# not exist included); `mkdocs serve` shows it at http://127.0.0.1:8000 while you edit.
docs: install
	@$(PIP) install -q -e ".[docs]"
	$(PYTHON) -m mkdocs build --strict

verify: install
	$(PYTHON) -m numerics verify --out $(OUT) --force

# Two pytest-xdist workers on two cores, each with one BLAS/OpenMP thread: OpenBLAS's default of
# a thread per core made a batch of 256x256 inverses 5x slower when two processes shared the cores.
THREADS_ONE := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: install
	$(THREADS_ONE) $(PYTHON) -m pytest -m "not gpu and not thorough" -n 2 -p no:benchmark

test-quick: install
	$(THREADS_ONE) $(PYTHON) -m pytest -m "not slow and not gpu and not thorough" -n 2 -p no:benchmark

# The thorough tier runs its drawn cases across every core (pytest-xdist; the stage-wise property
# is split into one hypothesis run per core, INDUCTION_HEADS_THOROUGH_SHARDS); pytest-benchmark,
# where installed, refuses to run beside xdist, hence -p no:benchmark.
test-thorough: install
	$(THREADS_ONE) HYPOTHESIS_PROFILE=thorough $(PYTHON) -m pytest -m "thorough or gpu" -n auto -p no:benchmark

bench: install
	$(PYTHON) -m numerics bench

lint: install
	$(PYTHON) -m ruff check theory numerics proofs tests
