#!/usr/bin/env python3
"""A local service like Python's http.server (and the Flask and Django dev servers):
HTTP/1.1 keep-alive, and each response written in two segments (head, then body) on a
socket without TCP_NODELAY, which is what makes a client with delayed ACKs stall 40 ms.

Prints "listening PORT" once it accepts, then one line per request it answered:
"OFFSET UNIX_TIME" (X-Hookrelay-Offset, time.time() at arrival), flushed at once.

usage: python_target.py [port=0]
"""
import http.server
import sys
import threading
import time

# One line at a time: the handler threads would otherwise interleave their lines.
PRINT_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"ok\n"
        # Three calls, as a Flask/Django dev server makes them: the head goes out when
        # end_headers() flushes it, the body in a second write.
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        offset = self.headers.get("X-Hookrelay-Offset", "-")
        with PRINT_LOCK:
            print(f"{offset} {arrived:.6f}", flush=True)

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
