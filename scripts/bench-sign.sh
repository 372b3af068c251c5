#!/usr/bin/env bash
# Benchmark (not a test): `llama-tool sign` / `verify --signature` against the reference
# implementation `model_signing sign key` / `verify key` (PyPI model-signing 1.1.1, from
# scripts/setup-signing-venv.sh) on the same two-shard 13B-shaped folder bench-verify.sh uses
# (`llama-tool synth --shape 13B --layers 4 --mp 2`, about 3.2 GB), page cache warm, P-256 key
# made by openssl. Each figure is the best of BENCH_RUNS runs (default 3). Prints one table
# with ratios (model_signing time / ours).
#
#   cargo build --release -p llama-tool
#   scripts/bench-sign.sh          # LLAMA_TOOL=path/to/llama-tool BENCH_DIR=/tmp/x to override
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LLAMA_TOOL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-tool}
RUNS=${BENCH_RUNS:-3}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/bench-sign.XXXXXX)}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p llama-tool (or set LLAMA_TOOL)" >&2; exit 2; }
PY=$(bash "$ROOT/scripts/setup-signing-venv.sh" | tail -n 1)

SRC=$WORK/src
if [ ! -f "$SRC/consolidated.01.pth" ]; then
    rm -rf "$SRC"
    "$BIN" synth -o "$SRC" --shape 13B --layers 4 --mp 2 >/dev/null
fi
[ -f "$WORK/key.pem" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/key.pem"
openssl ec -in "$WORK/key.pem" -pubout -out "$WORK/key.pub" 2>/dev/null
# Signatures go beside the folder, not into it, so every run hashes the same files.
"$BIN" sign "$SRC" --key "$WORK/key.pem" -o "$WORK/ours.sig" --force >/dev/null
"$PY" -m model_signing sign key "$SRC" --private_key "$WORK/key.pem" --signature "$WORK/theirs.sig" >/dev/null

find "$SRC" -type f -exec cat {} + > /dev/null # warm the page cache


BYTES=$(du -sb "$SRC" | cut -f1)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $(find "$SRC" -type f | wc -l) files, $(( BYTES / 1000000 )) MB, page cache warm, best of $RUNS; model_signing $("$PY" -c 'import importlib.metadata as m; print(m.version("model-signing"))')"
echo "wall = elapsed seconds, cpu = user+sys seconds"
printf '%-44s %8s %8s %8s %8s %7s\n' "case" "peer" "peer" "ours" "ours" "wall"
printf '%-44s %8s %8s %8s %8s %7s\n' "" "wall s" "cpu s" "wall s" "cpu s" "ratio"
row "sign: model_signing sign key" \
    "$(best "$PY" -m model_signing sign key "$SRC" --private_key "$WORK/key.pem" --signature "$WORK/theirs.sig")" \
    "$(best "$BIN" sign "$SRC" --key "$WORK/key.pem" -o "$WORK/ours.sig" --force)"
row "verify: model_signing verify key" \
    "$(best "$PY" -m model_signing verify key "$SRC" --signature "$WORK/theirs.sig" --public_key "$WORK/key.pub")" \
    "$(best "$BIN" verify "$SRC" --signature "$WORK/ours.sig" --public-key "$WORK/key.pub")"
echo "files kept in $WORK (BENCH_DIR=$WORK to reuse)"
