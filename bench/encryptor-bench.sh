#!/bin/bash
# postern-encryptor in numbers (make bench-encryptor). One `name value
# unit` line per figure on stdout, then the ratios against the targets of
# issue 11; progress on stderr. Every figure is the median of three runs,
# and every ratio compares figures of this same run.
#
# N (BENCH_ENC_N, 2000) messages of 10 KB to one recipient whose
# ed25519/cv25519 key is in a temporary GnuPG home:
#   1. a shell loop running `gpg --encrypt` once per message (the baseline);
#   2. python-gnupg once per message, as the zeyple and lacre filters call
#      it (tests/interop/venv, pinned in tests/interop/install.sh);
#   3. the engines alone (examples/encryptor-bench.rs): gpgme, which runs
#      a gpg process per message, and postern's in-process rPGP;
#   4. postern-encryptor over one job stream of the N jobs: messages/s and
#      peak RSS (target: at least 10x the shell loop). The output must be
#      N PGP/MIME messages, with no plaintext left and one of them read
#      back by gpg, or the bench fails.
#   5. one message with a 25 MB base64 attachment through
#      postern-encryptor: wall time and peak RSS (target: under 4x the
#      message size).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_ENC_N:-2000}
release=$repo/target/release
encryptor=$release/postern-encryptor
receiver=$release/postern-receiver
python=$repo/tests/interop/venv/bin/python
for b in "$encryptor" "$receiver"; do
    [ -x "$b" ] || { echo "encryptor-bench.sh: $b missing (make build)" >&2; exit 1; }
done
command -v gpg >/dev/null || { echo "encryptor-bench.sh: gpg missing (make deps)" >&2; exit 1; }
"$python" -c 'import gnupg' 2>/dev/null ||
    { echo "encryptor-bench.sh: python-gnupg missing (bash tests/interop/install.sh python)" >&2; exit 1; }

work=$(mktemp -d /tmp/postern-enc-bench-XXXXXX)
home=$work/gnupg
cleanup() {
    [ -d "$home" ] && gpgconf --homedir "$home" --kill all 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
fail() { echo "encryptor-bench.sh: $*" >&2; exit 1; }
# Runs a command with its stdout to OUT; its wall seconds and peak RSS
# (KB) in $secs and $kb.
measure() {
    local out=$1; shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$out" 2>"$work/stderr" ||
        fail "$* failed: $(tail -3 "$work/stderr")"
    read -r secs kb < "$work/time"
}

echo "encryptor-bench: building examples/encryptor-bench.rs" >&2
(cd "$repo" && timeout 900 cargo build --release --quiet --features bench --example encryptor-bench)
eb=$release/examples/encryptor-bench

# The recipient's key, as an operator's keyring would hold it (the secret
# key stays there only so that gpg can read one message back).
echo "encryptor-bench: key and $n messages of 10 KB" >&2
mkdir -m 700 "$home"
gpg --homedir "$home" --batch --quiet --passphrase '' \
    --quick-gen-key 'Bench <bench@example.net>' ed25519 sign,cert 1y 2>/dev/null
fpr=$(gpg --homedir "$home" --with-colons --list-keys bench@example.net 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }')
gpg --homedir "$home" --batch --quiet --passphrase '' --quick-add-key "$fpr" cv25519 encr 2>/dev/null
gpg --homedir "$home" --export bench@example.net > "$work/bench.pgp"

mkdir "$work/msgs"
awk -v n="$n" -v dir="$work/msgs" 'BEGIN {
    line = "0123456789 the quick brown fox jumps over the lazy dog 0123"
    for (i = 1; i <= n; i++) {
        f = sprintf("%s/%06d.eml", dir, i)
        m = "From: alice@example.org\nTo: bench@example.net\nSubject: bench " i "\n" \
            "Message-ID: <bench-" i "@example.org>\n\n"
        while (length(m) + length(line) + 1 <= 10240) m = m line "\n"
        while (length(m) < 10240) m = m "x"
        printf "%s", m > f
        close(f)
    }
}'

