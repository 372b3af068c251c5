#!/usr/bin/env bash
# Creates (once) the cached Python venv that the interop tests use, outside the repo.
#   scripts/setup-venv.sh            base packages: torch, numpy, gguf, sentencepiece, safetensors, transformers
#   scripts/setup-venv.sh --llama    also llama-cpp-python (built from source once, ~8 min; wheel cached)
# Prints the venv's python path on its last line. Versions are pinned: bump them here only.
set -euo pipefail
VENV="${LLAMA_TOOL_VENV:-$HOME/.cache/llama-tool/venv}"
WHEELS="${LLAMA_TOOL_WHEELS:-$HOME/.cache/llama-tool/wheels}"
BASE_PKGS=(numpy==2.4.6 torch==2.15.0 gguf==0.19.0 sentencepiece==0.2.3 safetensors==0.8.0 transformers==5.23.0 protobuf==7.36.2)
LLAMA_PKG=llama-cpp-python==0.3.36
STAMP="$VENV/.llama-tool-base-$(echo "${BASE_PKGS[*]}" | md5sum | cut -c1-8)"

mkdir -p "$(dirname "$VENV")" "$WHEELS"
exec 9>"$(dirname "$VENV")/.setup.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip >&2
fi
if [ ! -e "$STAMP" ]; then
  "$VENV/bin/pip" install -q "${BASE_PKGS[@]}" >&2
  touch "$STAMP"
fi
if [ "${1:-}" = "--llama" ]; then
  if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
      echo "building $LLAMA_PKG from source once (about 8 minutes)..." >&2
      CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=ON}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV/bin/pip" wheel -q --no-deps -w "$WHEELS" "$LLAMA_PKG" >&2
    fi
    "$VENV/bin/pip" install -q "$WHEELS"/llama_cpp_python-0.3.36-*.whl diskcache jinja2 typing-extensions >&2
  fi
fi
echo "$VENV/bin/python"
