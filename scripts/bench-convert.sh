#!/usr/bin/env bash
# Benchmark of `llama-tool convert` (not a test). In one run, on the same synthetic 7B-shaped
# checkpoint (4 layers, f16, ~2.1 GB):
#   1. Meta -> GGUF f16 time vs `cp` of the same bytes
#   2. Meta -> HF time and peak RSS vs transformers 4.40.2's convert_llama_weights_to_hf.py
#   3. our peak RSS converting a 65B-shaped thin model (2 layers, 8 shards) to GGUF
# Prints ratios and appends a dated block to docs/PERFORMANCE.md (## convert).
# Usage: scripts/bench-convert.sh [WORKDIR]   (needs ~25 GB free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK="${1:-$(mktemp -d /tmp/llama-bench-convert.XXXX)}"
mkdir -p "$WORK"
cargo build --release -q -p llama-tool
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-tool"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# transformers 4.40.2 ships convert_llama_weights_to_hf.py; newer wheels do not.
BVENV="${LLAMA_TOOL_BENCH_VENV:-$HOME/.cache/llama-tool/bench-venv-tf440}"
if [ ! -x "$BVENV/bin/python" ]; then
  python3 -m venv "$BVENV"
  "$BVENV/bin/pip" install -q transformers==4.40.2 torch==2.15.0 sentencepiece==0.2.3 protobuf==7.36.2 accelerate==1.15.0 "numpy<2.5"
fi
HFCONV=$("$BVENV/bin/python" -c 'import transformers, os; print(os.path.join(os.path.dirname(transformers.__file__), "models/llama/convert_llama_weights_to_hf.py"))')

peak_kb() { awk '/Maximum resident set size/ {print $6}' "$1"; }
secs() { awk '/Elapsed \(wall clock\)/ {n=split($8,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }

rm -rf "$WORK/src" && mkdir -p "$WORK/src"
"$BIN" synth --shape 7B --layers 4 --mp 1 -o "$WORK/src/7B" > /dev/null
mv "$WORK/src/7B/tokenizer.model" "$WORK/src/tokenizer.model"
SRC="$WORK/src/7B"
BYTES=$(stat -c %s "$SRC/consolidated.00.pth")
cat "$SRC/consolidated.00.pth" > /dev/null  # warm the page cache for everyone

# 1. GGUF f16 vs cp, alternating, best of 3 each (the machine is shared: take the least
# disturbed run of each). Both write a new file of about the same size into $WORK.
CP_S=""; GGUF_S=""
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b + 0 < a + 0) print b; else print a }'; }
for _ in 1 2 3; do
  rm -f "$WORK/cp.bin" "$WORK/out.gguf"; sync
  /usr/bin/time -v cp "$SRC/consolidated.00.pth" "$WORK/cp.bin" 2> "$WORK/cp.time"
  rm -f "$WORK/cp.bin"; sync
  /usr/bin/time -v "$BIN" convert "$SRC" -o "$WORK/out.gguf" --no-manifest > /dev/null 2> "$WORK/gguf.time"
  rm -f "$WORK/out.gguf"
  CP_S=$(min "$CP_S" "$(secs "$WORK/cp.time")"); GGUF_S=$(min "$GGUF_S" "$(secs "$WORK/gguf.time")")
done
GGUF_KB=$(peak_kb "$WORK/gguf.time")

# 2. HF: ours vs transformers
rm -rf "$WORK/hf_ours" "$WORK/hf_tf"
/usr/bin/time -v "$BIN" convert "$SRC" --to safetensors -o "$WORK/hf_ours" --no-manifest > /dev/null 2> "$WORK/hf_ours.time"
rm -rf "$WORK/hf_ours"
/usr/bin/time -v "$BVENV/bin/python" "$HFCONV" --input_dir "$WORK/src" --model_size 7B --output_dir "$WORK/hf_tf" --safe_serialization true > "$WORK/hf_tf.log" 2> "$WORK/hf_tf.time" || { tail -5 "$WORK/hf_tf.log" "$WORK/hf_tf.time"; echo "transformers converter failed"; }
rm -rf "$WORK/hf_tf"
HFO_S=$(secs "$WORK/hf_ours.time"); HFT_S=$(secs "$WORK/hf_tf.time")
HFO_KB=$(peak_kb "$WORK/hf_ours.time"); HFT_KB=$(peak_kb "$WORK/hf_tf.time")

