#!/usr/bin/env bash
# The declared floors, for real: a fresh venv with every runtime dependency at the lowest version
# requirements.txt allows (">=X" installed as "==X"), then the tiny-profile tests on it.
# Not part of `make test` (it downloads a few GB: torch's floor comes with its CUDA libraries).
#   bash bench/floors.sh [VENV_DIR]          (default: .venv-floors)
#   FLOORS_TESTS="tests/integration/test_ac_weights.py" bash bench/floors.sh   (a narrower run)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-floors}
PYTHON=${PYTHON:-python3}
TESTS=${FLOORS_TESTS:-"tests/integration/test_ac_weights.py tests/integration/test_ac_csm_asea.py tests/integration/test_ac_sga.py tests/integration/test_ac_ip_adapter.py tests/integration/test_ac_inpainting.py tests/integration/test_ac_pipeline.py tests/integration/test_ac_modes.py tests/integration/test_train.py tests/integration/test_hub.py"}

pins=$(grep -v '^\s*#' requirements.txt | sed -n 's/^\([A-Za-z0-9_.-]*\)>=\([0-9.]*\).*/\1==\2/p')
# test tools (not floors): pytest and friends, and datasets for the hub double's fixtures
if [ ! -f "$VENV/.floors" ] || [ "$(cat "$VENV/.floors")" != "$pins" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # shellcheck disable=SC2086
  PIP_CONSTRAINT= "$VENV/bin/python" -m pip install -q $pins pytest pytest-timeout hypothesis psutil datasets "pyarrow<20"
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  echo "$pins" > "$VENV/.floors"
fi
echo "== installed (floors) =="
"$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
  | grep -iE '^(torch|diffusers|transformers|accelerate|safetensors|huggingface.hub|tokenizers|numpy|pillow|opencv-python-headless|gradio|gradio.client)=='
echo "== tests: $TESTS =="
# shellcheck disable=SC2086
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONPATH=$PWD "$VENV/bin/python" -m pytest -q -m "not slow and not browser" \
  -p no:cacheprovider $TESTS
