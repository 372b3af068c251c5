#!/usr/bin/env bash
# The benchmark of issue 12 (not a test): one script, one run, every ratio against its peer on
# the same input, plus the peak RSS of each default-flag command on a 65B-shaped checkpoint.
#
#   A. 7B-shaped Meta checkpoint (4 layers, f16, ~2.1 GB):
#      convert -> GGUF f16 with the default sha256 manifest vs `cp` of the same bytes (and the
#      same without the manifest); verify of that manifest vs `sha256sum -c`; verify of the
#      Meta folder's checklist.chk vs `md5sum -c`; Meta -> HF vs transformers 4.40.2's
#      convert_llama_weights_to_hf.py (time and peak RSS; its venv is built on first use,
#      skipped with BENCH_SKIP_TRANSFORMERS=1).
#   B. quantize Q8_0 / Q4_0 / Q4_K_M vs llama.cpp's llama_model_quantize (llama-cpp-python),
#      equal threads, same 7B-shaped 2-layer f16 GGUF; outputs must be byte-identical.
#   C. prompt evaluation: `logits` vs llama.cpp (llama-cpp-python) on the same 7B-shaped
#      2-layer GGUF files (f16, q4_k_m), 128 tokens, equal threads, whole job each
#      (our process wall time, loading included, vs llama.cpp's load + eval).
#   D. 65B-shaped checkpoint (`synth --shape 65B --layers 2 --mp 8`, 4.3 GB): peak RSS
#      (/usr/bin/time -v, mapped file pages count) of convert (gguf, safetensors, pth),
#      reshard, verify (-j 1 and default), manifest (sha256sums, json), quantize, download
#      (from a loopback HTTP server) and logits, all with default flags.
#
# Usage: scripts/bench.sh [WORKDIR]    (~25 GB free disk; THREADS=N to change thread counts)
# Prints markdown tables; paste them into docs/PERFORMANCE.md with the date, machine and load.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK="${1:-$(mktemp -d /tmp/llama-bench.XXXX)}"
mkdir -p "$WORK"
THREADS="${THREADS:-$(nproc)}"
PARTS="${BENCH_PARTS:-ABCD}"   # e.g. BENCH_PARTS=AD runs only parts A and D
[ "${BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release -q -p llama-tool
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-tool"
PY="${LLAMA_TOOL_PYTHON:-$(bash scripts/setup-venv.sh --llama | tail -1)}"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }

peak_mib() { awk '/Maximum resident set size/ {printf "%d", $6 / 1024}' "$1"; }
secs() { awk '/Elapsed \(wall clock\)/ {n=split($8,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b + 0 < a + 0) print b; else print a }'; }
timed() { local out="$1"; shift; /usr/bin/time -v "$@" > "$out.log" 2> "$out.time"; }

echo "# llama-tool bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GB RAM"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); threads: $THREADS; commit $(git rev-parse --short HEAD)"

# ---------------------------------------------------------------- A. convert, verify
if [[ $PARTS == *A* ]]; then
A="$WORK/a"
rm -rf "$A" && mkdir -p "$A/src"
"$BIN" synth --shape 7B --layers 4 --mp 1 -o "$A/src/7B" > /dev/null
mv "$A/src/7B/tokenizer.model" "$A/src/tokenizer.model"
SRC="$A/src/7B"
BYTES=$(stat -c %s "$SRC/consolidated.00.pth")
cat "$SRC/consolidated.00.pth" > /dev/null
CP_S=""; G_S=""; GN_S=""
for _ in 1 2; do
  rm -f "$A/cp.bin" "$A/out.gguf" "$A/out.gguf.sha256"; sync
  timed "$A/cp" cp "$SRC/consolidated.00.pth" "$A/cp.bin"; rm -f "$A/cp.bin"; sync
  timed "$A/gguf" "$BIN" convert "$SRC" -o "$A/out.gguf"
  CP_S=$(min "$CP_S" "$(secs "$A/cp.time")"); G_S=$(min "$G_S" "$(secs "$A/gguf.time")")
  rm -f "$A/out.gguf" "$A/out.gguf.sha256"; sync
  timed "$A/gguf_nm" "$BIN" convert "$SRC" -o "$A/out.gguf" --no-manifest
  GN_S=$(min "$GN_S" "$(secs "$A/gguf_nm.time")")
