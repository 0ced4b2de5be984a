# Thin interface: every target calls `uv run …`. uv is installed into .tools/ if it is not on PATH.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: setup up test lint typecheck pytest chaos bench clean

setup: $(UV)
	$(UV) sync --all-packages --locked --compile-bytecode --quiet

# A venv holding uv; where python3 has no venv module (Debian without python3-venv), pip --target.
.tools/bin/uv:
	if python3 -m venv .tools 2>/dev/null; then \
		.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	else \
		rm -rf .tools && python3 -m pip install --quiet --target .tools/pkgs "uv==$(UV_VERSION)" && \
		mkdir -p .tools/bin && ln -sf ../pkgs/bin/uv .tools/bin/uv; \
	fi

up: setup
	$(UV) run --no-sync nightshift up

lint: setup
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync ruff check .

typecheck: setup
	$(UV) run --no-sync mypy libs services tests bench deploy

# Test files spread over one process per CPU (pytest-xdist), each with its own Redis and PostgreSQL.
pytest: setup
	$(UV) run --no-sync pytest -n auto --dist loadfile

test: lint typecheck pytest

# The chaos suite in its long forms (minutes per scenario); `make test` runs the short slice.
# Prints the table of every scenario and leaves it in var/chaos/report.md.
chaos: setup
	rm -f var/chaos/report.md
	CHAOS_LONG=1 $(UV) run --no-sync pytest tests/chaos -s --timeout 7200; \
		status=$$?; echo; cat var/chaos/report.md 2>/dev/null; exit $$status

bench: setup
	$(UV) run --no-sync python -m bench.throughput
	$(UV) run --no-sync python -m bench.users_maintenance
	$(UV) run --no-sync python -m bench.media_variants
	$(UV) run --no-sync python -m bench.scheduler_jitter

clean:
	rm -rf var .venv .tools
