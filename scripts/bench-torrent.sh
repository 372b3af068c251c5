#!/usr/bin/env bash
# Benchmark (not a test): BitTorrent verification and loopback download, in one run.
#  1. `llama-tool verify --torrent` of a two-shard model against `sha1sum` of the same files
#     (the SHA-1 work of a v1 torrent, one core) and against `aria2c --check-integrity`'s own
#     piece check of the same torrent; page cache warm; best of BENCH_RUNS (default 3).
#  2. Loopback download throughput: `llama-tool download X.torrent --peer 127.0.0.1:P` from an
#     `aria2c` seeder (reported, not judged).
# Everything runs inside a fresh network namespace (`unshare -n`, root) with only lo up.
#
#   cargo build --release -p llama-tool && bash scripts/install-torrent-peers.sh
#   scripts/bench-torrent.sh           # BENCH_SHARD_MB=1024 (size of each shard), BENCH_DIR=...
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LLAMA_TOOL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-tool}
RUNS=${BENCH_RUNS:-3}
MB=${BENCH_SHARD_MB:-1024}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p llama-tool (or set LLAMA_TOOL)" >&2; exit 2; }
command -v aria2c >/dev/null || { echo "run scripts/install-torrent-peers.sh first" >&2; exit 2; }

if [ "${BENCH_TORRENT_NETNS:-}" != 1 ]; then
    exec unshare -n env BENCH_TORRENT_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
[ "$(ip -o link | wc -l)" = 1 ] || { echo "namespace must hold only lo" >&2; exit 2; }

WORK=${BENCH_DIR:-$(mktemp -d /tmp/bench-torrent.XXXXXX)}
SRC=$WORK/src/13B
if [ ! -f "$SRC/consolidated.01.pth" ] || [ "$(stat -c %s "$SRC/consolidated.01.pth")" != $((MB << 20)) ]; then
    rm -rf "$WORK/src"; mkdir -p "$SRC"
    head -c $((MB << 20)) /dev/urandom > "$SRC/consolidated.00.pth"
    head -c $((MB << 20)) /dev/urandom > "$SRC/consolidated.01.pth"
    echo '{"dim": 5120, "n_heads": 40, "n_layers": 40}' > "$SRC/params.json"
fi
T=$WORK/13B.torrent
TM0=$(date +%s.%N)
"$BIN" manifest "$SRC" --format torrent -o "$T" --force --piece-size 4M 2>/dev/null
TM1=$(date +%s.%N)
cat "$SRC"/*.pth > /dev/null # warm the page cache


BYTES=$(( 2 * (MB << 20) ))
ARIA_FLAGS=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
            --disable-ipv6=true --console-log-level=error --summary-interval=0)
OURS=$(best_wall "$BIN" verify --torrent "$T" "$WORK/src")
SHA1=$(best_wall sha1sum "$SRC/consolidated.00.pth" "$SRC/consolidated.01.pth")
ARIA=$(best_wall aria2c "${ARIA_FLAGS[@]}" --check-integrity=true --seed-time=0 --bt-stop-timeout=1 \
    --listen-port=6999 --dir="$WORK/src" "$T")

# Loopback download from an aria2c seeder.
aria2c "${ARIA_FLAGS[@]}" --check-integrity=true --seed-ratio=0.0 --listen-port=6881 \
    --dir="$WORK/src" "$T" >/dev/null 2>&1 &
SEEDER=$!
trap 'kill $SEEDER 2>/dev/null || true' EXIT
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/6881) 2>/dev/null && break; sleep 0.2; done
rm -rf "$WORK/dl"
D0=$(date +%s.%N)
"$BIN" download "$T" -o "$WORK/dl" --peer 127.0.0.1:6881 --no-dht --no-trackers --json > "$WORK/dl.json"
D1=$(date +%s.%N)
cmp "$SRC/consolidated.01.pth" "$WORK/dl/13B/consolidated.01.pth"

gbs() { echo "scale=2; $BYTES / $1 / 1000000000" | bc -l; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
echo "data: 2 shards of $MB MiB, torrent pieces of 4 MiB, page cache warm, best of $RUNS"
echo
echo "| what | seconds | GB/s | ratio (peer time / ours) |"
echo "|---|---|---|---|"
echo "| llama-tool verify --torrent | $OURS | $(gbs "$OURS") | 1.00x |"
echo "| sha1sum (same files) | $SHA1 | $(gbs "$SHA1") | $(echo "scale=2; $SHA1 / $OURS" | bc -l)x |"
echo "| aria2c --check-integrity (incl. start-up) | $ARIA | $(gbs "$ARIA") | $(echo "scale=2; $ARIA / $OURS" | bc -l)x |"
echo "| llama-tool manifest --format torrent (cold-ish) | $(echo "$TM1 - $TM0" | bc -l | cut -c1-5) | | |"
DL=$(echo "$D1 - $D0" | bc -l)
echo
echo "loopback download from aria2c: $(echo "scale=2; $BYTES / $DL / 1000000" | bc -l) MB/s ($BYTES bytes in $(echo "$DL" | cut -c1-5) s, incl. engine start, checklist-free)"
