#!/bin/sh
# Installs better-sqlite3-multiple-ciphers (Forward Email's SQLite3MC for
# Node) into tests/interop/node_modules for the interop test in
# tests/maildb.rs. Node 20 builds 12.x from source (about 2.5 minutes on two
# cores): no prebuilt binary is downloaded, and node-gyp takes the headers
# from the installed Node (nodedir /usr) instead of fetching them.
set -eu
cd "$(dirname "$0")"
if [ -f node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node ]; then
    exit 0
fi
command -v node >/dev/null || { echo "install.sh: node is not installed" >&2; exit 1; }
npm_config_nodedir="${npm_config_nodedir:-/usr}" npm ci --no-audit --no-fund --build-from-source
