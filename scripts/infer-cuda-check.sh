#!/usr/bin/env bash
# CPU vs CUDA logits of llama-tool, on a machine with an NVIDIA GPU.
#
# Needs either a CUDA build of llama-tool in LLAMA_TOOL_BIN (built elsewhere, see
# docs/CUDA.md; the GPU machine then needs no Rust toolchain), or the CUDA toolkit (nvcc on
# PATH; candle's kernels are compiled at build time), a Rust toolchain and the crates (run
# `cargo fetch` beforehand where there is no network) to build it here. Also python3.
# The binary links libcudart/libcublas/libcublasLt/libcurand/libnvrtc (CUDA 13): where
# `ldd` finds none of them, the script adds python3's nvidia/cu13/lib (the wheels PyTorch
# installs) to LD_LIBRARY_PATH. Then for a tiny fixture model and a 7B-shaped synthetic model
# (2 layers, f16 and q4_k_m GGUF) runs `check M M --device cpu --cand-device cuda`
# (the same model on both devices must agree: mean KLD and top-1 thresholds below) and
# times `logits` on each device. Prints a Markdown table for docs/PERFORMANCE.md.
#
#   scripts/infer-cuda-check.sh [WORKDIR]      (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-$(mktemp -d)}"
mkdir -p "$W"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ -n "${LLAMA_TOOL_BIN:-}" ]; then
  B="$LLAMA_TOOL_BIN"
else
  nvcc --version | tail -1
  cargo build --release -p llama-tool --features cuda
  B="${CARGO_TARGET_DIR:-target}/release/llama-tool"
fi
if ldd "$B" | grep 'not found' >/dev/null; then
  CU_LIB=$(python3 -c 'import glob, nvidia; print(*[d for p in nvidia.__path__ for d in glob.glob(p + "/cu13/lib")][:1])' 2>/dev/null || true)
  [ -n "$CU_LIB" ] && export LD_LIBRARY_PATH="$CU_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if ldd "$B" | grep 'not found'; then
  echo "infer-cuda-check: $B needs the libraries above (CUDA 13 runtime); set LD_LIBRARY_PATH" >&2
  exit 2
fi
N_TOKENS="${N_TOKENS:-256}"
TOKENS=$(python3 -c "print(','.join(['1'] + [str((i * 7919) % 31000 + 259) for i in range($N_TOKENS - 1)]))")
TINY_TOKENS=$(python3 -c "print(','.join(['1'] + [str((i * 37) % 250 + 259) for i in range(63)]))")

[ -d "$W/tiny" ] || "$B" synth --shape tiny --seed 1 -o "$W/tiny" >/dev/null
[ -d "$W/7b" ] || "$B" synth --shape 7B --layers 2 --seed 1 -o "$W/7b" >/dev/null
[ -f "$W/7b-f16.gguf" ] || "$B" convert "$W/7b" --to gguf -o "$W/7b-f16.gguf" >/dev/null
[ -f "$W/7b-q4_k_m.gguf" ] || "$B" convert "$W/7b" --to gguf --q4 -o "$W/7b-q4_k_m.gguf" >/dev/null

echo "| model | tokens | CPU s | CUDA s | CPU tok/s | CUDA tok/s | mean KLD cpu/cuda | top-1 |"
echo "|---|---|---|---|---|---|---|---|"
for m in tiny 7b 7b-f16.gguf 7b-q4_k_m.gguf; do
  t="$TOKENS"; [ "$m" = tiny ] && t="$TINY_TOKENS"
  cpu=$("$B" logits "$W/$m" --tokens "$t" --json --device cpu)
  gpu=$("$B" logits "$W/$m" --tokens "$t" --json --device cuda)
  chk=$("$B" check "$W/$m" "$W/$m" --tokens "$t" --json --device cpu --cand-device cuda \
        --max-kld 1e-4 --min-top1 99 || true)
  python3 - "$m" "$cpu" "$gpu" "$chk" <<'PY'
import json, sys
m, cpu, gpu, chk = sys.argv[1], *map(json.loads, sys.argv[2:])
n = len(cpu["tokens"])
print(f"| {m} | {n} | {cpu['seconds']:.2f} | {gpu['seconds']:.2f} | {cpu['tokens_per_second']:.1f} | "
      f"{gpu['tokens_per_second']:.1f} | {chk['metrics']['kld_mean']:.2e} | {100 * chk['metrics']['top1_agreement']:.1f}% "
      f"{'PASS' if chk['pass'] else 'FAIL'} |")
PY
done
