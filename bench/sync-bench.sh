#!/bin/bash
# postern-alias sync in numbers (make bench-sync). One `name value unit`
# line per figure on stdout, then the ratios against the targets of issue
# 13; progress on stderr. Every figure is the median of three runs, and
# every ratio compares figures of this same run.
#
# A team of N (BENCH_SYNC_N, 2500) members on the fake Launchpad
# (tests/fixtures/launchpad.py) answering each request after 20 ms
# (BENCH_SYNC_LATENCY_MS), two ways:
#   full     the members pages carry whole person entries, as Launchpad's
#            do: ceil(N/300) requests, read one after the other;
#   minimal  the pages carry names only, so every person is fetched:
#            N more requests, sync.concurrency at a time: 8 (the
#            default) and 16.
# For each: (a) the baseline, bench/launchpad-fetch.py making the same
# requests with the same concurrency and nothing else; (b) a full sync
# into an empty alias store (N aliases created, one transaction); (c) a
# run with nothing to change. Targets: (b) under 15 s and (c) under 5 s
# with the person fetches (minimal); peak RSS of (b) reported.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/bench/lib.sh"
n=${BENCH_SYNC_N:-2500}
latency=${BENCH_SYNC_LATENCY_MS:-20}
release=${CARGO_TARGET_DIR:-$repo/target}/release
alias=$release/postern-alias

fail() { echo "sync-bench.sh: $*" >&2; exit 1; }
[ -x "$alias" ] || fail "$alias missing: build it first (make build)"
[ -x /usr/bin/time ] || fail "/usr/bin/time missing (make deps: time)"
command -v python3 >/dev/null || fail "python3 missing (make deps)"

work=$(mktemp -d /tmp/postern-sync-bench-XXXXXX)
lp_pid=
cleanup() {
    [ -n "$lp_pid" ] && { kill "$lp_pid" 2>/dev/null; wait "$lp_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

start_launchpad() { # ENTRIES
    [ -n "$lp_pid" ] && { kill "$lp_pid" 2>/dev/null; wait "$lp_pid" 2>/dev/null || true; }
    rm -f "$work/port"
    printf '{"latency_ms": %d, "entries": "%s", "generate": {"big-team": {"members": %d, "prefix": "member"}}}\n' \
        "$latency" "$1" "$n" >"$work/state.json"
    python3 "$repo/tests/fixtures/launchpad.py" "$work/state.json" "$work/port" </dev/null >/dev/null 2>&1 &
    lp_pid=$!
    for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || fail "the fake Launchpad wrote no port"
    base="http://127.0.0.1:$(cat "$work/port")/1.0"
}

site() { # DIR CONCURRENCY: a config and an alias store with the domain, no admins
    local d=$1 c=$2
    rm -rf "$d"; mkdir -p "$d"
    cat >"$d/postern.toml" <<TOML
hostname = "bench.example"
log = "none"
[aliases]
store = "$d/aliases.db"
[sync]
launchpad_url = "$base"
notify = "none"
max_disable = 0
concurrency = $c
[sync.teams]
"team.example" = "~big-team"
TOML
    POSTERN_CONFIG=$d/postern.toml "$alias" domain add --verified team.example >/dev/null
}

# Runs `postern-alias sync` on DIR; prints "ms rss_kb".
timed_sync() {
    local d=$1 t0 t1
    t0=$(now_ms)
    POSTERN_CONFIG=$d/postern.toml /usr/bin/time -f '%M' -o "$d/rss" "$alias" sync >"$d/out" 2>"$d/err" ||
        fail "sync failed: $(cat "$d/err" "$d/out")"
    t1=$(now_ms)
    echo "$((t1 - t0)) $(tail -1 "$d/rss")"
}

report() { echo "$1 $2 $3"; }

for pass in full:8 minimal:8 minimal:16; do
    entries=${pass%:*} c=${pass#*:}
    echo "sync-bench: $n members, entries $entries, ${latency} ms per request, concurrency $c" >&2
    start_launchpad "$entries"
    base_ms=() full_ms=() full_rss=() same_ms=() reqs=()
    for run in 1 2 3; do
        t0=$(now_ms)
        r=$(python3 "$repo/bench/launchpad-fetch.py" "$base" big-team "$c")
        t1=$(now_ms)
        base_ms+=($((t1 - t0)))
        reqs+=("$r")
        site "$work/site$run" "$c"
        read -r ms rss < <(timed_sync "$work/site$run")
        grep -q "$n member(s), $n created" "$work/site$run/out" ||
            fail "the full sync did not create $n aliases: $(cat "$work/site$run/out")"
        full_ms+=("$ms"); full_rss+=("$rss")
        read -r ms _ < <(timed_sync "$work/site$run")
        grep -q "0 created, 0 changed, 0 disabled, 0 enabled again, $n unchanged" "$work/site$run/out" ||
            fail "the second run changed something: $(cat "$work/site$run/out")"
        same_ms+=("$ms")
        echo "  run $run: baseline ${base_ms[-1]} ms, full ${full_ms[-1]} ms, no change $ms ms" >&2
    done
    b=$(printf '%s\n' "${base_ms[@]}" | median)
    f=$(printf '%s\n' "${full_ms[@]}" | median)
    s=$(printf '%s\n' "${same_ms[@]}" | median)
    rss=$(printf '%s\n' "${full_rss[@]}" | median)
    rq=${reqs[0]}
    entries=${entries}_c$c
    report "sync_${entries}_requests" "$rq" requests
    report "sync_${entries}_baseline_fetch" "$b" ms
    report "sync_${entries}_full" "$f" ms
    report "sync_${entries}_no_change" "$s" ms
    report "sync_${entries}_requests_per_second" "$(awk -v r="$rq" -v t="$f" 'BEGIN { printf "%.0f", r * 1000 / t }')" req/s
    report "sync_${entries}_peak_rss" "$rss" KB
    report "sync_${entries}_full_vs_baseline" "$(ratio "$f" "$b")" x
    report "sync_${entries}_no_change_vs_baseline" "$(ratio "$s" "$b")" x
    if [ "$entries" = minimal_c8 ]; then
        echo "target: full sync under 15 s with a fetch per person: $(at_most "$(ratio "$f" 15000)" 1) ($f ms)"
        echo "target: no-change run under 5 s with a fetch per person: $(at_most "$(ratio "$s" 5000)" 1) ($s ms)"
    fi
    if [ "$entries" = full_c8 ]; then
        echo "target: full sync under 15 s, Launchpad's page shape: $(at_most "$(ratio "$f" 15000)" 1) ($f ms)"
        echo "target: no-change run under 5 s, Launchpad's page shape: $(at_most "$(ratio "$s" 5000)" 1) ($s ms)"
    fi
    if [ "$entries" = minimal_c16 ]; then
        echo "target: no-change run under 5 s with a fetch per person, concurrency 16: $(at_most "$(ratio "$s" 5000)" 1) ($s ms)"
    fi
done
