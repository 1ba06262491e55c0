#!/usr/bin/env python3
"""Steady, GitHub-signed ingest for scripts/soak.sh.

usage: soak_ingest.py URL CHANNEL SECRET RATE ACK_FILE STATS_FILE [WORKERS=8]

Offers RATE events per second (a token bucket refilled continuously; a backlog builds up
while the relay is down and drains when it is back). Each event has a delivery id
(X-GitHub-Delivery) of its own and is posted until the relay answers 200: a refused
post, a connection error or a timeout was never acknowledged, so it is retried with the
same delivery id. If the relay stored the event but died before answering, the retry is
answered from the dedup index with the original offset.

Every 200 is one line `<unix time> <delivery id> <offset> <event id> <duplicate 0|1>` in
ACK_FILE, written (and flushed) after the answer was read. On SIGTERM the script stops
offering, abandons events not yet acknowledged (they were never acknowledged, so they
are not owed) and writes counters as JSON to STATS_FILE.
"""

import hashlib
import hmac
import http.client
import json
import os
import queue
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter

POST_TIMEOUT_SECS = 10
RETRY_PAUSE_SECS = 0.2
PAD = "x" * 200  # ~300-byte bodies, like a small provider event


class Ingest:
    def __init__(self, url, channel, secret, rate, ack_file):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = f"/hooks/{channel}"
        self.secret = secret.encode()
        self.rate = rate
        self.acks = open(ack_file, "a", buffering=1)
        self.lock = threading.Lock()
        self.todo = queue.Queue()
        self.stop = threading.Event()
        self.counts = Counter()
        self.run = f"{os.getpid()}-{int(time.time())}"

    def offer(self):
        """The token bucket: one event per 1/rate s, on a fixed schedule (no drift)."""
        start = time.monotonic()
        n = 0
        while not self.stop.is_set():
            due = start + n / self.rate
            pause = due - time.monotonic()
            if pause > 0:
                self.stop.wait(pause)
                continue
            n += 1
            self.todo.put(n)
            with self.lock:
                self.counts["offered"] += 1

    def work(self):
        conn = None
        while not self.stop.is_set():
            try:
                n = self.todo.get(timeout=0.5)
            except queue.Empty:
                continue
            conn = self.deliver(conn, n)

    def deliver(self, conn, n):
        """Posts event n until a 200 or the stop; returns the connection to reuse."""
        body = json.dumps({"n": n, "run": self.run, "pad": PAD}).encode()
        sig = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        delivery = f"soak-{self.run}-{n}"
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sig,
        }
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=POST_TIMEOUT_SECS)
                conn.request("POST", self.path, body, headers)
                resp = conn.getresponse()
                text = resp.read()
                if resp.status == 200:
                    self.acknowledged(delivery, json.loads(text))
                    return conn
                self.count(f"refused_{resp.status}")
            except (OSError, http.client.HTTPException):
                self.count("connection_error")
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(RETRY_PAUSE_SECS)
        self.count("abandoned_at_stop")
        return conn

    def acknowledged(self, delivery, answer):
        dup = 1 if answer.get("duplicate") else 0
        line = f"{time.time():.3f} {delivery} {answer['offset']} {answer['id']} {dup}\n"
        with self.lock:
            self.acks.write(line)
            self.counts["acknowledged"] += 1
            self.counts["acknowledged_as_duplicate"] += dup

    def count(self, what):
        with self.lock:
            self.counts[what] += 1


def main():
    url, channel, secret, rate, ack_file, stats_file = sys.argv[1:7]
    workers = int(sys.argv[7]) if len(sys.argv) > 7 else 8
    ingest = Ingest(url, channel, secret, float(rate), ack_file)
    signal.signal(signal.SIGTERM, lambda *_: ingest.stop.set())
    threads = [threading.Thread(target=ingest.offer)]
    threads += [threading.Thread(target=ingest.work) for _ in range(workers)]
    for t in threads:
        t.start()
    print("ingest running", flush=True)
    while not ingest.stop.is_set():
        ingest.stop.wait(1)
    for t in threads:
        t.join()
    counts = dict(ingest.counts)
    counts["backlog_at_stop"] = ingest.todo.qsize()
    with open(stats_file, "w") as f:
        json.dump(counts, f, indent=1)


if __name__ == "__main__":
    main()
