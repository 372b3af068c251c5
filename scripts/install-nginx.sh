#!/usr/bin/env bash
# Install nginx from Debian's packages for the download e2e tests (tests/e2e/download.rs starts
# its own instance on a loopback port with a temporary config; nothing is enabled as a service).
# Idempotent; .ci/run calls it before the tests.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx-light was folded into nginx in newer Debian releases; take whichever exists.
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null 2>&1 \
    || apt-get install -y -qq --no-install-recommends nginx >/dev/null
# Debian's postinst may start a default server on :80; the tests do not need it.
(command -v systemctl >/dev/null 2>&1 && systemctl stop nginx) >/dev/null 2>&1 || true
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
