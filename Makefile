# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (all tests);
# `make ui` shows the settings pages in the browser (sandbox + ccm-mail serve, until Ctrl+C).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test ui bench install clean

install: $(BIN)/ccm-mail

$(BIN)/ccm-mail: pyproject.toml hookspecs/pyproject.toml $(wildcard plugins/*/pyproject.toml)
	bash scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"

demo: install
	bash scripts/demo.sh "$(VENV)"

test: install
	bash scripts/test.sh "$(VENV)"

ui: install
	bash scripts/ui.sh "$(VENV)"

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-run
