#!/usr/bin/env bash
# Creates (once) the cached Python venv for the model-signing interop tests, outside the repo:
# the OpenSSF Model Signing reference implementation `model-signing` from PyPI, plus pyOpenSSL,
# which it imports without declaring it. Kept apart from scripts/setup-venv.sh's venv so its
# pins (cryptography, protobuf) never disturb torch/transformers.
#   scripts/setup-signing-venv.sh     # prints the venv's python path on its last line
# Idempotent and cached: a stamp records the pinned set; a second run installs nothing.
set -euo pipefail
VENV="${LLAMA_TOOL_SIGNING_VENV:-$HOME/.cache/llama-tool/venv-signing}"
PKGS=(model-signing==1.1.1 pyOpenSSL)
STAMP="$VENV/.llama-tool-signing-$(echo "${PKGS[*]}" | md5sum | cut -c1-8)"

mkdir -p "$(dirname "$VENV")"
exec 9>"$(dirname "$VENV")/.setup-signing.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip >&2
fi
if [ ! -e "$STAMP" ]; then
  "$VENV/bin/pip" install -q "${PKGS[@]}" >&2
  # The tests run it offline: prove the CLI and the key signer import.
  "$VENV/bin/python" -c 'import model_signing, model_signing._signing.sign_ec_key, OpenSSL' >&2
  touch "$STAMP"
fi
echo "$VENV/bin/python"
