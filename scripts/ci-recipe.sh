#!/usr/bin/env bash
# Runs the commands of docs/CI.md's GitHub Actions and GitLab recipes on a generated artifact
# folder, so the recipe is tested (tests/e2e/cireport.rs runs this script and checks that
# every `llama-tool` line of docs/CI.md appears here verbatim).
#
#   scripts/ci-recipe.sh [WORKDIR]
#
# With LLAMA_TOOL=/path/to/llama-tool it uses that binary; otherwise it installs one into
# .llama-tool/ with the recipe's own (cached) install step.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

# --- install (cached), as the recipe does -------------------------------------------------
if [ -n "${LLAMA_TOOL:-}" ]; then
    mkdir -p "$WORK/bin"
    ln -sf "$LLAMA_TOOL" "$WORK/bin/llama-tool"
    export PATH="$WORK/bin:$PATH"
else
    cd "$ROOT"
    test -x .llama-tool/bin/llama-tool || cargo install --locked --path cli --root .llama-tool
    export PATH="$ROOT/.llama-tool/bin:$PATH"
fi

# --- the artifacts a pipeline would have produced -------------------------------------------
cd "$WORK"
rm -rf artifacts reports
llama-tool synth --shape tiny --layers 2 --seed 5 -o artifacts/original >/dev/null
llama-tool convert artifacts/original --to gguf --outtype q8_0 -o artifacts/model-q8_0.gguf >/dev/null
llama-tool manifest artifacts --format sha256sums -o artifacts/SHA256SUMS >/dev/null
printf 'The quick brown fox jumps over the lazy dog.\nA second line of text to evaluate.\n' > eval.txt
export ARTIFACTS=artifacts REFERENCE=artifacts/original CANDIDATE=artifacts/model-q8_0.gguf EVAL_TEXT=eval.txt

# --- the recipe's steps (same lines as docs/CI.md) ----------------------------------------
mkdir -p reports
llama-tool verify "$ARTIFACTS" --junit reports/verify.xml
llama-tool check "$REFERENCE" "$CANDIDATE" --corpus "$EVAL_TEXT" --junit reports/check.xml --report reports/check.html

for f in reports/verify.xml reports/check.xml reports/check.html; do
    test -s "$f" || { echo "ci-recipe: $f was not written" >&2; exit 1; }
done

# --- the gate closes on a corrupted artifact (verify exits 1, JUnit names the file) -------
printf 'x' | dd of=artifacts/model-q8_0.gguf bs=1 seek=4096 conv=notrunc status=none
if llama-tool verify "$ARTIFACTS" --junit reports/verify.xml --force >/dev/null; then
    echo "ci-recipe: verify passed a corrupted artifact" >&2
    exit 1
fi
grep -q 'model-q8_0.gguf' reports/verify.xml
grep -q '<failure' reports/verify.xml
echo "ci-recipe: ok ($WORK)"
