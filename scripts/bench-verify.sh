#!/usr/bin/env bash
# Benchmark (not a test): `llama-tool verify` against coreutils `md5sum -c` / `sha256sum -c` on
# the same files, in one run, page cache warm. Builds a two-shard 13B-shaped folder with
# `llama-tool synth --shape 13B --layers 4 --mp 2` (about 3.2 GB), or random files of similar
# sizes with BENCH_RANDOM=1. Each figure is the best of BENCH_RUNS runs (default 3), because
# the machine is shared. Prints one table with ratios (coreutils time / ours).
#
#   cargo build --release -p llama-tool
#   scripts/bench-verify.sh            # LLAMA_TOOL=path/to/llama-tool BENCH_DIR=/tmp/x to override
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LLAMA_TOOL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-tool}
RUNS=${BENCH_RUNS:-3}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/bench-verify.XXXXXX)}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p llama-tool (or set LLAMA_TOOL)" >&2; exit 2; }

SRC=$WORK/src
if [ ! -f "$SRC/consolidated.01.pth" ]; then
    rm -rf "$SRC"
    if [ "${BENCH_RANDOM:-0}" = 1 ]; then
        mkdir -p "$SRC"
        head -c 1600000000 /dev/urandom > "$SRC/consolidated.00.pth"
        head -c 1600000000 /dev/urandom > "$SRC/consolidated.01.pth"
        echo '{"dim": 5120}' > "$SRC/params.json"
    else
        "$BIN" synth -o "$SRC" --shape 13B --layers 4 --mp 2 >/dev/null
    fi
fi
S0=$SRC/consolidated.00.pth
S1=$SRC/consolidated.01.pth

# One folder per manifest kind, hard links to the same bytes (same page cache).
mk() { rm -rf "$WORK/$1"; mkdir -p "$WORK/$1"; ln "$S0" "$S1" "$SRC/params.json" "$WORK/$1/"; }
mk md5; (cd "$WORK/md5" && md5sum consolidated.00.pth consolidated.01.pth params.json > checklist.chk)
mk sha; (cd "$WORK/sha" && sha256sum consolidated.00.pth consolidated.01.pth params.json > SHA256SUMS)
rm -rf "$WORK/one" "$WORK/one-sha"; mkdir -p "$WORK/one" "$WORK/one-sha"; ln "$S0" "$WORK/one/"; ln "$S0" "$WORK/one-sha/"
"$BIN" manifest "$WORK/one" --format json -o "$WORK/one/one.manifest.json"
"$BIN" manifest "$WORK/one-sha" --format json --algo sha256 -o "$WORK/one-sha/one.manifest.json"
MD5_0=$(md5sum "$S0" | cut -c1-32)
SHA_0=$(sha256sum "$S0" | cut -c1-64)

cat "$S0" "$S1" > /dev/null # warm the page cache

incd() { (cd "$1" && shift && "$@"); }

BYTES=$(( $(stat -c %s "$S0") + $(stat -c %s "$S1") ))
ONE=$(stat -c %s "$S0")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: 2 shards, $(( BYTES / 1000000 )) MB ($(( ONE / 1000000 )) MB single file), page cache warm, best of $RUNS"
echo "wall = elapsed seconds, cpu = user+sys seconds (the cpu column does not depend on other load)"
printf '%-44s %8s %8s %8s %8s %7s\n' "case" "peer" "peer" "ours" "ours" "wall"
printf '%-44s %8s %8s %8s %8s %7s\n' "" "wall s" "cpu s" "wall s" "cpu s" "ratio"
row "md5 folder: md5sum -c checklist.chk" "$(best incd "$WORK/md5" md5sum -c checklist.chk)" "$(best "$BIN" verify "$WORK/md5")"
row "sha256 folder: sha256sum -c SHA256SUMS" "$(best incd "$WORK/sha" sha256sum -c SHA256SUMS)" "$(best "$BIN" verify "$WORK/sha")"
row "md5 single file: md5sum" "$(best md5sum "$S0")" "$(best "$BIN" verify "$S0" --md5 "$MD5_0" --jobs 1)"
row "sha256 single file: sha256sum" "$(best sha256sum "$S0")" "$(best "$BIN" verify "$S0" --sha256 "$SHA_0" --jobs 1)"
s=$(best "$BIN" verify "$S0" --sha256 "$SHA_0")
row "one file: JSON blake3 chunks vs our sha256" "$s" "$(best "$BIN" verify "$WORK/one")"
row "one file: JSON sha256 chunks vs our sha256" "$s" "$(best "$BIN" verify "$WORK/one-sha")"
echo "files kept in $WORK (BENCH_DIR=$WORK to reuse)"