done
rm -f "$A/out.gguf"
timed "$A/gguf" "$BIN" convert "$SRC" -o "$A/out.gguf"
G_MIB=$(peak_mib "$A/gguf.time")
(cd "$A" && timed "$A/sha_peer" sha256sum -c out.gguf.sha256)
timed "$A/sha_ours" "$BIN" verify "$A/out.gguf.sha256"
(cd "$SRC" && md5sum consolidated.00.pth params.json > checklist.chk)
(cd "$SRC" && timed "$A/md5_peer" md5sum -c checklist.chk)
timed "$A/md5_ours" "$BIN" verify "$SRC/checklist.chk"
HF_ROW=""
if [ "${BENCH_SKIP_TRANSFORMERS:-0}" != 1 ]; then
  BVENV="${LLAMA_TOOL_BENCH_VENV:-$HOME/.cache/llama-tool/bench-venv-tf440}"
  if [ ! -x "$BVENV/bin/python" ]; then
    python3 -m venv "$BVENV"
    "$BVENV/bin/pip" install -q transformers==4.40.2 torch==2.15.0 sentencepiece==0.2.3 protobuf==7.36.2 accelerate==1.15.0 "numpy<2.5"
  fi
  HFCONV=$("$BVENV/bin/python" -c 'import transformers, os; print(os.path.join(os.path.dirname(transformers.__file__), "models/llama/convert_llama_weights_to_hf.py"))')
  rm -rf "$A/hf_ours" "$A/hf_tf"
  timed "$A/hf_ours" "$BIN" convert "$SRC" --to safetensors -o "$A/hf_ours"
  rm -rf "$A/hf_ours"
  rm -f "$SRC/checklist.chk"
  if timed "$A/hf_tf" "$BVENV/bin/python" "$HFCONV" --input_dir "$A/src" --model_size 7B --output_dir "$A/hf_tf" --safe_serialization true; then
    HF_ROW="| Meta -> HF safetensors (with SHA256SUMS) vs transformers 4.40.2 | $(secs "$A/hf_ours.time") s, $(peak_mib "$A/hf_ours.time") MiB | $(secs "$A/hf_tf.time") s, $(peak_mib "$A/hf_tf.time") MiB | $(ratio "$(secs "$A/hf_tf.time")" "$(secs "$A/hf_ours.time")")x faster, $(ratio "$(peak_mib "$A/hf_ours.time")" "$(peak_mib "$A/hf_tf.time")") of its RSS |"
  else
    HF_ROW="| Meta -> HF vs transformers | - | converter failed: see $A/hf_tf.time | - |"
  fi
  rm -rf "$A/hf_tf"
fi

echo
echo "## A. convert and verify (7B-shaped, 4 layers, f16, $((BYTES / 1000000)) MB; page cache warm; convert/cp best of 2)"
echo
echo "| job | ours | peer | ratio (peer time / ours; >1: we are faster) |"
echo "|---|---|---|---|"
echo "| Meta -> GGUF f16 **with** the default sha256 manifest vs \`cp\` | $G_S s, $G_MIB MiB | cp $CP_S s | $(ratio "$CP_S" "$G_S")x of cp's speed |"
echo "| same with --no-manifest | $GN_S s | cp $CP_S s | $(ratio "$CP_S" "$GN_S")x |"
echo "| verify OUT.gguf.sha256 vs \`sha256sum -c\` | $(secs "$A/sha_ours.time") s | $(secs "$A/sha_peer.time") s | $(ratio "$(secs "$A/sha_peer.time")" "$(secs "$A/sha_ours.time")")x |"
echo "| verify checklist.chk (1 shard) vs \`md5sum -c\` | $(secs "$A/md5_ours.time") s | $(secs "$A/md5_peer.time") s | $(ratio "$(secs "$A/md5_peer.time")" "$(secs "$A/md5_ours.time")")x |"
[ -z "$HF_ROW" ] || echo "$HF_ROW"
rm -rf "$A"
fi