# 3. 65B-shaped thin model RSS
rm -rf "$WORK/65b" "$WORK/65b.gguf"
"$BIN" synth --shape 65B --layers 2 --mp 8 -o "$WORK/65b" > /dev/null
/usr/bin/time -v "$BIN" convert "$WORK/65b" -o "$WORK/65b.gguf" --no-manifest > /dev/null 2> "$WORK/65b.time"
rm -f "$WORK/65b.gguf"
/usr/bin/time -v "$BIN" convert "$WORK/65b" --to safetensors -o "$WORK/65b_hf" --no-manifest > /dev/null 2> "$WORK/65b_hf.time"
rm -rf "$WORK/65b_hf"
/usr/bin/time -v "$BIN" reshard "$WORK/65b" --mp 1 -o "$WORK/65b_mp1" --no-manifest > /dev/null 2> "$WORK/65b_mp1.time"
rm -rf "$WORK/65b_mp1"
B65=$(du -sb "$WORK/65b" | cut -f1)
B65_KB=$(peak_kb "$WORK/65b.time"); B65_S=$(secs "$WORK/65b.time")
B65H_KB=$(peak_kb "$WORK/65b_hf.time"); B65H_S=$(secs "$WORK/65b_hf.time")
B65M_KB=$(peak_kb "$WORK/65b_mp1.time"); B65M_S=$(secs "$WORK/65b_mp1.time")
rm -rf "$WORK/65b"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
REPORT=$(cat <<EOT

### $(date -u +%Y-%m-%d) convert benchmark ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))
Same synthetic 7B-shaped checkpoint (4 layers, f16, $((BYTES / 1000000)) MB), page cache warm.
Shared machine: load average $LOAD_BEFORE before, $LOAD_AFTER after. GGUF and cp: best of 3.

| job | ours | peer | ratio (peer time / ours, i.e. >1 = we are faster) |
|---|---|---|---|
| Meta -> GGUF f16 vs \`cp\` of the same bytes | ${GGUF_S} s (peak RSS $((GGUF_KB / 1024)) MiB) | cp ${CP_S} s | $(ratio "$CP_S" "$GGUF_S")x of cp's speed |
| Meta -> HF safetensors time | ${HFO_S} s | transformers 4.40.2 ${HFT_S} s | $(ratio "$HFT_S" "$HFO_S")x faster |
| Meta -> HF peak RSS | $((HFO_KB / 1024)) MiB | $((HFT_KB / 1024)) MiB | $(ratio "$HFO_KB" "$HFT_KB") of its RSS |
| 65B-shaped, 2 layers, 8 shards ($((B65 / 1000000)) MB) -> GGUF | ${B65_S} s, peak RSS $((B65_KB / 1024)) MiB | - | - |
| same -> HF safetensors | ${B65H_S} s, peak RSS $((B65H_KB / 1024)) MiB | - | - |
| same -> reshard to 1 shard | ${B65M_S} s, peak RSS $((B65M_KB / 1024)) MiB | - | - |
EOT
)
echo "$REPORT"
# Append the block at the end of the `## convert` section (created if missing), not after
# whatever section happens to be last.
REPORT="$REPORT" python3 - docs/PERFORMANCE.md <<'PY'
import os, sys
path = sys.argv[1]
lines = open(path).read().splitlines() if os.path.exists(path) else ["# Performance"]
block = os.environ["REPORT"].splitlines()
try:
    start = lines.index("## convert")
except ValueError:
    lines += ["", "## convert"]
    start = len(lines) - 1
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
while end > start + 1 and lines[end - 1] == "":
    end -= 1
lines[end:end] = block + ([""] if end < len(lines) else [])
open(path, "w").write("\n".join(lines) + "\n")
PY
