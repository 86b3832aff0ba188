# Two commands do everything on a fresh machine: `make serve` and `make test`.
# Both create the virtual environment (.venv) from requirements/lock.txt on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# Debian packages: offline data for the examples, a browser for the page checks.
DEBIAN_PACKAGES := dataset-fashion-mnist chromium fonts-dejavu-core
export NO_MKDOCS_2_WARNING := 1
# mkdocs-gallery imports a name mkdocs deprecated; the warning is not ours to fix.
export PYTHONWARNINGS := ignore:warning_filter:DeprecationWarning

.PHONY: help env system-deps docs serve test test-benchmarks lint format lock clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The site's math and diagram renderers (KaTeX, Mermaid), served by the site itself.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "Installing Debian's npm"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq npm; \
	}
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

env: $(VENV)/.installed node_modules/.installed system-deps  ## Create .venv, node_modules and install the Debian packages the examples need.

system-deps:  ## Install the Debian packages (offline Fashion-MNIST, Chromium) when missing.
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "Installing Debian packages: $$missing"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

docs: env  ## Build the site into site/, executing every example.
	$(BIN)/mkdocs build --strict

serve: env  ## Build the site with every example executed and serve it on http://$(HOST).
	$(BIN)/mkdocs serve --strict --dev-addr $(HOST)

test: env  ## Lint, then run the test-suite (includes a quick build of the site).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n auto --dist loadgroup

test-benchmarks: env  ## Run every benchmark script with tiny settings (CI runs it after `test`).
	$(BIN)/python -m pytest -p no:xdist -m benchmarks tests/test_benchmarks.py

lint: env  ## Lint and check formatting.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: env  ## Fix lint where safe and format the code.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(VENV)/.installed  ## Re-pin requirements/lock.txt from the current environment.
	{ echo "# Exact versions for CI and the docs build (Python 3.11, Linux x86_64, CPU)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^gallery-lib'; } > requirements/lock.txt

clean:  ## Remove the built site and the generated gallery (keeps .venv and node_modules).
	rm -rf site docs/generated
