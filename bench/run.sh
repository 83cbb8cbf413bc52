#!/bin/bash
# make bench: what postern costs behind Postfix, measured in one run.
#
# smtp-source -> private Postfix -> smtp-sink (tests/fixtures/postfix.sh),
# through four listeners of the same instance, interleaved run by run:
#   baseline  Postfix alone, no content filter
#   postern   content_filter=postern: postern-receiver | postern-scanner |
#             postern-rewriter | postern-encryptor | postern-deliverer,
#             reinjected over SMTP (contrib/postfix); the scanner asks the
#             fixture's private clamd about every message (smtp-source's
#             messages are alike, so clamd answers most from its cache) and
#             skips the sender checks (the client is loopback); the sink
#             has no key, so the encryptor passes every message after one
#             (cached) keyring lookup
#   norewrite content_filter=posternnorw: the same chain without the
#             rewriter (receiver | scanner | encryptor | deliverer), a second
#             pipe service running DIR/bin/postern-filter-without-rewriter,
#             derived here from contrib/postfix/postern-filter (see
#             derive_two_stage_filter); its own smtpd listener
#   shell     content_filter=simplefilter: Postfix's FILTER_README "simple"
#             shell filter (bench/simple-filter): save to a file, reinject
#             with sendmail -G -i
# Every message goes to alias@bench.example: bench.example is a verified
# domain of the instance's alias store and alias@ forwards to one target,
# sink@example.com, so in the postern chain the rewriter resolves the alias
# and SRS-rewrites the sender (bench@example.org) for every message; the
# other modes relay alias@bench.example unchanged. The rate limits are set
# to 0 (no limit: the runs send far more than a day's default from one
# sender), but every message is still counted in the store.
# Throughput = messages / (first connection of smtp-source .. last message
# accepted by the sink), the end read from Postfix's log. Medians of the
# runs, and each filter's ratio to the baseline; then what the rewriter
# costs the chain: 1 - (postern ratio / norewrite ratio), in %.
#
# Then: start-up + exit time of each binary (--version; hyperfine if
# installed), one 10 KB message through receiver | deliverer straight to
# smtp-sink, and the peak RSS of receiver and deliverer for a 50 MB message.
#
# The shell filter's sendmail runs as the user postern with the instance's
# MAIL_CONFIG; postdrop accepts that only for a directory listed in
# alternate_config_directories of the system's /etc/postfix/main.cf. This
# script adds the line for the run and puts the file back as it was when
# it ends (also on Ctrl-C or timeout).
#
# Environment: BENCH_MESSAGES (1000), BENCH_RUNS (5), BENCH_SIZES (message
# sizes in bytes, "10240 2048": small messages show per-message latency),
# BENCH_SESSIONS (4), BENCH_BIG (50000000), BENCH_TIME_LIMIT (seconds, 480).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixture=$repo/tests/fixtures/postfix.sh
messages=${BENCH_MESSAGES:-1000}
runs=${BENCH_RUNS:-5}
sizes=${BENCH_SIZES:-10240 2048}
sessions=${BENCH_SESSIONS:-4}
big=${BENCH_BIG:-50000000}
time_limit=${BENCH_TIME_LIMIT:-480}
system_main_cf=/etc/postfix/main.cf

[[ $(id -u) == 0 ]] || { echo "bench: must run as root (it starts a private Postfix)" >&2; exit 1; }
for b in postern-receiver postern-scanner postern-rewriter postern-encryptor postern-deliverer; do
    [[ -x $repo/target/release/$b ]] || { echo "bench: $repo/target/release/$b missing (make build)" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/postern-bench-XXXXXX)
main_cf_state=untouched

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    bash "$fixture" stop "$dir" || true
    case $main_cf_state in
    created) rm -f "$system_main_cf" ;;
    saved) cp -p "$dir/system-main.cf" "$system_main_cf" ;;
    esac
    rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

over_time() { ((SECONDS >= time_limit)); }

echo "bench: private Postfix in $dir ($messages messages of $sizes bytes, $sessions sessions, $runs runs per mode)"
SINK_DUMP=0 POSTERN_BINDIR=$repo/target/release bash "$fixture" start "$dir"
# shellcheck disable=SC1091
. "$dir/ports"

