#!/bin/bash
# postern-scanner in numbers (make bench-scanner). One `name value unit`
# line per figure on stdout, then the ratios against the targets of issue
# 12; progress on stderr. Every figure is the median of three runs, the
# three ways of scanning take turns within each run, and every ratio
# compares figures of this same run.
#
# N (BENCH_SCAN_N, 1000) clean messages of about 10 KB of text and one
# 100 KiB PDF-looking attachment (base64), each one different so that
# clamd's cache of clean files never answers for it
# (examples/scanner-bench-jobs.rs), scanned by one private clamd: its own
# clamd.conf, TCP on a free loopback port, StreamMaxLength 25M, and a
# one-signature database (EICAR, .ndb) written here, as in
# lib/tests/clamd/mod.rs; freshclam never runs. clamd logs every clean
# scan (LogClean), so each run is checked to have made N scans.
#   (a) `clamdscan --stream --no-summary` once per message from a shell
#       loop (the way a shell filter calls ClamAV);
#   (b) examples/zinstream-bare.rs: the bytes alone over zINSTREAM, a new
#       connection per message, 64 KiB chunks (the ceiling of any client);
#   (c) postern-scanner over one job stream of the same N messages, with
#       SPF and DMARC on against a private dnsmasq (SPF and DMARC records
#       for example.org, TTL 300 s) and client-address 192.0.2.10 in every
#       job. Targets: at least 0.8x (b) and at least 5x (a).
#   (d) one message of about 25 MB in 500 MIME parts through
#       postern-scanner with clamd and the sender checks off: the process's
#       wall time minus that of an empty job stream (the walk; target under
#       200 ms) and its peak RSS (target under 3x the message).
#
# BENCH_SCAN_ONLY=baselines measures (a) and (b) only, for a machine
# without postern-scanner.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_SCAN_N:-1000}
only=${BENCH_SCAN_ONLY:-}
release=${CARGO_TARGET_DIR:-$repo/target}/release
scanner=$release/postern-scanner
clamd=/usr/sbin/clamd
dnsmasq=/usr/sbin/dnsmasq

fail() { echo "scanner-bench.sh: $*" >&2; exit 1; }
case $only in
    '') [ -x "$scanner" ] || fail "$scanner missing: build postern-scanner first (make build);" \
        "BENCH_SCAN_ONLY=baselines measures clamdscan and the bare zINSTREAM client without it" ;;
    baselines) ;;
    *) fail "BENCH_SCAN_ONLY=$only: the only value is 'baselines'" ;;
esac
[ -x "$clamd" ] || fail "$clamd missing (make deps: clamav-daemon)"
command -v clamdscan >/dev/null || fail "clamdscan missing (make deps: clamdscan)"
[ -x "$dnsmasq" ] || [ "$only" = baselines ] || fail "$dnsmasq missing (make deps: dnsmasq-base)"
[ -x /usr/bin/time ] || fail "/usr/bin/time missing (make deps: time)"
command -v python3 >/dev/null || fail "python3 missing (make deps)"

