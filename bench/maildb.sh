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
#   exchange an mbox of BENCH_EXCHANGE_MB MiB (1024) of text messages of
#            4 to 16 KB (10 KB on average; 3% of body lines start with
#            "From " or ">From ", written quoted as mboxrd), made by
#            make_mbox below (mawk or gawk). `postern-maildb import` of it into a new
#            mailbox: messages/s and peak RSS. Then `postern-maildb export
#            --format mbox` of that mailbox (mboxrd, fsynced): MiB/s of mbox
#            written, target at least 160; peak RSS, target under 100 MiB.
#            Against Forward Email's stack doing the same job:
#            bench/maildb-node.js export, better-sqlite3-multiple-ciphers
#            iterating `SELECT raw` in folder and UID order and writing
#            mboxrd, fsynced (its file must equal postern's, byte for byte).
#            With BENCH_IMPORT_MB set to another size (2048: a file above
#            2 GiB), one more import, of an mbox of that size, alone: peak
#            RSS should not grow with the file.
#
# Medians of BENCH_RUNS runs (3); peak RSS (GNU time's %M) is the largest
# of the runs; MiB = 2^20 bytes. On a real disk: BENCH_DIR (default
# bench/run-maildb under the source; /tmp may be a tmpfs, where fsync
# costs nothing), removed at the end; exchange needs about 5 times
# BENCH_EXCHANGE_MB free there. BENCH_ONLY: the sections to run, separated
# by commas (say BENCH_ONLY=exchange); all by default. Environment:
# BENCH_MERGE (10000), BENCH_DELIVER (500), BENCH_SEARCH (100000),
# BENCH_QUERIES (200), BENCH_SIZE (10240), BENCH_EXCHANGE_MB (1024),
# BENCH_IMPORT_MB (BENCH_EXCHANGE_MB).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${BENCH_RUNS:-3}
n_merge=${BENCH_MERGE:-10000}
n_deliver=${BENCH_DELIVER:-500}
n_search=${BENCH_SEARCH:-100000}
n_queries=${BENCH_QUERIES:-200}
size=${BENCH_SIZE:-10240}
work=${BENCH_DIR:-$repo/bench/run-maildb}
exchange_mb=${BENCH_EXCHANGE_MB:-1024}
import_mb=${BENCH_IMPORT_MB:-$exchange_mb}
only=,${BENCH_ONLY:-merge,deliver,search,exchange},
for section in ${only//,/ }; do
  case $section in merge|deliver|search|exchange) ;; *) echo "BENCH_ONLY: no section $section"; exit 1;; esac
done

cd "$repo"
cargo build --release --quiet --features bench --bin postern-maildb --example maildb-bench
maildb=$repo/target/release/postern-maildb
tool=$repo/target/release/examples/maildb-bench

rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
# So that an interrupt or the Makefile's timeout removes the work dir too.
trap 'exit 130' INT
trap 'exit 143' TERM

want() { [[ $only == *,$1,* ]]; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n/s}'; }
now() { date +%s.%N; }
mib() { awk -v b="$1" 'BEGIN {printf "%.0f", b/1048576}'; }
mibps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b/1048576/s}'; }

cat > "$work/postern.toml" <<TOML
log = "none"
[maildb]
directory = "$work/mail"
directory_fsync = "${BENCH_DIRECTORY_FSYNC:-auto}"
TOML
export POSTERN_CONFIG=$work/postern.toml
printf 'benchmark passphrase\n' > "$work/pass"; chmod 600 "$work/pass"
node_ok=
if [ -f tests/interop/node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node ]; then
  node_ok=1
elif want merge || want exchange; then
  echo "(no Node comparison: run tests/interop/install.sh for better-sqlite3-multiple-ciphers)"
fi

if want merge; then
  echo "== merge: $n_merge sealed messages of $size bytes, one transaction ($runs runs)"
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
fi

if want deliver; then
  echo "== deliver: $n_deliver messages of $size bytes, one process each ($runs runs)"
  msg=$work/msg.eml
  {
    printf 'From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: bench\n\n'
    head -c $((size * 3)) /dev/urandom | base64 -w 76 | head -c "$size"
    printf '\n'
  } > "$msg"
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
fi

