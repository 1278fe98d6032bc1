# NetForge: the commands of the README. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
# Two cores: one pytest-xdist worker each, one BLAS and engine thread per worker.
TEST_WORKERS ?= 2

FRONTEND_BUILT := frontend/dist/index.html
FRONTEND_INSTALLED := frontend/node_modules/.installed

.PHONY: run lint test test-postgres test-frontend chromium postgresql h2load bench crosscheck lock clean protos api-types fuzz

# KServe's client (tests/endpoints) is installed without its requirements: every release pins
# psutil<6 and protobuf<7, older than ours; what its import needs is in [test] (pyproject.toml).
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	$(PIP) install --quiet --no-deps -c constraints.txt kserve
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(PIP) install --quiet -c constraints.txt -e '.[test,bench]'
	touch $@

$(FRONTEND_INSTALLED): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser app, rebuilt when a source file changes (Django serves frontend/dist).
$(FRONTEND_BUILT): $(FRONTEND_INSTALLED) $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html frontend/vite.config.ts frontend/tsconfig.json
	cd frontend && npm run build --silent

# exec: the supervisor replaces the recipe's shell, so a signal to make's group reaches one process
# (make forwards SIGTERM to it too); --stop-with-parent: if make itself is killed, everything stops.
run: $(INSTALLED) $(FRONTEND_BUILT)
	exec $(PY) -m webapp.run --stop-with-parent

# Debian's chromium drives the browser tests (through Playwright).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Debian's PostgreSQL server: tests/platform/test_postgres.py runs the platform on a throwaway cluster.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		echo "Installing Debian's postgresql for the PostgreSQL tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# Debian's nghttp2-client brings h2load, the serving bench's gRPC load generator (a C client leaves
# the two cores to the server; without it the bench measures with grpc's Python client and says so).
h2load:
	@command -v h2load >/dev/null || { \
		echo "Installing Debian's nghttp2-client (h2load) for the serving bench"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null; } \
		|| echo "could not install nghttp2-client: the serving bench will use grpc's Python client"; }

test-frontend: $(FRONTEND_INSTALLED)
	cd frontend && npx tsc --noEmit && npm run --silent check:api-types && npx vitest run

# The server's OpenAPI document, committed as frontend/src/api/openapi.json, and the TypeScript
# types generated from it (frontend/src/api/schema.d.ts; never edited by hand). Run it after
# changing a serializer or an endpoint: tests/webapp/test_openapi.py and make test-frontend fail
# while either file is stale.
api-types: $(INSTALLED) $(FRONTEND_INSTALLED)
	DJANGO_SETTINGS_MODULE=webapp.settings.test $(PY) manage.py spectacular --format openapi-json --file frontend/src/api/openapi.json
	cd frontend && npm run --silent api-types

# ruff with the rule set in pyproject.toml ([tool.ruff.lint]); make test runs it first.
lint: $(INSTALLED)
	$(PY) -m ruff check .

test: $(INSTALLED) lint $(FRONTEND_BUILT) chromium postgresql test-frontend
	NETFORGE_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -q

# The suites that run the real platform (tests/platform, the distributed runs, the serving
# servers) again with PostgreSQL instead of SQLite under every process (make test runs
# tests/platform/test_postgres.py on PostgreSQL; this runs all of them).
test-postgres: $(INSTALLED) postgresql
	NETFORGE_TEST_DATABASE=postgresql NETFORGE_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -q tests/platform tests/distributed/test_platform_runs.py \
		tests/endpoints/test_servers.py

# The property-based fuzz of every OpenAPI operation (tests/security/test_openapi_fuzz.py), longer than
# make test runs it: FUZZ_EXAMPLES examples per operation and generation mode, from seed FUZZ_SEED.
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 16
fuzz: $(INSTALLED)
	NETFORGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) NETFORGE_FUZZ_SEED=$(FUZZ_SEED) OMP_NUM_THREADS=1 \
		$(PY) -m pytest -n 0 -p no:cacheprovider -o log_cli=true --log-cli-level=INFO -q \
		tests/security/test_openapi_fuzz.py

# Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to work around old OpenBLAS builds;
# they pin a current NumPy to slower kernels than it would choose, so the benchmarks measure NumPy
# as it runs by default (tests and CI keep the machine's settings). The bench prints the kernel.
bench: $(BENCH_INSTALLED) $(FRONTEND_INSTALLED) h2load
	cd frontend && npx vitest bench --run
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m tests.bench

crosscheck: $(BENCH_INSTALLED)
	$(PY) -m tests.bench.crosscheck

# The gRPC protos' Python modules (committed; never edited by hand), in one protoc run: serving
# (webapp/serving/protos) and distributed training (workers/distributed/protos). Each proto's import
# path is its path from the repository root, which mirrors its Python package, so a generated
# *_pb2_grpc.py imports its messages as e.g. webapp.serving.protos.netforge.serving.v1.predict_pb2.
# (`python -m grpc_tools.protoc` adds the well-known types' include folder itself.)
PROTO_FOLDERS := webapp/serving/protos workers/distributed/protos
protos: $(INSTALLED)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
		$$(find $(PROTO_FOLDERS) -name '*.proto' | sort)

lock: $(BENCH_INSTALLED)
	{ head -3 constraints.txt; $(PIP) freeze --exclude-editable | sed "s/+cpu//"; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs frontend/node_modules frontend/dist
