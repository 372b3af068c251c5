#!/usr/bin/env bash
# Prompt-evaluation throughput of `llama-tool logits` against llama.cpp (llama-cpp-python)
# on the same GGUF files (a 7B-shaped synthetic model with a few layers, f16 and q4_k_m),
# same thread count. Our time is the whole forward pass including reading the weights layer
# by layer (what `check` pays), best of two runs (page cache warm); llama.cpp's is printed
# twice: evaluation only (best of two, model loaded and paged in) and the whole job (model
# load + that evaluation). Ratios are llama.cpp time / our time (> 1: we are faster).
#
#   scripts/bench-infer.sh [WORKDIR] [LAYERS] [N_TOKENS]
# Needs a release build (cargo build --release -p llama-tool) and the venv with
# llama-cpp-python (scripts/setup-venv.sh --llama).
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-$(mktemp -d)}"; LAYERS="${2:-2}"; N="${3:-128}"
mkdir -p "$W"
B="${CARGO_TARGET_DIR:-target}/release/llama-tool"
PY="${LLAMA_TOOL_PYTHON:-$(bash scripts/setup-venv.sh --llama | tail -1)}"
THREADS="${THREADS:-$(nproc)}"
export RAYON_NUM_THREADS="$THREADS"
TOKENS=$("$PY" -c "print(','.join(['1'] + [str((i * 7919) % 31000 + 259) for i in range($N - 1)]))")
M="$W/7b-l$LAYERS"
[ -d "$M" ] || "$B" synth --shape 7B --layers "$LAYERS" --seed 1 -o "$M" >/dev/null
[ -f "$M-f16.gguf" ] || "$B" convert "$M" --to gguf -o "$M-f16.gguf" >/dev/null
[ -f "$M-q4_k_m.gguf" ] || "$B" convert "$M" --to gguf --q4 -o "$M-q4_k_m.gguf" >/dev/null
echo "7B-shaped, $LAYERS layers, $N tokens, $THREADS threads, $(lscpu | sed -n 's/^Model name: *//p')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| file | llama-tool s | tok/s | llama.cpp eval s | llama.cpp load+eval s | ratio vs eval | ratio vs load+eval |"
echo "|---|---|---|---|---|---|---|"
for f in f16 q4_k_m; do
  ours1=$("$B" logits "$M-$f.gguf" --tokens "$TOKENS" --json)
  ours2=$("$B" logits "$M-$f.gguf" --tokens "$TOKENS" --json)
  theirs=$("$PY" tests/interop/bench_llama_cpp.py "$M-$f.gguf" "$TOKENS" "$THREADS")
  "$PY" - "$f" "$ours1" "$ours2" "$theirs" <<'PY'
import json, sys
f, o1, o2, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
ours = min(o1["seconds"], o2["seconds"])
whole = t["seconds"] + t["load_seconds"]
n = len(o1["tokens"])
print(f"| {f} | {ours:.2f} | {n / ours:.1f} | {t['seconds']:.2f} | {whole:.2f} | "
      f"{t['seconds'] / ours:.2f}x | {whole / ours:.2f}x |")
PY
done