if want search; then
  echo "== search: $n_queries queries over $n_search messages"
  d=$work/search; mkdir -p "$d"
  t0=$(now)
  "$tool" search "$n_search" "$n_queries" "$d" > "$work/search.txt"
  echo "(filled and searched in $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b-a}')s)"
  all=$(awk '$1=="search" {print $2}' "$work/search.txt" | median)
  p90=$(awk '$1=="search" {print $2}' "$work/search.txt" | sort -g | awk '{a[NR]=$1} END {print a[int(NR*0.9)]}')
  echo "median: ${all} ms   90th percentile: ${p90} ms (target: median < 50 ms)"
  for kind in word pair from prefix; do
    for mode in search limit50; do
      awk -v k="$kind" -v m="$mode" '$1==m {q=""; for (i=4; i<=NF; i++) q=q" "$i
           t = (q ~ /\*$/) ? "prefix" : (q ~ /from:/) ? "from" : (NF > 4) ? "pair" : "word"
           if (t == k) {print $2, $3}}' "$work/search.txt" > "$work/kind.txt"
      label=$kind; [ "$mode" = search ] || label="$kind, --limit 50"
      echo "  $label: median $(awk '{print $1}' "$work/kind.txt" | median) ms, median hits $(awk '{print $2}' "$work/kind.txt" | median)"
    done
  done
fi

# make_mbox MIB SEED FILE: an mboxrd file of a little more than MIB MiB of
# text messages of 4 to 16 KB, the body made of paragraphs drawn from 4096
# made of 20,000 words (the small ranks more often), From_ lines dated a
# minute apart on average; prints the number of messages.
make_mbox() {
  awk -v mib="$1" -v seed="$2" -v out="$3" '
  function word() { return w[int(rand() * rand() * 20000)] }
  BEGIN {
    srand(seed)
    split("ka lo mi nu pe ra so ti ve za do fu gi ho ju be", syl, " ")
    for (i = 0; i < 20000; i++) {
      s = ""; for (n = i + 16; n > 0; n = int(n / 16)) s = s syl[n % 16 + 1]
      w[i] = s
    }
    # 2% of lines are "From ..." and 1% ">From ..." in the messages: quoted
    # here, unquoted by the import, quoted again by the export.
    for (p = 0; p < 4096; p++) {
      text = ""
      for (l = 3 + int(rand() * 6); l > 0; l--) {
        x = rand(); line = x < 0.02 ? ">From " : x < 0.03 ? ">>From " : ""
        for (k = 8 + int(rand() * 6); k > 0; k--) line = line word() (k > 1 ? " " : "")
        text = text line "\n"
      }
      para[p] = text "\n"; plen[p] = length(para[p])
    }
    target = mib * 1048576; t = 1767225600
    for (m = 0; total < target; m++) {
      t += 1 + int(rand() * 120)
      head = sprintf("From %s@example.org %s\nFrom: %s <%s@example.org>\nTo: bob@example.net\n" \
        "Subject: %s %s %s\nDate: %s\nMessage-ID: <%d.%d@bench.example>\n\n",
        word(), strftime("%a %b %e %H:%M:%S %Y", t, 1), word(), word(), word(), word(), word(),
        strftime("%a, %d %b %Y %H:%M:%S +0000", t, 1), m, seed)
      printf "%s", head > out; total += length(head)
      size = 4096 + int(rand() * 12288)
      for (b = 0; b < size; b += plen[p]) { p = int(rand() * 4096); printf "%s", para[p] > out }
      total += b
    }
    close(out); print m
  }'
}

# timed KEY CMD...: runs CMD under GNU time, appends "KEY SECONDS PEAK_KIB"
# to $work/exchange.txt; CMD's output goes to $work/out.txt.
timed() {
  local key=$1; shift
  sync
  /usr/bin/time -o "$work/time.txt" -f '%e %M' "$@" > "$work/out.txt"
  echo "$key $(cat "$work/time.txt")" >> "$work/exchange.txt"
}
# field KEY N: the median of field N of the KEY lines; peak KEY: their largest RSS in MiB.
field() { awk -v k="$1" -v n="$2" '$1==k {print $n}' "$work/exchange.txt" | median; }
peak() { awk -v k="$1" '$1==k && $3>m {m=$3} END {printf "%.0f", m/1024}' "$work/exchange.txt"; }

# import_new MBOX: a new mailbox for bob, then the import of MBOX, timed
# under the key "import-MBOX"; checks the count against the line in MBOX.count.
import_new() {
  rm -rf "$work/mail"; mkdir -p "$work/mail"
  "$maildb" -u bob --passphrase-file "$work/pass" init
  timed "import-$(basename "$1")" "$maildb" -u bob --passphrase-file "$work/pass" import "$1"
  local got
  got=$(awk '$1=="imported" {print $2}' "$work/out.txt")
  [ "$got" = "$(cat "$1.count")" ] || { echo "import stored ${got:-none} of $(cat "$1.count"): $(cat "$work/out.txt")"; exit 1; }
}

