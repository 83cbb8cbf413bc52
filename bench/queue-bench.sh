#!/bin/bash
# The retry queue and the bouncer in numbers (make bench-queue). One
# `name value unit` line per figure on stdout, then the ratios against the
# targets of issue 10; progress on stderr. Every figure is the median of
# three runs, and every ratio compares figures of this same run.
#
#   1. A queue run with nothing due: BIG (100000) deferred jobs due in a
#      day; `postern-deliverer --run-queue` wall time and peak RSS
#      (targets: under 1 s and under 50 MB).
#   2. DUE (10000) due jobs of 10 KB to Postfix's smtp-sink on loopback:
#      `postern-deliverer --run-queue` (unsealing, one SMTP session per job,
#      settling, the redacted copy) against `smtp-source -s 1` sending the
#      same number of 10 KB messages to the same sink, one session at a
#      time as the runner does (target: at least 0.5x).
#   3. Building a DSN in process (examples/queue-bench.rs dsn), and the
#      peak RSS of `postern-bouncer` given a job with a 50 MB original and
#      RET=FULL (capped by bouncer.return_size_limit).
#
# Environment: BENCH_QUEUE_BIG (100000), BENCH_QUEUE_DUE (10000).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
big=${BENCH_QUEUE_BIG:-100000}
due=${BENCH_QUEUE_DUE:-10000}
release=$repo/target/release
deliverer=$release/postern-deliverer
bouncer=$release/postern-bouncer
receiver=$release/postern-receiver
for b in "$deliverer" "$bouncer" "$receiver"; do
    [ -x "$b" ] || { echo "queue-bench.sh: $b missing (make build)" >&2; exit 1; }
done
command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null ||
    { echo "queue-bench.sh: smtp-sink/smtp-source missing (make deps)" >&2; exit 1; }

work=$(mktemp -d /tmp/postern-queue-bench-XXXXXX)
chmod 755 "$work"
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
# wall SECONDS and peak RSS KB of a command: "secs kb".
measure() {
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
        echo "queue-bench.sh: $* failed: $(tail -3 "$work/stderr")" >&2; exit 1; }
    cat "$work/time"
}
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "queue-bench: building examples/queue-bench.rs" >&2
(cd "$repo" && timeout 900 cargo build --release --quiet --features bench --example queue-bench)
qb=$release/examples/queue-bench

port=$(free_port)
head -c 32 /dev/urandom > "$work/key"
chmod 600 "$work/key"
site() { # site NAME: a config whose spool is $work/NAME
    cat > "$work/$1.toml" <<TOML
hostname = "bench.example"
log = "none"
[spool]
directory = "$work/$1"
key_file = "$work/key"
[relay]
port = $port
[aliases]
store = "$work/no-store.db"
TOML
    echo "$work/$1.toml"
}

# 1. Nothing due.
config=$(site big)
echo "queue-bench: $big deferred jobs, none due" >&2
timeout 600 "$qb" fill "$work/big" "$work/key" "$big" 1024 later
secs=(); rss=()
for _ in 1 2 3; do
    read -r s k < <(POSTERN_CONFIG=$config measure timeout 120 "$deliverer" --run-queue)
    secs+=("$s"); rss+=("$k")
done
idle_secs=$(printf '%s\n' "${secs[@]}" | median)
idle_mb=$(printf '%s\n' "${rss[@]}" | median | awk '{ printf "%.1f", $1 / 1024 }')
echo "idle_run_seconds $idle_secs s"
echo "idle_run_peak_rss $idle_mb MB"
rm -rf "$work/big"

# 2. Due jobs to smtp-sink, against smtp-source.
mkdir -p "$work/sink"
smtp-sink -u nobody 127.0.0.1:"$port" 256 &
sink_pid=$!
sleep 0.5
config=$(site due)
rates=(); peer=()
for run in 1 2 3; do
    rm -rf "$work/due"
    timeout 600 "$qb" fill "$work/due" "$work/key" "$due" 10240 due
    echo "queue-bench: run $run: $due due jobs of 10 KB" >&2
    read -r s _ < <(POSTERN_CONFIG=$config measure timeout 600 "$deliverer" --run-queue)
    left=$(ls "$work/due/deferred" | wc -l)
    [ "$left" = 0 ] || { echo "queue-bench.sh: $left jobs left in deferred/" >&2; exit 1; }
    rates+=("$(awk -v n="$due" -v s="$s" 'BEGIN { printf "%.0f", n / s }')")
    read -r s _ < <(measure timeout 600 smtp-source -s 1 -m "$due" -l 10240 \
        -f alice@example.org -t bob@example.net 127.0.0.1:"$port")
    peer+=("$(awk -v n="$due" -v s="$s" 'BEGIN { printf "%.0f", n / s }')")
done
kill "$sink_pid"; sink_pid=
run_rate=$(printf '%s\n' "${rates[@]}" | median)
source_rate=$(printf '%s\n' "${peer[@]}" | median)
echo "queue_run_rate $run_rate jobs/s"
echo "smtp_source_rate $source_rate msgs/s"

# 3. DSNs.
dsn_us=$(timeout 300 "$qb" dsn 20000 10240)
echo "dsn_build_time $dsn_us us"
config=$(site dsn)
# The original is over the default message_size_limit (50 MiB) with its
# headers: allow it, as a site with a larger limit would.
sed -i '1i message_size_limit = 104857600' "$config"
printf 'From: alice@example.org\nSubject: big\n\n' > "$work/big.eml"
head -c $((50 * 1024 * 1024)) /dev/zero | tr '\0' 'x' | fold -w 76 >> "$work/big.eml"
POSTERN_CONFIG=$config "$receiver" -f alice@example.org -- bob@example.net < "$work/big.eml" \
    | sed -e '0,/^recipient: /s//ret: FULL\nrecipient: /' \
          -e '0,/^  status: pending$/s//  status: failed 5.1.1/' > "$work/big.job"
rss=()
for _ in 1 2 3; do
    read -r _ k < <(POSTERN_CONFIG=$config measure timeout 120 "$bouncer" < "$work/big.job")
    rss+=("$k")
done
dsn_mb=$(printf '%s\n' "${rss[@]}" | median | awk '{ printf "%.1f", $1 / 1024 }')
echo "bouncer_peak_rss_50mb_original $dsn_mb MB"

r=$(ratio "$run_rate" "$source_rate")
echo "--- targets (issue 10)"
echo "idle run of $big jobs: ${idle_secs}s (< 1 s: $(at_most "$idle_secs" 1)), ${idle_mb} MB (< 50 MB: $(at_most "$idle_mb" 50))"
echo "queue run vs smtp-source, $due x 10 KB: $r (>= 0.5: $(at_least "$r" 0.5))"
echo "DSN build: ${dsn_us} us per notice; bouncer peak RSS with a 50 MB RET=FULL original: ${dsn_mb} MB"
