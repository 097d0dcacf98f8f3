# `make run` opens the app, `make test` runs the tests; both set everything up first, idempotently.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.squeezelens-installed

.PHONY: run test test-packaging installer setup system-deps lint bench clean

run: setup
	$(VENV)/bin/squeezelens

# pytest includes the import-linter contracts (tests/test_import_contracts.py); then ruff, and mypy over
# api/ and core/ (scripts/typecheck.py: zero errors; `$(PY) scripts/typecheck.py --gui` adds gui/).
test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest
	$(VENV)/bin/ruff check .
	$(PY) scripts/typecheck.py

# Builds the Linux CPU bundle, .tar.gz and .deb (build/venv-cpu, then PyInstaller: about 3 min here)
# and tests the frozen app; CI runs it after `make test`. docs/PACKAGING.md has the other platforms.
test-packaging: setup
	$(PY) -m pytest -m packaging tests/packaging

# The installers for this platform (FLAVOUR=cpu|cuda; docs/PACKAGING.md).
FLAVOUR ?= cpu
installer: setup
	$(PY) packaging/build.py --flavour $(FLAVOUR)

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) scripts/lint_imports.py
	$(PY) scripts/typecheck.py

bench: setup
	$(PY) bench/fast_decode.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
