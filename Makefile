# Two commands for a fresh machine (see README):
#   make run    install, migrate, load demo data, run web + Celery worker + beat
#   make test   install (dev extras, chromium), lint, run the whole test suite
#               against PostgreSQL and Redis (the local ones unless DATABASE_URL /
#               CELERY_BROKER_URL say otherwise; started if down)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# `make run` is the explicit development mode (COMMERCE_DEV=1, docs/deploy.md).
run: export COMMERCE_DEV ?= 1
run: export PORT ?= 8000
run: export SITE_URL ?= http://127.0.0.1:$(PORT)
run: install
	bash scripts/ensure-pango
	$(BIN)/python manage.py migrate --no-input -v 0
	@echo "Loading the demo data (a minute the first time)..."
	$(BIN)/python manage.py load_demo > /dev/null
	bash scripts/run-all

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/commerce
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0

test: install-dev lint
	bash scripts/ensure-chromium
	bash scripts/ensure-pango
	bash scripts/ensure-services
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	$(BIN)/pytest

# ruff, mypy, the import-linter contracts (apps depend one way, no cycles), and
# Django's deployment checks in production shape (no development mode).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy commerce customers subscriptions
	$(BIN)/lint-imports --no-cache
	env -u COMMERCE_DEV -u DEBUG COMMERCE_VAR_DIR="$$(mktemp -d)" \
	  SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  ALLOWED_HOSTS=billing.example.com CACHE_URL=redis://127.0.0.1:6379/1 \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING
