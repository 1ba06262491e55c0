#!/usr/bin/env python3
"""A tiny local service for trying hookrelay: prints every request and answers 200.

usage: scripts/echo_target.py [port=3000]
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        print(f"{self.command} {self.path}", flush=True)
        for name in ("X-Hookrelay-Channel", "X-Hookrelay-Offset", "X-Hookrelay-Event-Id", "X-Hub-Signature-256"):
            if name in self.headers:
                print(f"  {name}: {self.headers[name]}", flush=True)
        print(f"  body: {body.decode('utf-8', 'replace')}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_PATCH = _handle

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
