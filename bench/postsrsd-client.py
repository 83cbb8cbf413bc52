"""A Postfix-like client of a running postsrsd, for bench/srs-bench.sh
(it starts nothing):

    python3 bench/postsrsd-client.py HOST:PORT [N]

Sends N distinct senders (default 20000) to postsrsd's forward table over
Postfix's tcp_table protocol (tcp_table(5)): `get KEY` with KEY
%XX-encoded, answer `200 VALUE`, one request at a time on one connection,
as Postfix's trivial-rewrite asks. Three runs, each on a new connection;
prints one number, the median in requests per second. Every answer must be
an SRS0 address.
"""

import socket
import statistics
import sys
import time

RUNS = 3


def encode(key):
    """tcp_table(5): %XX for anything not printable ASCII, and for %."""
    return "".join(c if 33 <= ord(c) <= 126 and c != "%" else "".join(
        f"%{b:02X}" for b in c.encode()) for c in key)


def run(host, port, senders):
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        start = time.perf_counter()
        for sender in senders:
            sock.sendall(b"get " + encode(sender).encode() + b"\n")
            answer = reader.readline()
            if not answer.startswith(b"200 SRS0"):
                sys.exit(f"postsrsd-client.py: unexpected answer {answer[:40]!r}")
        return len(senders) / (time.perf_counter() - start)


def main():
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        sys.exit(__doc__)
    host, _, port = sys.argv[1].rpartition(":")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    senders = [f"user{i}.name@mail{i % 97}.example.org" for i in range(n)]
    rates = [run(host, int(port), senders) for _ in range(RUNS)]
    print(round(statistics.median(rates)))


if __name__ == "__main__":
    main()
