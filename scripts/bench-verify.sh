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

best() { # best wall seconds of RUNS runs of "$@" (output discarded; must succeed)
    local b="" t0 t1 t
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s.%N)
        "$@" > /dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    printf '%.3f' "$b"
}
incd() { (cd "$1" && shift && "$@"); }

BYTES=$(( $(stat -c %s "$S0") + $(stat -c %s "$S1") ))
ONE=$(stat -c %s "$S0")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: 2 shards, $(( BYTES / 1000000 )) MB ($(( ONE / 1000000 )) MB single file), page cache warm, best of $RUNS"
printf '%-44s %9s %9s %7s\n' "case" "peer s" "ours s" "ratio"
row() { # name peer ours
    printf '%-44s %9s %9s %6.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"
}
p=$(best incd "$WORK/md5" md5sum -c checklist.chk); o=$(best "$BIN" verify "$WORK/md5")
row "md5 folder: md5sum -c checklist.chk" "$p" "$o"
p=$(best incd "$WORK/sha" sha256sum -c SHA256SUMS); o=$(best "$BIN" verify "$WORK/sha")
row "sha256 folder: sha256sum -c SHA256SUMS" "$p" "$o"
p=$(best md5sum "$S0"); o=$(best "$BIN" verify "$S0" --md5 "$MD5_0" --jobs 1)
row "md5 single file: md5sum" "$p" "$o"
p=$(best sha256sum "$S0"); o=$(best "$BIN" verify "$S0" --sha256 "$SHA_0" --jobs 1)
row "sha256 single file: sha256sum" "$p" "$o"
s=$(best "$BIN" verify "$S0" --sha256 "$SHA_0")
o=$(best "$BIN" verify "$WORK/one")
row "one file, JSON blake3 chunks vs our sha256" "$s" "$o"
o=$(best "$BIN" verify "$WORK/one-sha")
row "one file, JSON sha256 chunks vs our sha256" "$s" "$o"
echo "files kept in $WORK (BENCH_DIR=$WORK to reuse)"
