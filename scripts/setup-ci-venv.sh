#!/usr/bin/env bash
# A small cached venv for the CI-report tests: `junitparser` (a JUnit XML consumer, the parser
# several CI reporters build on) reads back what `--junit` writes. Lives outside the repo in
# ~/.cache/llama-tool/venv-ci; idempotent; prints the venv's python as its last line.
# scripts/test.sh calls it and exports LLAMA_TOOL_CI_PYTHON.
set -euo pipefail
VENV="${LLAMA_TOOL_CI_VENV:-$HOME/.cache/llama-tool/venv-ci}"
PY="$VENV/bin/python"
if ! "$PY" -c 'import junitparser' >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --disable-pip-version-check 'junitparser==5.0.3' >&2
fi
echo "$PY"