if want exchange; then
  echo "== exchange: a $exchange_mb MiB mbox imported into a new mailbox, exported to mbox ($runs runs)"
  [ -x /usr/bin/time ] || { echo "GNU time not installed (make deps, or apt-get install time)"; exit 1; }
  free_mib=$(df -Pk "$work" | awk 'NR==2 {printf "%d", $4/1024}')
  [ "$free_mib" -ge $((exchange_mb * 5)) ] \
    || { echo "exchange needs about $((exchange_mb * 5)) MiB free in $work, there are $free_mib (BENCH_DIR, BENCH_EXCHANGE_MB)"; exit 1; }
  : > "$work/exchange.txt"
  t0=$(now)
  make_mbox "$exchange_mb" 1 "$work/source.mbox" > "$work/source.mbox.count"
  src_bytes=$(stat -c %s "$work/source.mbox")
  echo "(made $(cat "$work/source.mbox.count") messages, $(mib "$src_bytes") MiB, in $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b-a}')s)"
  for r in $(seq "$runs"); do import_new "$work/source.mbox"; done
  n_src=$(cat "$work/source.mbox.count")
  imp=$(field import-source.mbox 2)
  echo "import: ${imp}s, $(rate "$n_src" "$imp") messages/s, $(mibps "$src_bytes" "$imp") MiB/s, peak RSS $(peak import-source.mbox) MiB" \
    "(mailbox file $(mib "$(stat -c %s "$work/mail/bob.sqlite")") MiB)"
  # The exports read the mailbox of the last import.
  for r in $(seq "$runs"); do
    timed postern-export "$maildb" -u bob --passphrase-file "$work/pass" export --format mbox "$work/export.mbox"
    out_bytes=$(stat -c %s "$work/export.mbox")
    if [ -n "$node_ok" ]; then
      timed node-export node bench/maildb-node.js export "$work/mail/bob.sqlite" "$work/pass" "$work/node.mbox"
      # Both did the same job: the same bytes.
      [ "$r" -gt 1 ] || cmp "$work/export.mbox" "$work/node.mbox" || { echo "the Node export differs from postern's"; exit 1; }
      rm "$work/node.mbox"
    fi
    rm "$work/export.mbox"
  done
  pe=$(field postern-export 2)
  echo "export: $(mib "$out_bytes") MiB of mbox, $n_src messages"
  echo "postern-maildb export --format mbox: ${pe}s, $(mibps "$out_bytes" "$pe") MiB/s (target >= 160), peak RSS $(peak postern-export) MiB (target < 100)"
  if [ -n "$node_ok" ]; then
    ne=$(field node-export 2)
    echo "better-sqlite3-multiple-ciphers (Node $(node --version)), .iterate() and writeSync: ${ne}s, $(mibps "$out_bytes" "$ne") MiB/s, peak RSS $(peak node-export) MiB"
    echo "ratio Node time/postern time: $(ratio "$ne" "$pe")"
  fi
  if [ "$import_mb" != "$exchange_mb" ]; then
    echo "== streamed import: a $import_mb MiB mbox into a new mailbox (1 run)"
    rm -rf "$work/mail" "$work/source.mbox"
    free_mib=$(df -Pk "$work" | awk 'NR==2 {printf "%d", $4/1024}')
    [ "$free_mib" -ge $((import_mb * 4)) ] \
      || { echo "the streamed import needs about $((import_mb * 4)) MiB free in $work, there are $free_mib"; exit 1; }
    make_mbox "$import_mb" 2 "$work/big.mbox" > "$work/big.mbox.count"
    big_bytes=$(stat -c %s "$work/big.mbox")
    import_new "$work/big.mbox"
    n_big=$(cat "$work/big.mbox.count")
    bi=$(field import-big.mbox 2)
    echo "import of $big_bytes bytes ($(awk -v b="$big_bytes" 'BEGIN {print (b > 2^31 ? "above" : "not above")}') 2 GiB)," \
      "$n_big messages: ${bi}s, $(rate "$n_big" "$bi") messages/s, peak RSS $(peak import-big.mbox) MiB" \
      "($(peak import-source.mbox) MiB for $exchange_mb MiB)"
    rm -rf "$work/mail" "$work/big.mbox"
  fi
fi
