#!/usr/bin/env bash
# Fetches (once) llama.cpp's own Hugging Face -> GGUF converter, `convert_hf_to_gguf.py`, from
# the llama-cpp-python 0.3.36 source distribution (the llama.cpp revision the interop venv's
# llama_cpp is built from), and unpacks it with the `conversion` package it imports and its
# vendored `gguf-py` (which it puts on sys.path itself) under
#   ~/.cache/llama-tool/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp/
# Idempotent and cached: after the first run it needs no network. Prints the converter's path
# on its last line; run it with the interop venv's python (torch, sentencepiece, numpy).
set -euo pipefail
VERSION=0.3.36
SDIST_DIR="${LLAMA_TOOL_SDIST:-$HOME/.cache/llama-tool/sdist}"
PY="${LLAMA_TOOL_PYTHON:-$HOME/.cache/llama-tool/venv/bin/python}"
TARBALL="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"
ROOT="$SDIST_DIR/llama_cpp_python-$VERSION/vendor/llama.cpp"
CONVERTER="$ROOT/convert_hf_to_gguf.py"

mkdir -p "$SDIST_DIR"
exec 9>"$SDIST_DIR/.fetch.lock"
flock 9
if [ ! -f "$CONVERTER" ] || [ ! -f "$ROOT/gguf-py/gguf/__init__.py" ] || [ ! -f "$ROOT/conversion/__init__.py" ]; then
  if [ ! -f "$TARBALL" ]; then
    if [ ! -x "$PY" ]; then
      echo "fetch-llama-cpp-converter.sh: no python at $PY: run scripts/setup-venv.sh first" >&2
      exit 2
    fi
    # --no-binary for the package itself only: its build backend (scikit-build-core, cmake)
    # may come as wheels, which pip needs to read the sdist's metadata.
    "$PY" -m pip download -q --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$VERSION" -d "$SDIST_DIR" >&2
  fi
  tar -xzf "$TARBALL" -C "$SDIST_DIR" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/gguf-py" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/conversion"
fi
echo "$CONVERTER"