work=$(mktemp -d /tmp/postern-scan-bench-XXXXXX)
clamd_pid=
dns_pid=
cleanup() {
    bash "$repo/tests/fixtures/clamd.sh" stop "$work/clamd" 2>/dev/null || true
    for pid in $dns_pid; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Runs a command with its stdout to OUT; its wall seconds (to the
# microsecond) and peak RSS (KB) in $secs and $kb.
measure() {
    local out=$1 start; shift
    start=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$work/time" "$@" >"$out" 2>"$work/stderr" ||
        fail "$* failed: $(tail -3 "$work/stderr")"
    secs=$(since "$start")
    kb=$(tail -1 "$work/time")
}

echo "scanner-bench: building examples/scanner-bench-jobs.rs and zinstream-bare.rs" >&2
(cd "$repo" && timeout 900 cargo build --release --quiet --features bench \
    --example scanner-bench-jobs --example zinstream-bare)
jobs_tool=$release/examples/scanner-bench-jobs
bare=$release/examples/zinstream-bare

echo "scanner-bench: $n messages of 10 KB + a 100 KiB attachment" >&2
"$jobs_tool" messages "$n" "$work/msgs"
"$jobs_tool" jobs "$work/msgs" > "$work/jobs"
msg_kb=$(cat "$work"/msgs/*.eml | wc -c | awk -v n="$n" '{ printf "%.0f", $1 / n / 1024 }')

# The private clamd (tests/fixtures/clamd.sh, the settings of
# contrib/clamav/clamd.conf.postern), logging clean scans so each run can
# be counted. restart_clamd empties its cache of scanned files.
clamd_port=$(free_port)
clamd_conf=$work/clamd/clamd.conf
start_clamd() {
    CLAMD_EXTRA=$'LogClean yes\nLogFileMaxSize 0' \
        bash "$repo/tests/fixtures/clamd.sh" start "$work/clamd" "$clamd_port" ||
        fail "the private clamd did not start"
}
restart_clamd() {
    bash "$repo/tests/fixtures/clamd.sh" stop "$work/clamd"
    start_clamd
}
start_clamd
eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
[ ${#eicar} = 68 ] || fail "the EICAR string is not 68 bytes"
# The EICAR signature works, and one clean message is clean, through both clients.
printf 'From: a@example.org\nSubject: eicar\n\n%s\n' "$eicar" > "$work/eicar.eml"
clamdscan --config-file="$clamd_conf" --stream --no-summary "$work/eicar.eml" >/dev/null 2>&1 &&
    fail "clamdscan did not find EICAR"
"$bare" "127.0.0.1:$clamd_port" "$work/eicar.eml" 2>&1 >/dev/null | grep -q 'found 1$' ||
    fail "zinstream-bare did not find EICAR"
clean_scans() { grep -c -e '): OK$' -e 'stream: OK$' "$work/clamd/clamd.log" || true; }
# Fails unless clamd logged N more clean scans than BEFORE.
check_scans() {
    local what=$1 before=$2 want=${3:-$n} now
    now=$(clean_scans)
    [ $((now - before)) = "$want" ] || fail "$what: clamd logged $((now - before)) clean scans, not $want"
}

# The private DNS for the sender checks.
write_scanner_config() {
    local dns_port
    dns_port=$(free_port)
    cat > "$work/dnsmasq.conf" <<DNS
port=$dns_port
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
log-facility=$work/dnsmasq.log
local-ttl=300
local=/example.org/
local=/2.0.192.in-addr.arpa/
txt-record=example.org,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=mail.example.org,"v=spf1 a -all"
txt-record=_dmarc.example.org,"v=DMARC1; p=none"
host-record=mail.example.org,192.0.2.10
ptr-record=10.2.0.192.in-addr.arpa,mail.example.org
DNS
    # As root dnsmasq would become nobody, who cannot write its log here.
    [ "$(id -u)" != 0 ] || echo "user=root" >> "$work/dnsmasq.conf"
    "$dnsmasq" --keep-in-foreground --conf-file="$work/dnsmasq.conf" --pid-file= \
        >"$work/dnsmasq.out" 2>&1 &
    dns_pid=$!
    for _ in $(seq 200); do
        kill -0 "$dns_pid" 2>/dev/null || fail "dnsmasq exited at start: $(tail -3 "$work/dnsmasq.out")"
        (exec 3<>"/dev/tcp/127.0.0.1/$dns_port") 2>/dev/null && break
        sleep 0.05
    done
    common="hostname = \"bench.example\"
log = \"file\"
log_file = \"$work/postern.log\"
message_size_limit = 60000000
[dns]
nameservers = [\"127.0.0.1:$dns_port\"]"
    cat > "$work/scanner.toml" <<TOML
$common
[scanner]
clamd = "127.0.0.1:$clamd_port"
clamd_max_stream = 26214400
spf = true
dmarc = true
TOML
    cat > "$work/walk.toml" <<TOML
$common
[scanner]
clamd = ""
spf = false
dmarc = false
TOML
}

if [ "$only" != baselines ]; then
    write_scanner_config
    # This pass also fills clamd's cache of clean files: every timed scan
    # of (a) to (c) is then a cache hit for all three alike, so they
    # compare what each client costs around clamd; (e) measures with the
    # cache empty, clamd scanning for real.
    echo "scanner-bench: checking postern-scanner on the $n jobs (untimed)" >&2
    before=$(clean_scans)
    POSTERN_CONFIG=$work/scanner.toml measure "$work/check.out" timeout 600 "$scanner" < "$work/jobs"
    got=$(grep -c '^postern-job ' "$work/check.out" || true)
    [ "$got" = "$n" ] || fail "postern-scanner passed on $got of the $n clean jobs"
    check_scans "postern-scanner" "$before"
fi

# (a) clamdscan once per message.
clamdscan_loop() {
    local f start rc dir=${1:-$work/msgs}
    start=$EPOCHREALTIME
    for f in "$dir"/*.eml; do
        rc=0
        clamdscan --config-file="$clamd_conf" --stream --no-summary "$f" >/dev/null 2>"$work/clamdscan.err" || rc=$?
        [ "$rc" = 0 ] || fail "clamdscan $f: exit $rc: $(tail -2 "$work/clamdscan.err")"
    done
    since "$start"
}

loop=(); bare_rates=(); scan_rates=(); scan_rss=()
for run in 1 2 3; do
    echo "scanner-bench: run $run: clamdscan loop, bare zINSTREAM$([ "$only" = baselines ] || echo ', postern-scanner') ($n each)" >&2
    before=$(clean_scans)
    s=$(clamdscan_loop); loop+=("$(rate "$n" "$s")")
    check_scans "clamdscan loop" "$before"
    before=$(clean_scans)
    r=$(timeout 600 "$bare" "127.0.0.1:$clamd_port" "$work/msgs" 2>"$work/bare.err") ||
        fail "zinstream-bare failed: $(tail -2 "$work/bare.err")"
    bare_rates+=("$r")
    check_scans "zinstream-bare" "$before"
    if [ "$only" != baselines ]; then
        before=$(clean_scans)
        POSTERN_CONFIG=$work/scanner.toml measure /dev/null timeout 600 "$scanner" < "$work/jobs"
        scan_rates+=("$(rate "$n" "$secs")"); scan_rss+=("$kb")
        check_scans "postern-scanner" "$before"
    fi
done
loop_rate=$(printf '%s\n' "${loop[@]}" | median)
bare_rate=$(printf '%s\n' "${bare_rates[@]}" | median)
echo "message_size $msg_kb KB"
echo "clamdscan_loop_rate $loop_rate msgs/s"
echo "zinstream_bare_rate $bare_rate msgs/s"
if [ "$only" = baselines ]; then
    echo "--- targets (issue 12): not measured (BENCH_SCAN_ONLY=baselines, no postern-scanner)"
    echo "bare zINSTREAM vs clamdscan loop: $(ratio "$bare_rate" "$loop_rate")"
    exit 0
fi
scan_rate=$(printf '%s\n' "${scan_rates[@]}" | median)
scan_mb=$(printf '%s\n' "${scan_rss[@]}" | median | awk '{ printf "%.1f", $1 / 1024 }')
echo "scanner_rate $scan_rate msgs/s"
echo "scanner_peak_rss $scan_mb MB"

# (e) clamd scanning for real: its cache emptied before each way, the
# first M messages scanned once each, so every scan is a miss.
m=${BENCH_SCAN_COLD_N:-200}
mkdir "$work/cold"
# Copies: clamdscan skips symbolic links.
for f in $(printf '%s\n' "$work"/msgs/*.eml | head -n "$m"); do cp "$f" "$work/cold/"; done
"$jobs_tool" jobs "$work/cold" > "$work/cold.jobs"
echo "scanner-bench: clamd's cache empty: clamdscan loop, bare zINSTREAM, postern-scanner ($m each)" >&2
restart_clamd
before=$(clean_scans)
cold_loop=$(rate "$m" "$(clamdscan_loop "$work/cold")")
check_scans "clamdscan loop, cache empty" "$before" "$m"
restart_clamd
before=$(clean_scans)
cold_bare=$(timeout 600 "$bare" "127.0.0.1:$clamd_port" "$work/cold" 2>"$work/bare.err") ||
    fail "zinstream-bare failed: $(tail -2 "$work/bare.err")"
check_scans "zinstream-bare, cache empty" "$before" "$m"
restart_clamd
before=$(clean_scans)
POSTERN_CONFIG=$work/scanner.toml measure /dev/null timeout 600 "$scanner" < "$work/cold.jobs"
cold_scan=$(rate "$m" "$secs")
check_scans "postern-scanner, cache empty" "$before" "$m"
echo "cold_clamdscan_loop_rate $cold_loop msgs/s"
echo "cold_zinstream_bare_rate $cold_bare msgs/s"
echo "cold_scanner_rate $cold_scan msgs/s"

# (d) The MIME walk of one 25 MB message of 500 parts.
echo "scanner-bench: a 25 MB message of 500 parts, clamd and sender checks off" >&2
"$jobs_tool" big "$work/big.eml"
"$jobs_tool" jobs "$work/big.eml" > "$work/big.job"
big_bytes=$(stat -c %s "$work/big.eml")
empty=(); big=(); big_rss=()
for run in 1 2 3; do
    echo "scanner-bench: run $run: postern-scanner, an empty stream and the 25 MB message" >&2
    POSTERN_CONFIG=$work/walk.toml measure "$work/empty.out" timeout 60 "$scanner" < /dev/null
    empty+=("$secs")
    POSTERN_CONFIG=$work/walk.toml measure "$work/big.out" timeout 300 "$scanner" < "$work/big.job"
    got=$(grep -c '^postern-job ' "$work/big.out" || true)
    [ "$got" = 1 ] || fail "postern-scanner did not pass the 25 MB message on"
    big+=("$secs"); big_rss+=("$kb")
done
empty_secs=$(printf '%s\n' "${empty[@]}" | median)
big_secs=$(printf '%s\n' "${big[@]}" | median)
big_kb=$(printf '%s\n' "${big_rss[@]}" | median)
walk_ms=$(awk -v b="$big_secs" -v e="$empty_secs" 'BEGIN { printf "%.0f", (b - e) * 1000 }')
msg_mb=$(awk -v b="$big_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
big_mb=$(awk -v k="$big_kb" 'BEGIN { printf "%.1f", k / 1024 }')
echo "big_message_size $msg_mb MB"
echo "scanner_empty_stream_seconds $empty_secs s"
echo "scanner_big_seconds $big_secs s"
echo "scanner_big_walk $walk_ms ms"
echo "scanner_big_peak_rss $big_mb MB"

r_bare=$(ratio "$scan_rate" "$bare_rate")
r_loop=$(ratio "$scan_rate" "$loop_rate")
r_rss=$(ratio "$big_kb" "$(awk -v b="$big_bytes" 'BEGIN { print b / 1024 }')")
echo "--- targets (issue 12)"
echo "scanner vs bare zINSTREAM, $n messages: $r_bare (>= 0.8: $(at_least "$r_bare" 0.8))"
echo "scanner vs clamdscan loop: $r_loop (>= 5: $(at_least "$r_loop" 5))"
echo "with clamd's cache empty (one run, $m messages; for information): scanner vs bare $(ratio "$cold_scan" "$cold_bare"), vs the loop $(ratio "$cold_scan" "$cold_loop")"
echo "${msg_mb} MB, 500 parts: walk ${walk_ms} ms (< 200: $(at_most "$walk_ms" 199)), peak RSS ${big_mb} MB = $r_rss x its size (< 3: $(at_most "$r_rss" 2.99))"