# ---------------------------------------------------------------- B. quantize
if [[ $PARTS == *B* ]]; then
B="$WORK/b"
rm -rf "$B" && mkdir -p "$B"
FX="$B/7b-l2-f16.gguf"
"$PY" tests/interop/make_llama_gguf.py "$FX" --dim 4096 --hidden 11008 --layers 2 --heads 32 --vocab 32000 --seed 1 > /dev/null
echo
echo "## B. quantize vs llama.cpp llama_model_quantize (7B-shaped 2-layer f16 GGUF, $(du -m "$FX" | cut -f1) MB, $THREADS threads)"
echo
echo "| type | llama.cpp s | llama-tool s | ratio (llama.cpp / ours) | identical |"
echo "|---|---|---|---|---|"
for T in Q8_0 Q4_0 Q4_K_M; do
  theirs=$("$PY" tests/interop/llama_quantize.py quantize "$FX" "$B" --threads "$THREADS" "$T" 2>/dev/null \
    | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$T'])")
  ours=$("$BIN" quantize "$FX" "$B/ours-$T.gguf" "$T" -j "$THREADS" --json \
    | "$PY" -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
  same=$(cmp -s "$B/ours-$T.gguf" "$B/$T.gguf" && echo yes || echo NO)
  echo "| $T | $(printf %.2f "$theirs") | $(printf %.2f "$ours") | $(ratio "$theirs" "$ours")x | $same |"
  rm -f "$B/ours-$T.gguf" "$B/$T.gguf"
done
rm -rf "$B"
fi

# ---------------------------------------------------------------- C. prompt evaluation
if [[ $PARTS == *C* ]]; then
C="$WORK/c"
rm -rf "$C" && mkdir -p "$C"
N=128
TOKENS=$("$PY" -c "print(','.join(['1'] + [str((i * 7919) % 31000 + 259) for i in range($N - 1)]))")
"$BIN" synth --shape 7B --layers 2 --seed 1 -o "$C/m" > /dev/null
"$BIN" convert "$C/m" -o "$C/f16.gguf" --no-manifest > /dev/null
"$BIN" convert "$C/m" -o "$C/q4_k_m.gguf" --q4 --no-manifest > /dev/null
echo
echo "## C. prompt evaluation vs llama.cpp (7B-shaped, 2 layers, $N tokens, $THREADS threads; whole job: load + eval)"
echo
echo "| file | llama-tool s | llama.cpp load + eval s | ratio (llama.cpp / ours) | llama.cpp eval only s |"
echo "|---|---|---|---|---|"
for f in f16 q4_k_m; do
  cat "$C/$f.gguf" > /dev/null
  RAYON_NUM_THREADS=$THREADS timed "$C/ours-$f" "$BIN" logits "$C/$f.gguf" --tokens "$TOKENS" --json
  theirs=$("$PY" tests/interop/bench_llama_cpp.py "$C/$f.gguf" "$TOKENS" "$THREADS")
  "$PY" - "$f" "$(secs "$C/ours-$f.time")" "$theirs" <<'PY'
import json, sys
f, ours, t = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
whole = t["seconds"] + t["load_seconds"]
print(f"| {f} | {ours:.2f} | {whole:.2f} | {whole / ours:.2f}x | {t['seconds']:.2f} |")
PY
done
rm -rf "$C"
fi

# ---------------------------------------------------------------- D. peak RSS, 65B-shaped
if [[ $PARTS == *D* ]]; then
D="$WORK/d"
rm -rf "$D" && mkdir -p "$D"
"$BIN" synth --shape 65B --layers 2 --mp 8 -o "$D/65B" > /dev/null
M="$D/65B"
B65=$(du -sb "$M" | cut -f1)
echo
echo "## D. peak RSS with default flags, 65B-shaped checkpoint (2 layers, 8 shards, $((B65 / 1000000)) MB)"
echo
echo "| command | wall s | peak RSS MiB |"
echo "|---|---|---|"
row() { echo "| \`$1\` | $(secs "$2.time") | $(peak_mib "$2.time") |"; }
timed "$D/conv_gguf" "$BIN" convert "$M" -o "$D/65B.gguf"; row "convert 65B -o 65B.gguf" "$D/conv_gguf"
timed "$D/conv_hf" "$BIN" convert "$M" --to safetensors -o "$D/hf"; row "convert 65B --to safetensors -o hf" "$D/conv_hf"
rm -rf "$D/hf"
timed "$D/conv_pth" "$BIN" convert "$M" --to pth -o "$D/pth"; row "convert 65B --to pth -o pth" "$D/conv_pth"
rm -rf "$D/pth"
timed "$D/reshard" "$BIN" reshard "$M" --mp 2 -o "$D/mp2"; row "reshard 65B --mp 2 -o mp2" "$D/reshard"
rm -rf "$D/mp2"
timed "$D/verify_gguf" "$BIN" verify "$D/65B.gguf.sha256"; row "verify 65B.gguf.sha256" "$D/verify_gguf"
timed "$D/verify1" "$BIN" verify "$M/checklist.chk" -j 1; row "verify 65B/checklist.chk -j 1" "$D/verify1"
timed "$D/verify" "$BIN" verify "$M/checklist.chk"; row "verify 65B/checklist.chk" "$D/verify"
timed "$D/manifest" "$BIN" manifest "$M" -o "$D/SHA256SUMS"; row "manifest 65B" "$D/manifest"
timed "$D/manifest_json" "$BIN" manifest "$M" --format json -o "$M/65B.manifest.json"; row "manifest 65B --format json" "$D/manifest_json"
timed "$D/verify_json" "$BIN" verify "$M/65B.manifest.json"; row "verify 65B/65B.manifest.json (chunks)" "$D/verify_json"
timed "$D/quant" "$BIN" quantize "$D/65B.gguf" "$D/65B-q8.gguf" Q8_0; row "quantize 65B.gguf 65B-q8.gguf Q8_0" "$D/quant"
rm -f "$D/65B-q8.gguf"
PORT=$((20000 + RANDOM % 20000))
"$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$D" > /dev/null 2>&1 &
HTTP=$!
trap 'kill $HTTP 2>/dev/null || true' EXIT
sleep 1
cp "$D/SHA256SUMS" "$M/SHA256SUMS.bench"
timed "$D/download" "$BIN" download --manifest "http://127.0.0.1:$PORT/65B/SHA256SUMS.bench" -o "$D/dl"; row "download --manifest URL (loopback)" "$D/download"
kill $HTTP 2>/dev/null || true
rm -rf "$D/dl" "$M/SHA256SUMS.bench"
timed "$D/logits" "$BIN" logits "$D/65B.gguf" --tokens 1,450,4996,1701; row "logits 65B.gguf --tokens 1,450,4996,1701" "$D/logits"
rm -rf "$D"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
