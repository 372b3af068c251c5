#!/usr/bin/env bash
# Render a `llama-tool check --report` page in headless Chromium (Debian's `chromium`,
# scripts/install-report-tools.sh installs it) and save a PNG.
#
#   scripts/report-screenshot.sh [REPORT.html] [OUT.png]
#
# Without REPORT it makes one: a tiny synthetic model, its q4_k_m GGUF, and
# `check --per-layer --report`; OUT defaults to docs/check-report.png (the README's picture).
# LLAMA_TOOL=/path/to/llama-tool picks the binary (default: target/release or target/debug).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPORT="${1:-}"
OUT="${2:-$ROOT/docs/check-report.png}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
command -v chromium >/dev/null 2>&1 || bash "$ROOT/scripts/install-report-tools.sh"

if [ -z "$REPORT" ]; then
    LT="${LLAMA_TOOL:-}"
    for c in "$ROOT/target/release/llama-tool" "$ROOT/target/debug/llama-tool"; do
        [ -z "$LT" ] && [ -x "$c" ] && LT="$c"
    done
    [ -n "$LT" ] || { echo "build llama-tool first (cargo build -p llama-tool) or set LLAMA_TOOL" >&2; exit 2; }
    "$LT" synth --shape tiny --layers 6 --seed 11 -o "$WORK/original" >/dev/null
    "$LT" convert "$WORK/original" --to gguf --outtype q4_k_m -o "$WORK/model-q4_k_m.gguf" >/dev/null
    (cd "$WORK" && "$LT" check original model-q4_k_m.gguf --per-layer \
        --prompt "The quick brown fox jumps over the lazy dog. Numbers 12345, naïve café, 中文 😀 and a longer tail of text so that the per-position plot has something to show." \
        --report report.html >/dev/null) || true
    REPORT="$WORK/report.html"
fi
[ -s "$REPORT" ] || { echo "$REPORT: no report" >&2; exit 2; }

chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$WORK/profile" --hide-scrollbars --window-size=1024,2000 \
    --screenshot="$WORK/shot.png" "file://$(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")" \
    >"$WORK/chromium.log" 2>&1 || { cat "$WORK/chromium.log" >&2; exit 1; }
[ -s "$WORK/shot.png" ] || { cat "$WORK/chromium.log" >&2; exit 1; }
cp "$WORK/shot.png" "$OUT"
echo "$OUT"
