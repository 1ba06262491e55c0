#!/usr/bin/env python3
"""A deliberately unreliable local service for scripts/soak.sh.

usage: flaky_target.py PORT RECORD_FILE [FAIL_RATE=0.05] [SLOW_RATE=0.01]

Listens on 127.0.0.1:PORT (0 = any free port) and prints `flaky target on PORT` once it
listens. Every request is answered:
- with a random 500/502/503 with probability FAIL_RATE (the agent must retry it);
- after a 1-3 s pause with probability SLOW_RATE (then 200);
- with 200 otherwise.

Each 2xx is recorded as one line `<unix time> <X-Hookrelay-Offset> <X-Hookrelay-Event-Id>`
appended to RECORD_FILE *before* the answer is written. soak.sh kills this process with
SIGKILL or SIGTERM at random moments: a line written with os.write on an O_APPEND fd is in
the kernel once the call returns, so it survives the process (no fsync needed: the machine
does not lose power in the soak). The cost of recording first is that a kill between the
write and the answer makes the agent retry an event that is already recorded: one more
duplicate, inside the in-flight window that soak.sh allows per restart.
"""

import os
import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_STATUSES = (500, 502, 503)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that the agent's pooled connections are kept alive.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        roll = random.random()
        if roll < self.server.fail_rate:
            self.answer(random.choice(FAIL_STATUSES))
            return
        if roll < self.server.fail_rate + self.server.slow_rate:
            time.sleep(random.uniform(1.0, 3.0))
        offset = self.headers.get("X-Hookrelay-Offset", "-")
        event_id = self.headers.get("X-Hookrelay-Event-Id", "-")
        line = f"{time.time():.3f} {offset} {event_id}\n".encode()
        os.write(self.server.record_fd, line)
        self.answer(200)

    do_PUT = do_POST
    do_PATCH = do_POST

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        # One line per request would be ~200 lines/s for half an hour: stay quiet.
        pass


def main():
    port = int(sys.argv[1])
    record = sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.record_fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    server.fail_rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    server.slow_rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
    print(f"flaky target on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
