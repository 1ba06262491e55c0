#!/usr/bin/env python3
"""The local service of scripts/bench-cost.sh: records when each webhook arrives.

Runs as its own process (so the load generator's GIL never delays a timestamp) and
answers every POST with one write on a TCP_NODELAY socket (no delayed-ACK stall for
any relay's client). Arrival time is CLOCK_MONOTONIC (time.monotonic), the clock the
load generator stamps its sends with, taken once the whole body has been read.

Control, over HTTP on the same port (the load generator is its only caller):
  GET /__bench/reset?run=ID   forget everything, count bodies whose "run" is ID
  GET /__bench/stats          {"count", "probes", "other"}
  GET /__bench/dump           {"seqs": [...], "times": [...]} in arrival order

usage: bench_cost_target.py PORT_FILE   (binds 127.0.0.1:0, writes its port to PORT_FILE)
"""
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

STATE_LOCK = threading.Lock()
STATE = {"run": None, "seqs": [], "times": [], "probes": 0, "other": 0}


def record(body, arrived):
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    with STATE_LOCK:
        if isinstance(doc, dict) and doc.get("probe"):
            STATE["probes"] += 1
        elif isinstance(doc, dict) and doc.get("run") == STATE["run"] and isinstance(doc.get("seq"), int):
            STATE["seqs"].append(doc["seq"])
            STATE["times"].append(arrived)
        else:
            STATE["other"] += 1


def control(path):
    url = urllib.parse.urlsplit(path)
    with STATE_LOCK:
        if url.path == "/__bench/reset":
            run = urllib.parse.parse_qs(url.query).get("run", [None])[0]
            STATE.update(run=run, seqs=[], times=[], probes=0, other=0)
            return {"ok": True}
        if url.path == "/__bench/stats":
            return {"count": len(STATE["seqs"]), "probes": STATE["probes"], "other": STATE["other"]}
        if url.path == "/__bench/dump":
            return {"seqs": list(STATE["seqs"]), "times": list(STATE["times"])}
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply(self, status, body):
        head = f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)  # one write: head and body together

    def _receive(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        record(body, time.monotonic())
        self.reply(200, b"ok")

    do_POST = do_PUT = do_PATCH = _receive

    def do_GET(self):
        answer = control(self.path)
        if answer is None:
            self.reply(200, b"ok")  # smee-client and friends may probe the target
        else:
            self.reply(200, json.dumps(answer).encode())

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Written whole, then renamed: a reader polling for the file never sees it half written.
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
