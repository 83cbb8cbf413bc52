#!/usr/bin/env python3
"""The baseline of make bench-sync: the requests postern-alias sync makes
for one Launchpad team, and nothing else. Reads every members page
(ws.size=300, following next_collection_link) and, when the entries are
minimal, every person, CONCURRENCY at a time over kept connections, and
parses the JSON. Prints the number of requests. Python 3 stdlib only.

Usage: launchpad-fetch.py BASE_URL TEAM CONCURRENCY
"""

import http.client
import json
import sys
import threading
import urllib.parse


def main():
    base, team, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    root = urllib.parse.urlsplit(base)
    local = threading.local()

    def get(url):
        parts = urllib.parse.urlsplit(url)
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(root.hostname, root.port, timeout=30)
        path = parts.path + ("?" + parts.query if parts.query else "")
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url}: HTTP {answer.status}")
        return json.loads(body)

    requests = 0
    url = f"{base}/~{team}/members?ws.size=300"
    missing = []
    while url:
        page = get(url)
        requests += 1
        for entry in page["entries"]:
            if "is_valid" not in entry or "is_ubuntu_coc_signer" not in entry:
                missing.append(entry["name"])
        url = page.get("next_collection_link")

    lock = threading.Lock()
    todo = iter(missing)

    def worker():
        nonlocal requests
        while True:
            with lock:
                name = next(todo, None)
            if name is None:
                return
            get(f"{base}/~{name}")
            with lock:
                requests += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(requests)


main()
