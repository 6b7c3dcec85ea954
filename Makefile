# Khalex Pay — `make` lists the targets.
.DEFAULT_GOAL := help
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: uv
uv: ## Install uv if it is missing
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

#: The project's own packages, compiled with the libraries by `make install`.
PACKAGES := api workers domain store daraja payments operations khalex_pay plumbing migrations

.PHONY: install
install: uv ## Create .venv from the lock file
	@# Bytecode is written ahead, so a process starts in half the time where the
	@# environment sets PYTHONDONTWRITEBYTECODE (every start would compile every module).
	@$(UV) sync --locked --quiet --compile-bytecode
	@$(UV) run --no-sync python -m compileall -q $(PACKAGES)

#: Where `make dev` listens: `make dev PORT=8001 HOST=0.0.0.0`.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: dev
dev: install ## Run everything in one process (SQLite, in-process queue, simulator); PORT=, HOST=
	@$(UV) run khalex-pay dev --host $(HOST) --port $(PORT)

.PHONY: services
services: ## Start the local PostgreSQL and Redis if they are down
	@scripts/ensure-services

.PHONY: chromium
chromium: ## Install Debian's Chromium for the browser tests if it is missing
	@scripts/ensure-chromium

.PHONY: lint
lint: install ## ruff (lint and format check), mypy --strict, the import contracts and bandit
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy
	@$(UV) run lint-imports
	@$(UV) run bandit -q -c pyproject.toml -r $(PACKAGES)

.PHONY: test
test: install services chromium lint ## The whole suite (lint, unit, integration, simulator, end to end, browser) and its coverage floor
	@$(UV) run pytest --cov

.PHONY: screenshots
screenshots: install chromium ## Write each checkout stage at desktop and phone size to docs/screenshots/ (only some: STAGES="4-paid-by-paybill ...")
	@$(UV) run python -m tests.browser.screenshots docs/screenshots $(STAGES)

.PHONY: fmt
fmt: install ## Format and autofix
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

.PHONY: settings-table
settings-table: install ## Rewrite the README's settings table from plumbing/settings.py
	@$(UV) run khalex-pay settings --update README.md

.PHONY: bench
bench: install services ## Print the benchmark figures
	@$(UV) run python -m benchmarks

.PHONY: bench-scale
bench-scale: install services ## The read paths at a million finished payments (minutes; a database of its own)
	@$(UV) run python -m benchmarks.scale

.PHONY: bench-burst
bench-burst: install services ## A burst of 200 payments with Daraja at 2 s per call, and the inline peer
	@$(UV) run python -m benchmarks.burst

.PHONY: bench-smoke
bench-smoke: install services ## Every benchmark at tiny sizes, so none rots (figures not judged)
	@$(UV) run python -m benchmarks --quick
	@$(UV) run python -m benchmarks.scale --quick
	@$(UV) run python -m benchmarks.burst --quick
