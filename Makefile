# The two commands a newcomer needs (see README):
#   make demo   set everything up, then run the offline demo end to end
#   make test   set everything up, then run the whole test suite (tutorials included)
# Both create .venv and install into it when needed; nothing else is required.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# The tutorials and example notebooks are documentation, run as tests in real kernels.
NBVAL   = --nbval --nbval-current-env --nbval-cell-timeout 120 --nbval-sanitize-with tutorials/sanitize.cfg

.PHONY: demo test bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m llmgine_nb.demo

test: $(STAMP)
	@# The browser tools need root for apt-get; elsewhere that test is skipped (never in CI).
	bash .ci/install-browser.sh $(VENV) || [ -z "$$CI" ]
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest $(NBVAL) tutorials notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --json benchmarks/results.json

lab: $(STAMP)
	$(BIN)/jupyter lab tutorials/

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts benchmarks/results.json
