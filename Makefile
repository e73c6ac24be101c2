# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser demo test test-fast lint bench dist docs clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/evalkit run configs/demo.yaml
	$(VENV)/bin/evalkit report runs/demo -o runs/demo/report.html

# Debian chromium + chromium-driver for the real-browser listening tests (skipped, with the reason, without them)
browser:
	@bash scripts/install_browser.sh

test: setup browser
	$(PY) -m pytest -q

# The inner loop: everything not marked slow (no browser needed)
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: setup
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Wheel and sdist of the distribution codec-evalkit into dist/ (offline: setuptools and wheel from the venv)
dist: setup
	$(PY) -m build --no-isolation --outdir dist .

# the documentation site (mkdocs, Material theme) into site/; reference pages are generated from the code
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache build dist site
