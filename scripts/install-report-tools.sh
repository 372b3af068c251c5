#!/usr/bin/env bash
# Debian packages the report/CI tests use: chromium (scripts/report-screenshot.sh renders
# `check --report` pages headless) and libxml2-utils (xmllint checks that
# the `--junit` XML and report pages are well-formed), then the small junitparser venv
# (scripts/setup-ci-venv.sh). Idempotent; scripts/test.sh calls it before the tests.
set -euo pipefail
bash "$(dirname "$0")/setup-ci-venv.sh" >/dev/null
need=()
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
command -v xmllint >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1
