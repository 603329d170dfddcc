#!/usr/bin/env bash
# Issue 24's GPU check, one call: install the carried wheels, run bench.gpu_check, keep JSON + log in $OUT.
#
#   OUT=/tmp/gc bash bench/gpu_check.sh                          # on the GPU machine (wheels in .whl/)
#   OUT=/tmp/gc bash bench/gpu_check.sh --weights tiny --quick   # CPU dry run of the same path
#
# Extra arguments go to `python -m bench.gpu_check` (--budget SECONDS, --only STAGE,...).
set -uo pipefail
OUT="${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
PY="${PYTHON:-python3}"

if compgen -G ".whl/*.whl" >/dev/null && ! "$PY" -c "import diffusers" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed" | tee "$LOG"; exit 1; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

{
    date -u +"start %FT%TZ"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,temperature.gpu \
        --format=csv,noheader
    "$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, '· diffusers', diffusers.__version__, \
'· transformers', transformers.__version__, '· cuda', torch.cuda.is_available())"
    "$PY" -m bench.gpu_check --out "$OUT" "$@"
    echo "exit $?"
    date -u +"end %FT%TZ"
} 2>&1 | tee "$LOG"
