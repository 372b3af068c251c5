#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this) and as you run it locally:
#   scripts/test.sh
# Installs what the interop tests need (Debian nginx, a cached Python venv outside the repo with
# torch, gguf, sentencepiece, safetensors, transformers and llama-cpp-python), then runs
# formatting, lint and every Rust test with the interop python exported.
set -euo pipefail
cd "$(dirname "$0")/.."
# /dev/null must be the null device: cargo and build scripts send discarded output there, and
# cargo probes rustc with `rustc -`. A CI run once failed because /dev/null had become a
# regular file on the machine, so that rustc read other programs' error output as source.
# Recreate it when we can (root in a container), say so when we cannot.
if [ ! -c /dev/null ]; then
  if [ "$(id -u)" = 0 ] && rm -f /dev/null && mknod -m 666 /dev/null c 1 3; then
    echo "test.sh: /dev/null was not a character device; recreated it" >&2
  else
    echo "test.sh: /dev/null is not a character device and cannot be recreated" >&2
  fi
fi
NULL_WAS_DEVICE=no; [ -c /dev/null ] && NULL_WAS_DEVICE=yes
# Nothing here reads standard input; give every child an empty one (a pipe at end of file,
# which needs no device) rather than whatever the caller left attached.
exec < <(:)

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  bash scripts/install-nginx.sh
fi
bash scripts/install-torrent-peers.sh
bash scripts/install-report-tools.sh
PY="$(bash scripts/setup-venv.sh --llama | tail -n 1)"
export LLAMA_TOOL_PYTHON="$PY"
bash scripts/fetch-llama-cpp-converter.sh >/dev/null
LLAMA_TOOL_SIGNING_PYTHON="$(bash scripts/setup-signing-venv.sh | tail -n 1)"; export LLAMA_TOOL_SIGNING_PYTHON
export PATH="/usr/sbin:$PATH"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast -- --test-threads 2
# No test may replace the null device (an output path such as `-o /dev/null` must never be
# renamed over or removed).
if [ "$NULL_WAS_DEVICE" = yes ] && [ ! -c /dev/null ]; then
  echo "test.sh: after the tests /dev/null is no longer a character device" >&2
  exit 1
fi
