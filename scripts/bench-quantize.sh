#!/usr/bin/env bash
# Benchmark (not a test): llama-tool quantize vs llama.cpp's llama_model_quantize on the same
# f16 GGUF of a 7B-shaped synthetic LLaMA (dim 4096, hidden 11008, vocab 32000, LAYERS
# layers, random weights), same thread count, for Q8_0, Q4_0 and Q4_K_M. Prints a markdown
# table with the ratio llama.cpp time / llama-tool time (> 1 means llama-tool is faster)
# and checks that both outputs are byte-identical.
#   scripts/bench-quantize.sh [THREADS] [LAYERS] [ROUNDS]   (LLAMA_TOOL_BIN=path skips the build)
# The machine is shared: run it when idle, or rerun; the best of ROUNDS runs is reported.
set -euo pipefail
THREADS="${1:-$(nproc)}"
LAYERS="${2:-2}"
ROUNDS="${3:-2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup-venv.sh" --llama | tail -1)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# LLAMA_TOOL_BIN: a release binary already built (skips the build).
if [ -n "${LLAMA_TOOL_BIN:-}" ]; then
  BIN="$LLAMA_TOOL_BIN"
else
  cargo build --release -q -p llama-tool --manifest-path "$ROOT/Cargo.toml"
  BIN="$CARGO_TARGET_DIR/release/llama-tool"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FX="$WORK/llama7b-shape-f16.gguf"
"$PY" "$ROOT/tests/interop/make_llama_gguf.py" "$FX" --dim 4096 --hidden 11008 \
  --layers "$LAYERS" --heads 32 --vocab 32000 --seed 1
PARAMS=$("$PY" -c "
from gguf import GGUFReader
import numpy as np
print(sum(int(np.prod(t.shape)) for t in GGUFReader('$FX').tensors))")
echo "fixture: $(du -h "$FX" | cut -f1), $PARAMS weights, $THREADS threads, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| type | llama.cpp s | llama-tool s | ratio (llama.cpp / llama-tool) | llama-tool Mweights/s | identical |"
echo "|---|---|---|---|---|---|"
for T in Q8_0 Q4_0 Q4_K_M; do
  best_theirs=""; best_ours=""
  for _ in $(seq "$ROUNDS"); do
    theirs=$("$PY" "$ROOT/tests/interop/llama_quantize.py" quantize "$FX" "$WORK" --threads "$THREADS" "$T" 2>/dev/null \
      | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$T'])")
    ours=$("$BIN" quantize "$FX" "$WORK/ours-$T.gguf" "$T" -j "$THREADS" --force --json \
      | "$PY" -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
    best_theirs=$("$PY" -c "print(min(x for x in [$theirs, ${best_theirs:-1e9}]))")
    best_ours=$("$PY" -c "print(min(x for x in [$ours, ${best_ours:-1e9}]))")
  done
  same=$(cmp -s "$WORK/ours-$T.gguf" "$WORK/$T.gguf" && echo yes || echo NO)
  "$PY" -c "print('| $T | %.2f | %.2f | %.2fx | %.0f | $same |' % ($best_theirs, $best_ours, $best_theirs / $best_ours, $PARAMS / $best_ours / 1e6))"
  rm -f "$WORK/ours-$T.gguf" "$WORK/$T.gguf"
done
