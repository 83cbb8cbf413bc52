#!/bin/sh
# Installs the interop peers that come from package registries, each only
# when it is not there yet (a second run takes well under a second):
#
# - better-sqlite3-multiple-ciphers (Forward Email's SQLite3MC for Node)
#   into tests/interop/node_modules, for the interop test in
#   tests/maildb.rs. Node 20 builds 12.x from source (about 2.5 minutes on
#   two cores): no prebuilt binary is downloaded, and node-gyp takes the
#   headers from the installed Node (nodedir /usr) instead of fetching them.
# - srslib and python-gnupg (PyPI, pinned) into the venv tests/interop/venv,
#   for lib/tests/srs_interop.rs, bench/srs-peers.py and
#   bench/encryptor-bench.sh (python-gnupg is how zeyple and lacre call
#   gpg; about 5 seconds).
#
# `install.sh python` installs the venv only (the encryptor bench needs no
# Node). Mail::SRS and postsrsd come from Debian (make deps).
set -eu
cd "$(dirname "$0")"

SRSLIB_VERSION=0.1.5
PYTHON_GNUPG_VERSION=0.5.7

only=${1:-}
if [ "$only" != python ] && [ ! -f node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node ]; then
    command -v node >/dev/null || { echo "install.sh: node is not installed" >&2; exit 1; }
    npm_config_nodedir="${npm_config_nodedir:-/usr}" npm ci --no-audit --no-fund --build-from-source
fi

if ! venv/bin/python -c "import srslib, gnupg" 2>/dev/null \
    || ! venv/bin/pip show srslib 2>/dev/null | grep -qx "Version: $SRSLIB_VERSION" \
    || ! venv/bin/pip show python-gnupg 2>/dev/null | grep -qx "Version: $PYTHON_GNUPG_VERSION"; then
    command -v python3 >/dev/null || { echo "install.sh: python3 is not installed" >&2; exit 1; }
    rm -rf venv
    python3 -m venv venv || { echo "install.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
    venv/bin/pip install --quiet --disable-pip-version-check --no-input \
        "srslib==$SRSLIB_VERSION" "python-gnupg==$PYTHON_GNUPG_VERSION"
fi
