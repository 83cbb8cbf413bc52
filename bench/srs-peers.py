"""srslib (PyPI) in process, for bench/srs-bench.sh. Run with the venv's
Python (tests/interop/install.sh makes it):

    tests/interop/venv/bin/python bench/srs-peers.py [N]

Forwards N distinct senders (default 100000) into SRS0 and reverses each
result (hash and stamp checked), three runs; prints one number, the median
in forward+reverse pairs per second. The same work examples/srs-bench.rs
does for postern.
"""

import statistics
import sys
import time

import srslib

RUNS = 3


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    if n <= 0:
        sys.exit(__doc__)
    srs = srslib.SRS("benchmark secret, not a secret")
    senders = [f"user{i}.name@mail{i % 97}.example.org" for i in range(n)]
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for sender in senders:
            if srs.reverse(srs.forward(sender, "fwd.example.net")) != sender:
                sys.exit(f"srs-peers.py: round trip failed for sender {senders.index(sender)}")
        rates.append(n / (time.perf_counter() - start))
    print(round(statistics.median(rates)))


if __name__ == "__main__":
    main()