# derive_two_stage_filter IN OUT: contrib's postern-filter without the
# rewriter stage. Three edits, each checked to apply exactly once (a change
# of shape in contrib/postfix/postern-filter stops the bench instead of
# measuring something else): the rewriter leaves the stages and tags
# arrays and the pipeline (the script counts exit statuses by the stages).
derive_two_stage_filter() {
    local in=$1 out=$2 changed
    sed -e '/^stages=(postern-receiver postern-scanner postern-rewriter postern-encryptor postern-deliverer)$/s/ postern-rewriter//' \
        -e '/^tags=(r s w e d)$/s/ w//' \
        -e '/^ *POSTERN_STATUS_TAG=w "\$bindir\/postern-rewriter" 2>&3 3>&- |$/d' \
        "$in" >"$out"
    changed=$(diff "$in" "$out" | grep -c '^[<>]' || true)
    # 2 lines changed (< and > each) and 1 deleted: 5 diff lines.
    if [[ $changed != 5 ]] || grep -v '^#' "$out" | grep -q 'rewriter\|tags=(r s w e d)' ||
        ! grep -q '\${#codes\[@\]} -ne \${#stages\[@\]}' "$out" ||
        ! bash -n "$out"; then
        echo "bench: cannot derive the filter without the rewriter from $in (its shape changed; see derive_two_stage_filter)" >&2
        diff "$in" "$out" >&2 || true
        return 1
    fi
    chmod 755 "$out"
}

# The fourth mode: a pipe service running the two-stage filter and an
# smtpd listener that uses it, like the fixture's SHELL_PORT one.
norewrite_port=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
derive_two_stage_filter "$dir/bin/postern-filter" "$dir/bin/postern-filter-without-rewriter"
postern_service=$(postconf -c "$dir/etc" -M postern/unix | sed 's/^postern[[:space:]]/posternnorw /')
postern_service=${postern_service/\/postern-filter /\/postern-filter-without-rewriter }
[[ $postern_service == *postern-filter-without-rewriter* ]] || { echo "bench: no postern pipe service in master.cf" >&2; exit 1; }
postconf -c "$dir/etc" -M \
    "posternnorw/unix=$postern_service" \
    "127.0.0.1:$norewrite_port/inet=127.0.0.1:$norewrite_port inet n - n - - smtpd"
postconf -c "$dir/etc" -P \
    "127.0.0.1:$norewrite_port/inet/content_filter=posternnorw:dummy" \
    "127.0.0.1:$norewrite_port/inet/syslog_name=postfix/norewrite"
# The alias every message goes to, and no rate limits (see the top).
bash "$fixture" set "$dir" 'rewriter.messages_per_day_per_domain = 0'
bash "$fixture" set "$dir" 'rewriter.messages_per_day_per_sender = 0'
bash "$fixture" alias "$dir" domain add --verified bench.example >/dev/null
bash "$fixture" alias "$dir" alias add alias@bench.example sink@example.com >/dev/null
timeout 60 postfix -c "$dir/etc" reload >/dev/null 2>&1
for _ in $(seq 100); do
    ss -ltnH "sport = :$norewrite_port" 2>/dev/null | grep -q . && break
    sleep 0.1
done
ss -ltnH "sport = :$norewrite_port" | grep -q . || { echo "bench: nothing listens on $norewrite_port after reload" >&2; exit 1; }

# Let the shell filter's sendmail (as user postern) use this instance.
if [[ -e $system_main_cf ]]; then
    cp -p "$system_main_cf" "$dir/system-main.cf"
    main_cf_state=saved
    previous=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null || true)
else
    mkdir -p /etc/postfix
    main_cf_state=created
    previous=
fi
echo "alternate_config_directories = ${previous:+$previous, }$dir/etc" >>"$system_main_cf"

maillog=$dir/log/maillog
sink_pattern="relay=127.0.0.1\\[127.0.0.1\\]:$SINK_PORT, .*status=sent"

delivered_since() {
    tail -c "+$(($1 + 1))" "$maillog" | grep -c -- "$sink_pattern" || true
}

