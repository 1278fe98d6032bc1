# NetForge: the commands of the README. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
# Two cores: one pytest-xdist worker each, one BLAS thread per worker.
TEST_WORKERS ?= 2

.PHONY: run test bench crosscheck lock clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(PIP) install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

run: $(INSTALLED)
	@if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build; fi
	$(PY) -m webapp.run

test: $(INSTALLED)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -q

bench: $(BENCH_INSTALLED)
	$(PY) -m tests.bench

crosscheck: $(BENCH_INSTALLED)
	$(PY) -m tests.bench.crosscheck

lock: $(BENCH_INSTALLED)
	{ head -3 constraints.txt; $(PIP) freeze --exclude-editable | sed "s/+cpu//"; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs
