#!/bin/bash
# postern-rewriter with 1,000,000 aliases, and its SRS peers, in one run
# (make bench-rewriter). One `name value unit` line per figure on stdout,
# then the ratios against the targets of issue 9; progress on stderr.
#
#   1. examples/rewriter-bench.rs: builds a store of DOMAINS x PER_DOMAIN
#      exact aliases, then alias lookup p50/p99/max (target p99 < 100 us)
#      and Rewriter::rewrite in process (recipients/s), and writes a job
#      stream of STREAM_JOBS jobs (outside sender, one alias recipient).
#   2. The binary: postern-rewriter -c CONFIG < jobs > /dev/null, wall
#      time, median of 3 -> recipients/s through one process (SRS of the
#      sender and the rate-limit counters included).
#   3. bench/srs-bench.sh in the same run: postern-srs and srslib
#      (forward+reverse pairs/s, target >= 5x) and postsrsd 1.10 answering
#      STREAM_JOBS forward requests one at a time over tcp_table, as
#      Postfix asks (target: the rewriter binary >= 2x postsrsd).
#
# Environment: BENCH_REWRITER_DOMAINS (100), BENCH_REWRITER_PER_DOMAIN
# (10000), BENCH_REWRITER_LOOKUPS (200000), BENCH_REWRITER_JOBS (50000,
# in process), BENCH_REWRITER_STREAM_JOBS (100000, also the postsrsd
# request count). Needs the srslib venv (bash tests/interop/install.sh)
# and postsrsd (make deps). Every step is under `timeout`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
domains=${BENCH_REWRITER_DOMAINS:-100}
per_domain=${BENCH_REWRITER_PER_DOMAIN:-10000}
lookups=${BENCH_REWRITER_LOOKUPS:-200000}
jobs=${BENCH_REWRITER_JOBS:-50000}
stream_jobs=${BENCH_REWRITER_STREAM_JOBS:-100000}
rewriter=$repo/target/release/postern-rewriter

[ -x "$rewriter" ] || { echo "rewriter-bench.sh: $rewriter missing (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/postern-rewriter-bench-XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# figure NAME: the value of NAME in $work/figures.
figure() { awk -v n="$1" '$1 == n { print $2; exit }' "$work/figures"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r + 0 >= t) ? "met" : "MISSED" }'; }

echo "rewriter-bench: building examples/rewriter-bench.rs" >&2
(cd "$repo" && timeout 900 cargo build --release --quiet --features bench --example rewriter-bench)

echo "rewriter-bench: store of $((domains * per_domain)) aliases, lookups, stage in process" >&2
timeout 600 "$repo/target/release/examples/rewriter-bench" "$work/run" \
    "$domains" "$per_domain" "$lookups" "$jobs" "$stream_jobs" | tee "$work/figures"

config=$(figure config_file)
jobfile=$(figure jobs_file)
echo "rewriter-bench: postern-rewriter < $stream_jobs jobs, 3 runs" >&2
rates=()
for run in 1 2 3; do
    t0=$(date +%s%N)
    timeout 300 "$rewriter" -c "$config" <"$jobfile" >/dev/null
    t1=$(date +%s%N)
    rates+=("$(awk -v n="$stream_jobs" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')")
    echo "rewriter-bench: run $run: ${rates[-1]} recipients/s" >&2
done
binary=$(printf '%s\n' "${rates[@]}" | median)
echo "binary_recipients $binary recipients/s (runs: ${rates[*]})"

echo "rewriter-bench: bench/srs-bench.sh (postsrsd: $stream_jobs requests per run)" >&2
BENCH_SRS_REQUESTS=$stream_jobs timeout 600 bash "$repo/bench/srs-bench.sh" >"$work/srs"
postern_srs=$(awk '$1 == "postern-srs" { print $2 }' "$work/srs")
srslib=$(awk '$1 == "srslib" { print $2 }' "$work/srs")
postsrsd=$(awk '$1 == "postsrsd" { print $2 }' "$work/srs")
echo "postern_srs_pairs $postern_srs pairs/s"
echo "srslib_pairs $srslib pairs/s"
echo "postsrsd_requests $postsrsd requests/s"

p99=$(figure lookup_p99)
vs_postsrsd=$(ratio "$binary" "$postsrsd")
vs_srslib=$(ratio "$postern_srs" "$srslib")
echo
echo "Targets (issue 9), all figures from this run:"
printf '  %-52s %10s  %s\n' \
    "alias lookup p99 (us), target < 100" "$p99" "$(awk -v p="$p99" 'BEGIN { print (p + 0 < 100) ? "met" : "MISSED" }')" \
    "postern-rewriter binary / postsrsd, target >= 2" "$vs_postsrsd" "$(verdict "$vs_postsrsd" 2)" \
    "postern-srs / srslib (forward+reverse), target >= 5" "$vs_srslib" "$(verdict "$vs_srslib" 5)" \
    "in-process stage / postsrsd (for comparison)" "$(ratio "$(figure inprocess_recipients)" "$postsrsd")" "" \
    "in-process, counters off / postsrsd (for comparison)" "$(ratio "$(figure inprocess_uncounted)" "$postsrsd")" ""
