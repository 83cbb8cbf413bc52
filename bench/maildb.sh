#!/bin/bash
# postern-maildb benchmarks (make bench-maildb), measured in one run:
#
#   merge    10,000 sealed 10 KB messages merged into a mailbox in one
#            transaction (unseal + insert + index), encrypted (SQLite3MC
#            chacha20) against its unencrypted twin: the same schema,
#            pragmas and merge code with no page cipher
#            (examples/maildb-bench.rs). Target: within 2x. And against
#            Forward Email's stack, better-sqlite3-multiple-ciphers from
#            Node (bench/maildb-node.js, from tests/interop/node_modules),
#            doing the same inserts (row, FTS5 words, next UID) into an
#            empty mailbox made by postern, same cipher and pragmas, one
#            transaction. Target: postern at least as fast.
#   deliver  `postern-maildb deliver` as one process per 10 KB message
#            against procmail delivering the same messages into a Maildir,
#            both from the same shell loop, both fsyncing each message:
#            procmail fsyncs its file in tmp/ and links it into new/;
#            postern links its unnamed file into new/ and then fsyncs it,
#            which on ext4 commits the name too (directory_fsync = "auto";
#            BENCH_DIRECTORY_FSYNC=always adds the directory's fsync).
#            Target: at least as fast.
#   search   FTS5 search over 100,000 messages in an encrypted mailbox:
#            single words, word pairs, from: plus a word, 4-letter
#            prefixes (which return tens of thousands of hits). Target:
#            median under 50 ms.
#
# Medians of BENCH_RUNS runs (3). On a real disk: BENCH_DIR (default
# bench/run-maildb under the source; /tmp may be a tmpfs, where fsync
# costs nothing). Environment: BENCH_MERGE (10000), BENCH_DELIVER (500),
# BENCH_SEARCH (100000), BENCH_QUERIES (200), BENCH_SIZE (10240).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${BENCH_RUNS:-3}
n_merge=${BENCH_MERGE:-10000}
n_deliver=${BENCH_DELIVER:-500}
n_search=${BENCH_SEARCH:-100000}
n_queries=${BENCH_QUERIES:-200}
size=${BENCH_SIZE:-10240}
work=${BENCH_DIR:-$repo/bench/run-maildb}

cd "$repo"
cargo build --release --quiet --bin postern-maildb --example maildb-bench
maildb=$repo/target/release/postern-maildb
tool=$repo/target/release/examples/maildb-bench

rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n/s}'; }
now() { date +%s.%N; }

echo "== merge: $n_merge sealed messages of $size bytes, one transaction ($runs runs)"
node_ok=
if [ -f tests/interop/node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node ]; then
  node_ok=1
else
  echo "(no Node comparison: run tests/interop/install.sh for better-sqlite3-multiple-ciphers)"
fi
: > "$work/merge.txt"
for r in $(seq "$runs"); do
  d=$work/merge-$r; mkdir -p "$d"
  "$tool" prepare "$n_merge" "$size" "$d"
  sync
  "$tool" merge-prepared encrypted "$d" >> "$work/merge.txt"
  "$tool" merge-prepared plain "$d" >> "$work/merge.txt"
  [ -z "$node_ok" ] || node bench/maildb-node.js "$d/node.sqlite" "$d/messages.bin" "$d/pass" >> "$work/merge.txt"
  rm -rf "$d"
done
enc=$(awk '$2=="encrypted" {print $4}' "$work/merge.txt" | median)
plain=$(awk '$2=="plain" {print $4}' "$work/merge.txt" | median)
echo "encrypted: ${enc}s ($(rate "$n_merge" "$enc")/s)   unencrypted: ${plain}s ($(rate "$n_merge" "$plain")/s)"
echo "ratio encrypted/unencrypted: $(ratio "$enc" "$plain") (target <= 2)"
if [ -n "$node_ok" ]; then
  nd=$(awk '$1=="node" {print $3}' "$work/merge.txt" | median)
  echo "better-sqlite3-multiple-ciphers (Node $(node --version)), same inserts, cipher and pragmas: ${nd}s ($(rate "$n_merge" "$nd")/s)"
  echo "ratio Node time/postern time: $(ratio "$nd" "$enc") (target >= 1)"
fi

echo "== deliver: $n_deliver messages of $size bytes, one process each ($runs runs)"
msg=$work/msg.eml
{
  printf 'From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: bench\n\n'
  head -c $((size * 3)) /dev/urandom | base64 -w 76 | head -c "$size"
  printf '\n'
} > "$msg"
cat > "$work/postern.toml" <<TOML
log = "none"
[maildb]
directory = "$work/mail"
directory_fsync = "${BENCH_DIRECTORY_FSYNC:-auto}"
TOML
export POSTERN_CONFIG=$work/postern.toml
printf 'benchmark passphrase\n' > "$work/pass"; chmod 600 "$work/pass"
command -v procmail > /dev/null || { echo "procmail not installed (apt-get install procmail)"; exit 1; }
: > "$work/deliver.txt"
for r in $(seq "$runs"); do
  rm -rf "$work/mail" "$work/Maildir"; mkdir -p "$work/mail"
  "$maildb" -u bob --passphrase-file "$work/pass" init
  printf 'DEFAULT=%s/Maildir/\nLOGFILE=/dev/null\n' "$work" > "$work/procmailrc"
  sync
  t0=$(now)
  for _ in $(seq "$n_deliver"); do "$maildb" deliver bob < "$msg"; done
  t1=$(now)
  for _ in $(seq "$n_deliver"); do procmail -m "$work/procmailrc" < "$msg"; done
  t2=$(now)
  got=$(find "$work/mail/bob.sqlite-drop/new" -type f | wc -l)
  [ "$got" -eq "$n_deliver" ] || { echo "postern-maildb stored $got of $n_deliver"; exit 1; }
  got=$(find "$work/Maildir/new" -type f | wc -l)
  [ "$got" -eq "$n_deliver" ] || { echo "procmail stored $got of $n_deliver"; exit 1; }
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {print "postern", b-a; print "procmail", c-b}' >> "$work/deliver.txt"
done
pd=$(awk '$1=="postern" {print $2}' "$work/deliver.txt" | median)
pm=$(awk '$1=="procmail" {print $2}' "$work/deliver.txt" | median)
echo "postern-maildb deliver: $(rate "$n_deliver" "$pd")/s   procmail into a Maildir: $(rate "$n_deliver" "$pm")/s"
echo "ratio procmail time/postern time: $(ratio "$pm" "$pd") (target >= 1)"

echo "== search: $n_queries queries over $n_search messages"
d=$work/search; mkdir -p "$d"
t0=$(now)
"$tool" search "$n_search" "$n_queries" "$d" > "$work/search.txt"
echo "(filled and searched in $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b-a}')s)"
all=$(awk '{print $2}' "$work/search.txt" | median)
p90=$(awk '{print $2}' "$work/search.txt" | sort -g | awk '{a[NR]=$1} END {print a[int(NR*0.9)]}')
echo "median: ${all} ms   90th percentile: ${p90} ms (target: median < 50 ms)"
for kind in word pair from prefix; do
  awk -v k="$kind" '{q=""; for (i=4; i<=NF; i++) q=q" "$i
       t = (q ~ /\*$/) ? "prefix" : (q ~ /from:/) ? "from" : (NF > 4) ? "pair" : "word"
       if (t == k) {print $2, $3}}' "$work/search.txt" > "$work/kind.txt"
  echo "  $kind: median $(awk '{print $1}' "$work/kind.txt" | median) ms, median hits $(awk '{print $2}' "$work/kind.txt" | median)"
done