# run_once PORT: prints msgs/s, or fails.
run_once() {
    local port=$1 offset t0 t1 n=0 deadline
    offset=$(stat -c %s "$maillog")
    t0=$(date +%s%N)
    timeout 300 smtp-source -s "$sessions" -m "$messages" -l "$size" \
        -f bench@example.org -t alias@bench.example "127.0.0.1:$port" >/dev/null
    deadline=$((SECONDS + 300))
    while :; do
        n=$(delivered_since "$offset")
        ((n >= messages)) && break
        if ((SECONDS > deadline)); then
            echo "bench: only $n of $messages delivered after 300s through port $port" >&2
            return 1
        fi
        sleep 0.05
    done
    t1=$(date +%s%N)
    # Wait for Postfix to settle before the next run (bounded).
    for _ in $(seq 100); do
        postqueue -c "$dir/etc" -p | grep -q '^Mail queue is empty' && break
        sleep 0.1
    done
    awk -v n="$messages" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f\n", n / (ns / 1e9) }'
}

# message BYTES: a message of about BYTES bytes, CRLF line ends, body lines
# of 76 characters as in base64.
message() {
    awk -v total="$1" 'BEGIN {
        h = "From: bench@example.org\r\nTo: sink@example.com\r\nSubject: bench\r\n" \
            "Message-ID: <bench@example.org>\r\nDate: Sun, 23 Nov 2025 10:00:00 +0000\r\n\r\n"
        printf "%s", h
        line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0"
        for (n = length(h); n < total; n += 78) printf "%s\r\n", line
    }'
}

median() {
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

modes=(baseline postern norewrite shell)
declare -A port=([baseline]=$BASELINE_PORT [postern]=$FILTERED_PORT [norewrite]=$norewrite_port [shell]=$SHELL_PORT)
declare -A label=([baseline]="Postfix alone" [postern]="Postfix + postern" [norewrite]="postern w/o rewriter" [shell]="Postfix + shell filter")

# One warm-up message per mode: first runs pay for process start-up.
for mode in "${modes[@]}"; do
    messages=4 size=1000 run_once "${port[$mode]}" >/dev/null
done

tables=
for size in $sizes; do
    declare -A results=()
    for ((r = 1; r <= runs; r++)); do
        for mode in "${modes[@]}"; do
            if over_time; then
                echo "bench: time limit of ${time_limit}s reached; reporting the runs so far" >&2
                break 2
            fi
            rate=$(run_once "${port[$mode]}")
            results[$mode]+="$rate "
            printf 'size %6d run %d %-9s %8s msgs/s\n' "$size" "$r" "$mode" "$rate"
        done
    done
    tables+=$(
        echo
        echo "Throughput, $messages messages of $size bytes per run, $sessions smtp-source sessions, $(nproc) CPUs"
        printf '%-24s %-44s %8s %9s\n' "mode" "msgs/s per run" "median" "vs alone"
        base=$(echo "${results[baseline]:-}" | median)
        for mode in "${modes[@]}"; do
            med=$(echo "${results[$mode]:-}" | median)
            ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
            printf '%-24s %-44s %8s %9s\n' "${label[$mode]}" "${results[$mode]:-}" "$med" "$ratio"
            declare "ratio_$mode=$ratio" "median_$mode=$med"
        done
        # Both ratios share the baseline: the drop is 1 - postern / norewrite
        # (from the medians, not the rounded ratios).
        # shellcheck disable=SC2154
        awk -v with="$median_postern" -v without="$median_norewrite" \
            -v rwith="$ratio_postern" -v rwithout="$ratio_norewrite" 'BEGIN {
            if (with + 0 > 0 && without + 0 > 0)
                printf "The rewriter costs the chain %.1f %% (ratio to Postfix alone %s with it, %s without; target: at most 15 %%)\n",
                    (1 - with / without) * 100, rwith, rwithout
            else print "Cost of the rewriter: n/a" }'
    )$'\n'
    unset results
done

# Every message must have gone through its filter: check the pipe(8) lines.
filtered=$(grep -c ' relay=postern, .*status=sent' "$maillog" || true)
norewrite=$(grep -c ' relay=posternnorw, .*status=sent' "$maillog" || true)
shelled=$(grep -c ' relay=simplefilter, .*status=sent' "$maillog" || true)
problems=$(grep -cE 'status=(deferred|bounced)' "$maillog" || true)
printf '%s' "$tables"
echo "(pipe(8) runs: postern $filtered, postern w/o rewriter $norewrite, shell filter $shelled; deferred or bounced: $problems)"

