# Two commands on a fresh machine: `make demo` (set up, run the end-to-end demo) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# The demo runs where everything it needs is installed by `make setup`: the local runtime.
# `make demo RUNTIME=docker` (official images pulled) or RUNTIME=auto chooses otherwise.
RUNTIME ?= local

.PHONY: setup system-deps test-deps demo test check unit integration lint bench lock clean

# Every Python package from requirements.lock, each file checked against its sha256 (make lock writes it).
$(BIN)/streamctl: pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; streamctl needs Python 3.11 (apache-flink 1.20 has wheels only up to 3.11)"; exit 3; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=23"
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Machine packages: Java 17 and PostgreSQL server binaries for the local runtime. Installed when
# missing and we are root (CI, containers); otherwise the README says what to install.
system-deps:
	@bash .ci/system-deps.sh

setup: system-deps $(BIN)/streamctl
	$(BIN)/streamctl fetch-connectors

demo: setup
	$(BIN)/streamctl demo --runtime $(RUNTIME)

# Every machine package in one apt run, then lint (before the connectors' 172 MB), then the connectors.
# Unit tests before the integration tests: a failure there stops the run in seconds, not half an hour.
test: test-deps lint setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)
	@bash .ci/docker-engine.sh start
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# The inner loop, a few minutes: lint, the unit tests, and one end-to-end smoke on a real local stack
# (up; transactions exact in both sinks; a 400 for a bad payload; down). `make test` runs everything.
check: lint setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/integration/test_local_stack.py -m smoke $(PYTEST_ARGS)

# What the tests need besides the local runtime's packages (Chromium, the Docker engine, debootstrap).
test-deps:
	@bash .ci/system-deps.sh --test

# Zero findings on streamctl/ (rules in pyproject.toml), its import contracts (layers, no cycles:
# [tool.importlinter] in pyproject.toml), the GitHub workflows (actionlint, which runs
# shellcheck on their scripts) and the CI scripts (shellcheck). actionlint is built once from its Go
# module (about 50 s), shellcheck comes from Debian's packages.
ACTIONLINT_VERSION := v1.7.7
lint: $(BIN)/streamctl $(BIN)/actionlint
	@bash .ci/system-deps.sh --lint
	$(BIN)/ruff check streamctl
	$(BIN)/mypy streamctl
	$(BIN)/lint-imports
	$(BIN)/actionlint .github/workflows/*.yml
	shellcheck .ci/*.sh .ci/run

$(BIN)/actionlint:
	@command -v go >/dev/null || { echo "error: make lint builds actionlint with Go: apt-get install golang"; exit 4; }
	GOBIN=$(abspath $(BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

unit: $(BIN)/streamctl
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: setup test-deps
	@bash .ci/docker-engine.sh start
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# Benchmarks on a running stack (brought up if needed); figures printed and written as JSON.
bench: setup
	@bash .ci/system-deps.sh --bench
	$(BIN)/streamctl up
	$(BIN)/streamctl bench ingest
	$(BIN)/streamctl bench freshness
	$(BIN)/streamctl bench validate
	$(BIN)/streamctl bench job
	$(BIN)/streamctl bench startup

# Maintainers: let Maven resolve every role's closure again and rewrite connectors.lock; let
# pip-compile pin the Python packages again, with hashes, into requirements.lock.
lock: $(BIN)/streamctl
	@command -v mvn >/dev/null || { echo "error: make lock resolves the connectors with Maven: apt-get install maven"; exit 4; }
	$(BIN)/python -m streamctl.artifacts.lockgen
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-find-links --extra test --strip-extras \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
