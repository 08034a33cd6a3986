# tutorpulse — `make run` starts the whole cluster locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint contract bench bench-rebuild bench-history chaos venv postgres chromium lock clean

venv: $(INSTALLED)

# Dependencies are pinned in requirements.lock (regenerate with `make lock`).
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The integration tests and benchmarks start their own PostgreSQL from Debian's server package.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	else \
		echo "installing PostgreSQL server binaries (Debian package 'postgresql')"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# The browser test (tests/browser) drives Debian's headless Chromium through Playwright; it never
# downloads a browser of Playwright's own (no `playwright install`).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	else \
		echo "installing headless Chromium (Debian package 'chromium')"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

run: venv
	$(PY) -m services

# Three NATS servers (streams at three replicas), PostgreSQL and two replicas of every service,
# all on 127.0.0.1 from port 8100 (TUTORPULSE_CLUSTER_BASE_PORT): a cluster to break on purpose.
cluster: venv postgres
	$(PY) -m services.cluster_ha

test: venv postgres chromium lint
	$(PY) -m pytest

# The style gates (pyproject.toml chooses the rules): formatting, lint, and types throughout.
lint: venv
	$(VENV)/bin/ruff format --check services shared tests
	$(VENV)/bin/ruff check services shared tests
	$(VENV)/bin/mypy

# The long contract run: schemathesis sends many more requests to each operation of both APIs.
CONTRACT_EXAMPLES ?= 300
contract: venv
	TUTORPULSE_CONTRACT_EXAMPLES=$(CONTRACT_EXAMPLES) $(PY) -m pytest tests/contract -p no:randomly

# Every row of var/bench/report.md, each beside its baseline of the same run; the privacy rows
# alone (SQLite, a minute): $(PY) -m tests.bench.privacy
bench: venv postgres
	$(PY) -m tests.bench

# A rebuild of a year of history (1,000,000 events seeded in bulk) into PostgreSQL and SQLite:
# rate and peak memory, in var/bench/rebuild_year.md. REBUILD_EVENTS=50000 for a quick run.
REBUILD_EVENTS ?= 1000000
bench-rebuild: venv postgres
	BENCH_REBUILD_EVENTS=$(REBUILD_EVENTS) $(PY) -m tests.bench.rebuild_year

# A centre with a year of history (1,000,000 events) beside one with only today's sessions: the
# p99 of the reads a centre makes all day, in var/bench/history.md. HISTORY_EVENTS=50000 for a
# quick run.
HISTORY_EVENTS ?= 1000000
bench-history: venv
	BENCH_HISTORY_EVENTS=$(HISTORY_EVENTS) $(PY) -m tests.bench.history

# The long fault run: kill -9 of every process many times under load; report in var/chaos/.
# Then the highly available cluster of `make cluster` loses a NATS server and one replica of each
# service under load, and keeps accepting FAILOVER_COMMANDS more commands; var/chaos/failover.md.
CHAOS_KILLS ?= 6
FAILOVER_COMMANDS ?= 3000
chaos: venv postgres
	TUTORPULSE_CHAOS_KILLS=$(CHAOS_KILLS) TUTORPULSE_CHAOS_REPORT=var/chaos/report.md \
	TUTORPULSE_FAILOVER_COMMANDS=$(FAILOVER_COMMANDS) TUTORPULSE_FAILOVER_REPORT=var/chaos/failover.md \
		$(PY) -m pytest tests/chaos -m chaos -s

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^tutorpulse' > requirements.lock

clean:
	rm -rf var .pytest_cache .hypothesis