# 1. gpg once per message from a shell loop.
gpg_loop() {
    local f start
    start=$EPOCHREALTIME
    for f in "$work"/msgs/*.eml; do
        gpg --batch --homedir "$home" --trust-model always --encrypt \
            -r bench@example.net -o - "$f" > "$work/loop.gpg" || fail "gpg --encrypt $f failed"
    done
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'
}
# 2. python-gnupg once per message.
cat > "$work/python-gnupg.py" <<'PY'
import os, sys, time, gnupg
home, msgs = sys.argv[1], sys.argv[2]
files = sorted(os.path.join(msgs, f) for f in os.listdir(msgs))
gpg = gnupg.GPG(gnupghome=home)
start = time.monotonic()
for f in files:
    with open(f, "rb") as fh:
        data = fh.read()
    result = gpg.encrypt(data, "bench@example.net", always_trust=True)
    if not result.ok or not str(result).startswith("-----BEGIN PGP MESSAGE-----"):
        sys.exit(f"python-gnupg: {f}: {result.status} {result.stderr[-300:]}")
print(f"{len(files) / (time.monotonic() - start):.0f}")
PY

loop=(); py=(); gm=(); rp=()
for run in 1 2 3; do
    echo "encryptor-bench: run $run: gpg loop, python-gnupg, gpgme, rPGP ($n each)" >&2
    s=$(gpg_loop); loop+=("$(rate "$n" "$s")")
    r=$(timeout 600 "$python" "$work/python-gnupg.py" "$home" "$work/msgs"); py+=("$r")
    r=$(timeout 600 "$eb" gpgme "$home" "$n"); gm+=("$r")
    r=$(timeout 600 "$eb" rpgp "$work/bench.pgp" "$n"); rp+=("$r")
done
loop_rate=$(printf '%s\n' "${loop[@]}" | median)
py_rate=$(printf '%s\n' "${py[@]}" | median)
gpgme_rate=$(printf '%s\n' "${gm[@]}" | median)
rpgp_rate=$(printf '%s\n' "${rp[@]}" | median)
echo "gpg_shell_loop_rate $loop_rate msgs/s"
echo "python_gnupg_rate $py_rate msgs/s"
echo "gpgme_per_message_rate $gpgme_rate msgs/s"
echo "rpgp_engine_rate $rpgp_rate msgs/s"

# 4. postern-encryptor over a job stream.
head -c 32 /dev/urandom > "$work/spool.key"
chmod 600 "$work/spool.key"
config=$work/postern.toml
cat > "$config" <<TOML
hostname = "bench.example"
log = "file"
log_file = "$work/postern.log"
message_size_limit = 60000000
[aliases]
store = "$work/no-store.db"
[spool]
directory = "$work/spool"
key_file = "$work/spool.key"
[relay]
port = 10026
[encryptor]
keyring = "$home"
[wkd]
enabled = false
TOML
export POSTERN_CONFIG=$config

echo "encryptor-bench: $n jobs through postern-receiver" >&2
for f in "$work"/msgs/*.eml; do
    "$receiver" -f alice@example.org -- bench@example.net < "$f" || fail "postern-receiver $f failed"
done > "$work/jobs"

# Fails unless OUT holds COUNT PGP/MIME messages, none of the plaintext
# marker MARK, and gpg reads the first one back with MARK in it.
check_encrypted() {
    local out=$1 count=$2 mark=$3 got
    got=$(grep -c '^Content-Type: multipart/encrypted;' "$out" || true)
    [ "$got" = "$count" ] || fail "$got PGP/MIME messages in the output, not $count"
    ! grep -q -F "$mark" "$out" || fail "plaintext ('$mark') in the encryptor's output"
    awk '/^-----BEGIN PGP MESSAGE-----/ { on = 1 } on { print } /^-----END PGP MESSAGE-----/ { exit }' "$out" |
        gpg --batch --homedir "$home" --quiet --decrypt 2>"$work/gpg.err" > "$work/decrypted" ||
        fail "gpg cannot decrypt the encryptor's output: $(tail -3 "$work/gpg.err")"
    grep -q -F "$mark" "$work/decrypted" || fail "the decrypted message lacks '$mark'"
}

rates=(); rss=()
for run in 1 2 3; do
    echo "encryptor-bench: run $run: postern-encryptor, $n jobs" >&2
    measure "$work/out" timeout 600 "$encryptor" < "$work/jobs"
    check_encrypted "$work/out" "$n" "quick brown fox"
    rates+=("$(rate "$n" "$secs")"); rss+=("$kb")
done
enc_rate=$(printf '%s\n' "${rates[@]}" | median)
enc_mb=$(printf '%s\n' "${rss[@]}" | median | awk '{ printf "%.1f", $1 / 1024 }')
echo "encryptor_rate $enc_rate msgs/s"
echo "encryptor_peak_rss $enc_mb MB"

# 5. One message with a 25 MB attachment.
echo "encryptor-bench: a message with a 25 MB attachment" >&2
{
    printf 'From: alice@example.org\nTo: bench@example.net\nSubject: big\nMIME-Version: 1.0\n'
    printf 'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
    printf 'the big one\n--b\nContent-Type: application/octet-stream; name="big.bin"\n'
    printf 'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="big.bin"\n\n'
    head -c $((25 * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76
    printf -- '--b--\n'
} > "$work/big.eml"
big_bytes=$(stat -c %s "$work/big.eml")
"$receiver" -f alice@example.org -- bench@example.net < "$work/big.eml" > "$work/big.job" ||
    fail "postern-receiver refused the 25 MB message"
times=(); rss=()
for run in 1 2 3; do
    echo "encryptor-bench: run $run: postern-encryptor, the 25 MB message" >&2
    measure "$work/big.out" timeout 300 "$encryptor" < "$work/big.job"
    check_encrypted "$work/big.out" 1 "the big one"
    times+=("$secs"); rss+=("$kb")
done
big_secs=$(printf '%s\n' "${times[@]}" | median)
big_kb=$(printf '%s\n' "${rss[@]}" | median)
big_mb=$(awk -v k="$big_kb" 'BEGIN { printf "%.1f", k / 1024 }')
msg_mb=$(awk -v b="$big_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "big_message_size $msg_mb MB"
echo "encryptor_big_seconds $big_secs s"
echo "encryptor_big_peak_rss $big_mb MB"

r_loop=$(ratio "$enc_rate" "$loop_rate")
r_rss=$(ratio "$big_kb" "$(awk -v b="$big_bytes" 'BEGIN { print b / 1024 }')")
echo "--- targets (issue 11)"
echo "encryptor vs gpg shell loop, $n x 10 KB: $r_loop (>= 10: $(at_least "$r_loop" 10))"
echo "encryptor vs python-gnupg: $(ratio "$enc_rate" "$py_rate")"
echo "gpgme per message vs gpg shell loop: $(ratio "$gpgme_rate" "$loop_rate")"
echo "encryptor vs gpgme per message: $(ratio "$enc_rate" "$gpgme_rate")"
echo "encryptor vs rPGP engine alone: $(ratio "$enc_rate" "$rpgp_rate")"
echo "${msg_mb} MB message: peak RSS ${big_mb} MB = $r_rss x its size (< 4: $(at_most "$r_rss" 4)), ${big_secs} s"
