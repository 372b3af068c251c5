#!/usr/bin/env bash
# A CUDA 13.0 toolkit from PyPI wheels, enough to build `llama-tool --features cuda` on a
# machine without a system toolkit (and without a GPU: nothing here needs one).
#
#   eval "$(scripts/setup-cuda-toolkit.sh)"      # installs once (~1.2 GB), prints the env
#   cargo build --release -p llama-tool --features cuda
#
# What the build needs, and where it comes from:
# - nvcc (+ cicc/ptxas/crt headers, cccl): candle-kernels compiles its .cu files at build
#   time through cudaforge (reads CUDA_HOME/CUDA_PATH, NVCC, CUDA_COMPUTE_CAP).
# - cudarc's `nvcc --version` picks the CUDA API version (13.0 here).
# - libcudart, libcublas, libcublasLt, libcurand, libnvrtc to link against: candle-core 0.11
#   turns on cudarc's `dynamic-linking`, so these are DT_NEEDED entries of the binary and
#   must be found again at run time (LD_LIBRARY_PATH=$ROOT/lib64 or a system toolkit).
# - libcuda (the driver): no wheel ships it nor its link stub, so a stub is generated here
#   from the symbols cudarc binds (soname libcuda.so.1, bodies are empty). It is only
#   linked against; at run time the driver's real libcuda.so.1 is loaded instead. Never put
#   the stub's folder on LD_LIBRARY_PATH.
#
# Everything lives outside the repository: venv at $CACHE/cuda-venv, the toolkit root
# (symlinks + stub) at $CACHE/cuda-root. Progress goes to stderr, the env to stdout.
set -euo pipefail
CACHE="${LLAMA_TOOL_CACHE:-$HOME/.cache/llama-tool}"
VENV="$CACHE/cuda-venv"
ROOT="$CACHE/cuda-root"
# One toolkit release (13.0 update 2); nvcc's own helpers (crt, nvvm) must match it exactly,
# or ptxas rejects the PTX cicc writes ("Unsupported .version").
PINS=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)
PY="${PYTHON:-python3}"
exec 3>&1 1>&2

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}"
CU="$("$VENV/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$CU/bin/nvcc" ] || { echo "setup-cuda-toolkit: no nvcc at $CU/bin/nvcc" >&2; exit 2; }

# The root: bin/nvvm/include point into the wheels (nvcc finds its helpers relative to its
# real path); lib64 holds unversioned .so links, which the wheels lack and `-lcublas` needs.
rm -rf "$ROOT.tmp"
mkdir -p "$ROOT.tmp/lib64/stubs"
ln -s "$CU/bin" "$ROOT.tmp/bin"
ln -s "$CU/nvvm" "$ROOT.tmp/nvvm"
ln -s "$CU/include" "$ROOT.tmp/include"
for f in "$CU"/lib/*.so.* "$CU"/lib/*.a; do
  ln -s "$f" "$ROOT.tmp/lib64/$(basename "$f")"
done
for lib in cudart cublas cublasLt curand nvrtc; do
  so=$(cd "$CU/lib" && ls lib$lib.so.* | grep -E "^lib$lib\.so\.[0-9]+$" | head -1)
  [ -n "$so" ] || { echo "setup-cuda-toolkit: lib$lib.so.N missing in $CU/lib" >&2; exit 2; }
  ln -s "$CU/lib/$so" "$ROOT.tmp/lib64/lib$lib.so"
done

# libcuda link stub: every cu* function cudarc declares (a superset across CUDA versions).
CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -1)
if [ -z "$CUDARC" ]; then
  echo "setup-cuda-toolkit: cudarc sources not found; run \`cargo fetch\` in the repo first" >&2
  exit 2
fi
grep -ho 'pub unsafe fn cu[A-Za-z0-9_]*' "$CUDARC/src/driver/sys/mod.rs" | awk '{print $4}' | sort -u |
  sed 's/.*/void &(void) {}/' >"$ROOT.tmp/lib64/stubs/libcuda-stub.c"
${CC:-cc} -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT.tmp/lib64/stubs/libcuda.so" \
  "$ROOT.tmp/lib64/stubs/libcuda-stub.c"
rm -rf "$ROOT"
mv "$ROOT.tmp" "$ROOT"

"$ROOT/bin/nvcc" --version | tail -1
cat >&3 <<EOF
export CUDA_ROOT="$ROOT" CUDA_PATH="$ROOT" CUDA_HOME="$ROOT" CUDA_TOOLKIT_ROOT_DIR="$ROOT"
export PATH="$ROOT/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$ROOT/lib64:$ROOT/lib64/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
