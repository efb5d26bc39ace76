# storegw — the two commands: `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint venv mosquitto bench wheel clean model

# The virtualenv is refreshed whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "storegw needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { \
		echo "Creating the virtualenv failed: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,demo,inference]'
	@touch $(STAMP)

venv: $(STAMP)

# Tests need a real mosquitto broker; install it with apt when missing and we are root.
mosquitto:
	@if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing mosquitto and socat with apt"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto socat systemd shellcheck >/dev/null; \
			systemctl disable --now mosquitto >/dev/null 2>&1 || true; \
		else \
			echo "mosquitto is missing: install it (apt-get install mosquitto) and run make test again"; exit 1; \
		fi; \
	fi

demo: $(STAMP)
	$(BIN)/storegw demo

test: $(STAMP) mosquitto lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gateway drivers tests bench tools
	$(BIN)/ruff format --check gateway drivers tests bench tools
	$(BIN)/mypy
	$(BIN)/codespell gateway drivers tests bench tools docs models config README.md

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

wheel: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps -w dist .

model: $(STAMP)
	$(BIN)/python -m tools.stockout --out models/

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache
