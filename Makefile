# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# CPU build of torch that lies on this machine's disk; on a GPU machine set TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test test-fast bench fuzz soak install browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) app.py

# Debian's chromium for the browser test; the test skips with a reason if it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: could not install chromium; the browser test will be skipped"; }

# The whole suite: tests/unit, tests/integration, tests/live, tests/browser, tests/slow, on one worker per
# core (each takes a share of the tests in order, so a file's tests mostly stay together and start its
# live studio once; a worker that runs out takes over half of another's remaining tests).
test: $(STAMP) browser
	$(PY) -m pytest -q -n auto --dist worksteal

# The edit-test loop: in-process unit tests only (under a minute on 2 cores).
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

bench: $(STAMP)
	$(PY) -m bench.run --weights tiny --json bench/results/latest.json

# Nightly-size fuzzing of the image/mask loader (10,000 cases).
fuzz: $(STAMP)
	FUZZ_CASES=5000 $(PY) -m pytest -q tests/unit/test_fuzz_imaging.py

# Full soak: 8 concurrent clients x 25 rounds against a live classic studio.
soak: $(STAMP)
	SOAK_ROUNDS=25 $(PY) -m pytest -q -s tests/slow/test_soak_live.py

clean:
	rm -rf $(VENV) .pytest_cache
