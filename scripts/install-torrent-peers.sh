#!/usr/bin/env bash
# Install the BitTorrent clients the torrent interop tests run against (tests/e2e/torrent.rs):
# aria2 (aria2c: seeder, downloader, --check-integrity), transmission-cli
# (transmission-create, transmission-show) and python3-libtorrent (libtorrent 2.0 for the
# system /usr/bin/python3: the v2/hybrid torrents transmission 3 cannot make). Nothing is enabled as a service; the tests start
# them on loopback ports inside their own network namespace. Idempotent; scripts/test.sh
# calls it before the tests.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
lt() { /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1; }
if have aria2c && have transmission-create && have transmission-show && lt; then
    exit 0
fi
PKGS="aria2 transmission-cli python3-libtorrent"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! apt-get install -y -qq --no-install-recommends $PKGS >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
fi
have aria2c && have transmission-create && have transmission-show && lt
