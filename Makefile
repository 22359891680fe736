# One entry point for people and CI: `make run`, `make test`, `make lint`, `make bench`.
# Each target sets up .venv on first use (and again whenever pyproject.toml changes).

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PREFECT_VENV := bench/.venv-prefect
PREFECT_VERSION := 3.9.1

.PHONY: run test lint bench

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dockyard server start

# Any non-zero pytest status fails this target, 5 (no tests collected) included.
# Two workers: most tests wait on real servers, containers and subprocesses; the Docker
# tests stay together on one (PYTEST_ARGS="-n 0" runs serially).
test: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# Prefect is the reference the figures are compared with; without it they are Dockyard's only.
bench: $(STAMP)
	@if [ ! -d $(PREFECT_VENV) ]; then \
		echo "bench: installing prefect==$(PREFECT_VERSION) into $(PREFECT_VENV)"; \
		if ! { python3 -m venv $(PREFECT_VENV) && \
		       $(PREFECT_VENV)/bin/pip install -q 'prefect==$(PREFECT_VERSION)'; }; then \
			rm -rf $(PREFECT_VENV); \
			echo "bench: could not install Prefect; Prefect figures are skipped"; \
		fi; \
	fi
	@status=0; \
	for script in bench/[!_]*.py; do \
		echo; echo "== $$script"; \
		$(PYTHON) $$script || status=1; \
	done; \
	exit $$status
