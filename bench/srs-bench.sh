#!/bin/bash
# SRS throughput of postern's codec and of its peers, one `name rate` line
# each on stdout (progress on stderr):
#
#   postern-srs  postern's codec in process (examples/srs-bench.rs):
#                forward+reverse pairs per second.
#   srslib       srslib 0.1.5 in process (bench/srs-peers.py, with the
#                venv tests/interop/install.sh makes): the same pairs.
#                Target: postern-srs at least 5 times srslib.
#   postsrsd     postsrsd 1.10 as Postfix uses it: forward requests per
#                second over tcp_table, one at a time on one connection
#                (bench/postsrsd-client.py); a lookup, not a pair.
#
# Each is the median of three runs. postsrsd is started here on free
# loopback ports with a fresh secret in a temp directory (as user nobody
# when run as root) and stopped by its PID on exit. Environment:
# BENCH_SRS_PAIRS (200000) pairs per run for postern, BENCH_SRS_PEER_PAIRS
# (100000) for srslib, BENCH_SRS_REQUESTS (20000) for postsrsd.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pairs=${BENCH_SRS_PAIRS:-200000}
peer_pairs=${BENCH_SRS_PEER_PAIRS:-100000}
requests=${BENCH_SRS_REQUESTS:-20000}
python=$repo/tests/interop/venv/bin/python
postsrsd=$(command -v postsrsd || echo /usr/sbin/postsrsd)

[ -x "$python" ] || { echo "srs-bench.sh: no srslib venv; run: bash tests/interop/install.sh" >&2; exit 1; }
[ -x "$postsrsd" ] || { echo "srs-bench.sh: postsrsd is not installed; run: make deps" >&2; exit 1; }

work=$(mktemp -d)
daemon=
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "srs-bench: building examples/srs-bench.rs" >&2
(cd "$repo" && cargo build --release --quiet --features bench --example srs-bench)

echo "srs-bench: postern, $pairs pairs x 3" >&2
echo "postern-srs $("$repo/target/release/examples/srs-bench" "$pairs")"

echo "srs-bench: srslib, $peer_pairs pairs x 3" >&2
echo "srslib $("$python" "$repo/bench/srs-peers.py" "$peer_pairs")"

# Two free loopback ports (the kernel's choice; free again once closed).
read -r forward_port reverse_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
(umask 077; head -c 18 /dev/urandom | base64 >"$work/postsrsd.secret")
as_user=()
[ "$(id -u)" = 0 ] && as_user=(-u nobody)
"$postsrsd" -s "$work/postsrsd.secret" -d fwd.example.net -4 -l 127.0.0.1 \
    -f "$forward_port" -r "$reverse_port" -t 600 "${as_user[@]}" 2>"$work/postsrsd.err" &
daemon=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$forward_port") 2>/dev/null && break
    kill -0 "$daemon" 2>/dev/null || { echo "srs-bench.sh: postsrsd exited: $(cat "$work/postsrsd.err")" >&2; exit 1; }
    sleep 0.05
done
echo "srs-bench: postsrsd, $requests requests x 3" >&2
echo "postsrsd $(python3 "$repo/bench/postsrsd-client.py" "127.0.0.1:$forward_port" "$requests")"