# ---- start-up and one message --------------------------------------------
cat >"$dir/direct.toml" <<EOF
hostname = "bench.postern.test"
log = "none"
[spool]
directory = "$dir/direct-spool"
key_file = "$dir/spool.key"
[relay]
host = "127.0.0.1"
port = $SINK_PORT
EOF
install -d -m 700 "$dir/direct-spool"
one_message=()
for size in $sizes; do
    message "$size" >"$dir/$size.eml"
    cat >"$dir/one-message-$size" <<EOF
#!/bin/sh
export POSTERN_CONFIG=$dir/direct.toml
exec $dir/bin/postern-receiver -f bench@example.org -- sink@example.com <$dir/$size.eml | $dir/bin/postern-deliverer
EOF
    chmod 755 "$dir/one-message-$size"
    one_message+=("$dir/one-message-$size")
done

echo
echo "Start-up + exit (--version), and one message (one-message-BYTES) through receiver | deliverer -> smtp-sink:"
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 20 --runs 300 --export-csv "$dir/startup.csv" \
        "$dir/bin/postern-receiver --version" "$dir/bin/postern-deliverer --version" >/dev/null 2>&1
    hyperfine -N --warmup 5 --runs 50 --export-csv "$dir/one.csv" "${one_message[@]}" >/dev/null 2>&1
    # CSV columns: command,mean,stddev,median,user,system,min,max (seconds)
    awk -F, 'FNR > 1 { n = split($1, p, "/"); printf "  %-32s median %7.2f ms  (min %.2f, max %.2f)\n", p[n], $4 * 1000, $7 * 1000, $8 * 1000 }' \
        "$dir/startup.csv" "$dir/one.csv"
else
    for cmd in "$dir/bin/postern-receiver --version" "$dir/bin/postern-deliverer --version" "${one_message[@]}"; do
        times=()
        for _ in $(seq 100); do
            t0=$(date +%s%N)
            $cmd >/dev/null
            t1=$(date +%s%N)
            times+=("$(((t1 - t0) / 1000))")
        done
        printf '  %-32s median %7.2f ms  (loop of 100 with date; install hyperfine for better numbers)\n' \
            "${cmd##*/}" "$(printf '%s\n' "${times[@]}" | median | awk '{ print $1 / 1000 }')"
    done
fi

# ---- memory for a big message --------------------------------------------
bigfile=$dir/big.eml
message "$big" >"$bigfile"
bytes=$(stat -c %s "$bigfile")
echo
echo "Peak RSS for one message of $bytes bytes, receiver | deliverer -> smtp-sink (/usr/bin/time -v):"
t0=$(date +%s%N)
set +e
POSTERN_CONFIG=$dir/direct.toml /usr/bin/time -v -o "$dir/rss.receiver" \
    "$dir/bin/postern-receiver" -f bench@example.org -- sink@example.com <"$bigfile" |
    POSTERN_CONFIG=$dir/direct.toml /usr/bin/time -v -o "$dir/rss.deliverer" "$dir/bin/postern-deliverer"
statuses=("${PIPESTATUS[@]}")
set -e
t1=$(date +%s%N)
rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
r_kb=$(rss "$dir/rss.receiver")
d_kb=$(rss "$dir/rss.deliverer")
awk -v r="$r_kb" -v d="$d_kb" -v b="$bytes" -v ns="$((t1 - t0))" -v rs="${statuses[0]}" -v ds="${statuses[1]}" 'BEGIN {
    printf "  postern-receiver   %8.1f MB  %.2f x message  (exit %s)\n", r / 1024, r * 1024 / b, rs
    printf "  postern-deliverer  %8.1f MB  %.2f x message  (exit %s)\n", d / 1024, d * 1024 / b, ds
    printf "  both (sum)         %8.1f MB  %.2f x message  in %.2f s\n", (r + d) / 1024, (r + d) * 1024 / b, ns / 1e9
}'
echo
echo "bench: done in ${SECONDS}s"
