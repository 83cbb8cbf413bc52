"""srslib (PyPI) as an SRS peer for lib/tests/srs_interop.rs, at a time
given on the command line. Run with tests/interop/venv/bin/python:

    srs-srslib.py UNIXTIME SRSDOMAIN VALIDITY_DAYS SECRET...

Reads requests from stdin, one a line: `f ADDRESS` (forward into
SRSDOMAIN; srslib always writes `=` after SRS0/SRS1) or `r ADDRESS`
(reverse); answers each with one line, `ok RESULT` or `err MESSAGE`.
The first secret signs, all verify.
"""

import sys

import srslib


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    now = float(sys.argv[1])
    domain = sys.argv[2]
    validity_days = int(sys.argv[3])
    secrets = sys.argv[4:]
    srs = srslib.SRS(secrets[0], prev_secrets=secrets[1:], validity_days=validity_days)
    # srslib's own hook for a fixed clock (its tests use it the same way).
    srs._time_fn = lambda: now
    for line in sys.stdin:
        op, _, address = line.rstrip("\n").partition(" ")
        try:
            out = srs.forward(address, domain) if op == "f" else srs.reverse(address)
            print("ok " + out, flush=True)
        except srslib.Error as e:
            print("err " + type(e).__name__, flush=True)


if __name__ == "__main__":
    main()
