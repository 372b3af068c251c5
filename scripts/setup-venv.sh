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
  # llama.cpp is built for this CPU's vector extensions, named explicitly rather than with
  # GGML_NATIVE: -march=native also turns on ggml's AMX matmul, which segfaults on the AMX
  # machines here (ggml_backend_amx_mul_mat, seen with llama-cpp-python 0.3.36). The wheel and
  # the venv's install are keyed by these flags, so a change rebuilds both once.
  if [ -z "${CMAKE_ARGS:-}" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    has() { [[ " $flags " == *" $1 "* ]]; }
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    for f in avx avx2 fma f16c; do
      if has "$f"; then CMAKE_ARGS+=" -DGGML_${f^^}=ON"; fi
    done
    if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
      CMAKE_ARGS+=" -DGGML_AVX512=ON"
      if has avx512vbmi; then CMAKE_ARGS+=" -DGGML_AVX512_VBMI=ON"; fi
      if has avx512_vnni; then CMAKE_ARGS+=" -DGGML_AVX512_VNNI=ON"; fi
      if has avx512_bf16; then CMAKE_ARGS+=" -DGGML_AVX512_BF16=ON"; fi
    fi
  fi
  key=$(echo "$LLAMA_PKG $CMAKE_ARGS" | md5sum | cut -c1-8)
  LWHEELS="$WHEELS/llama-$key"
  mkdir -p "$LWHEELS"
  if [ ! -e "$VENV/.llama-cpp-$key" ] || ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    if ! ls "$LWHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
      echo "building $LLAMA_PKG from source once (about 8 minutes): $CMAKE_ARGS" >&2
      CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV/bin/pip" wheel -q --no-cache-dir --no-deps -w "$LWHEELS" "$LLAMA_PKG" >&2
    fi
    "$VENV/bin/pip" install -q --force-reinstall --no-deps "$LWHEELS"/llama_cpp_python-0.3.36-*.whl >&2
    "$VENV/bin/pip" install -q diskcache jinja2 typing-extensions >&2
    rm -f "$VENV"/.llama-cpp-*
    touch "$VENV/.llama-cpp-$key"
  fi
fi
echo "$VENV/bin/python"
