#!/usr/bin/env bash
# Run llama-tool's cargo-fuzz targets, one at a time, at the lowest CPU priority.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     (default: all targets, 60 s each)
#   FUZZ_RUNS=10000000 scripts/fuzz.sh all 7200   (stop each target at N executions)
#
# Needs nightly Rust and cargo-fuzz (`cargo install cargo-fuzz`). Each run starts from the
# committed seeds (fuzz/seeds/TARGET) and regression inputs (fuzz/regressions/TARGET) plus
# the local corpus (fuzz/corpus/TARGET, not committed). Budgets: any single allocation of
# 256 MiB or more, an RSS over 2 GiB, or one input running over 10 s is a crash. A crash
# input lands in fuzz/artifacts/TARGET/: copy it to fuzz/regressions/TARGET/, fix the
# parser, and `cargo test -p llama-manifests --test fuzz_replay` replays it on stable.
# The last line per target is `TARGET: N executions ...`; docs/SECURITY.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:-all}
SECONDS_EACH=${2:-60}
ALL=(pickle torch_zip gguf gguf_structured safetensors sentencepiece md5_checklist
     sha256sums b3sum json_manifest params_json config_json torrent)

if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz with nightly Rust is needed: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    exit 2
fi
if [ "$TARGET" = all ]; then targets=("${ALL[@]}"); else targets=("$TARGET"); fi

cd fuzz
if [ "$TARGET" = all ]; then
    nice -n 19 cargo +nightly fuzz build -O
else
    nice -n 19 cargo +nightly fuzz build -O "$TARGET"
fi
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t" "seeds/$t"
    log="artifacts/$t/last-run.log"
    set +e
    nice -n 19 cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=256 \
        -timeout=10 -max_len=1048576 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
    echo "$t: ${execs:-0} executions in ${SECONDS_EACH}s, exit $rc, $crashes crash/oom/timeout inputs in fuzz/artifacts/$t"
    [ "$rc" -eq 0 ] || status=1
done
exit $status
