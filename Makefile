# The two commands a newcomer needs (see README):
#   make demo   set everything up, then run the offline demo end to end
#   make test   set everything up, then run the whole test suite (tutorials included)
# Both create .venv and install into it when needed; nothing else is required.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# Every dependency, pinned with hashes, for Python 3.10 and later (`make lock` regenerates it).
LOCK    = requirements-lock.txt
# The tutorials and example notebooks are documentation, run as tests in real kernels.
NBVAL   = --nbval --nbval-current-env --nbval-cell-timeout 120 --nbval-sanitize-with tutorials/sanitize.cfg

.PHONY: demo test test-faults bench lab clean lock

$(BIN)/python:
	@echo "Creating $(VENV) (first run only)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What CI tests is what users get: every package from the lock, each file checked against its
# hash, nothing else (--no-deps); then the project itself, editable and without dependencies
# (hash checking cannot cover `-e .`).  `pip check` fails when pyproject.toml names a
# dependency the lock lacks: run `make lock`.
# pip prints each package as it installs it: the first run takes a few minutes, and shows it is working.
$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	@echo "Installing llmgine-nb's dependencies into $(VENV) from $(LOCK) (about 200 packages; only when they change)..."
	$(BIN)/python -m pip install --progress-bar on --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "$(LOCK) is missing a dependency of pyproject.toml: run 'make lock'"; exit 1; }
	touch $(STAMP)

# Regenerate the lock on purpose, after changing dependencies in pyproject.toml, and review
# the diff like code: a new release of anything arrives only this way.  One lock covers
# Python 3.10+ (--universal); hatchling and editables (its editable builds) are in it
# because the project builds without isolation.
lock: $(BIN)/python
	$(BIN)/python -m uv --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet uv
	printf 'hatchling>=1.21\neditables>=0.3\n' | $(BIN)/python -m uv pip compile pyproject.toml - --all-extras \
		--generate-hashes --universal --python-version 3.10 --custom-compile-command 'make lock' \
		--quiet -o $(LOCK)

demo: $(STAMP)
	$(BIN)/python -m llmgine_nb.demo

test: $(STAMP)
	$(BIN)/python -m ruff check llmgine_nb tests benchmarks
	$(BIN)/python -m mypy
	@# The browser tools need root for apt-get; elsewhere that test is skipped (never in CI).
	bash .ci/install-browser.sh $(VENV) || [ -z "$$CI" ]
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest $(NBVAL) tutorials notebooks

# The fault tests (worker processes killed, Redis restarted, 3 workers x 300 sessions), each run
# FAULT_REPEAT times: a fault that shows one run in ten shows here.  Needs Redis on 127.0.0.1:6379
# and redis-server on PATH (the restart test starts its own).
FAULT_REPEAT ?= 10
test-faults: $(STAMP)
	@for run in $$(seq $(FAULT_REPEAT)); do \
		echo "fault tests, run $$run of $(FAULT_REPEAT)"; \
		$(BIN)/python -m pytest -q -m faults -p no:cacheprovider tests/test_faults_*.py || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --json benchmarks/results.json

lab: $(STAMP)
	$(BIN)/jupyter lab tutorials/

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts benchmarks/results.json
