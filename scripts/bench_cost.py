#!/usr/bin/env python3
"""Cost per event at a webhook trickle: hookrelay beside gosmee and smee.io, in one run.

For each relay present, in turns, round after round: start its server and client from
a fresh work dir, wait until a probe webhook reaches the local target, then post N
1 KiB JSON webhooks at a fixed rate and wait until all arrive (or delivery goes idle).
Measured per round:
  - server / client CPU per event: utime+stime delta of /proc/PID/stat over the phase
    (first send to last arrival), divided by N;
  - end-to-end latency: POST sent -> body fully read by the target (CLOCK_MONOTONIC in
    both processes), p50 and p99 by nearest rank;
  - POSTs answered 2xx, events delivered, lost, duplicated.
Prints every round, then a markdown table of the medians over rounds.
Called by scripts/bench-cost.sh, which documents the arguments.
"""
import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

import bench_cost_relays as relays

SENDERS = 32  # like the reference harness's concurrency: a slow POST does not delay the next send
PROBE_EVERY_S = 0.2
QUIET_WINDOW_S = 0.3
QUIET_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 5.0
MAX_WAIT_S = 120.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Target:
    """The recording local service, in its own process (bench_cost_target.py)."""

    def __init__(self, work):
        port_file = os.path.join(work, "target.port")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_cost_target.py")
        self.proc = relays.Proc("target", [sys.executable, script, port_file], work)
        port = relays.wait_until("the target", lambda: os.path.exists(port_file), procs=[self.proc])
        with open(port_file) as f:
            port = int(f.read())
        self.url = f"http://{relays.HOST}:{port}/hook"
        self.base = f"http://{relays.HOST}:{port}/__bench"

    def call(self, what):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.base}/{what}", timeout=10) as r:
            return json.load(r)


def make_body(run, seq, size, probe=False):
    doc = {"run": run, "seq": seq, "probe": probe, "pad": ""}
    doc["pad"] = "x" * max(0, size - len(json.dumps(doc)))
    return json.dumps(doc).encode()


def headers_for(body, signed):
    h = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    if signed:
        h["X-Hub-Signature-256"] = "sha256=" + hmac.new(relays.SECRET.encode(), body, hashlib.sha256).hexdigest()
        h["X-GitHub-Delivery"] = str(uuid.uuid4())
    return h


class Conn:
    """A keep-alive HTTP/1.1 client connection that writes each request (head and body)
    in one send on a TCP_NODELAY socket, as Node's http client does. http.client sends
    the head and the body in two writes: the server then wakes twice per event."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.addr, self.path, self.sock, self.rfile = (u.hostname, u.port), u.path, None, None

    def post(self, body, headers):
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.addr, timeout=30)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.rfile = self.sock.makefile("rb")
            head = f"POST {self.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            self.sock.sendall(head.encode() + body)
            return self._response()
        except (OSError, ValueError):
            self.close()  # the next post reconnects
            return -1

    def _response(self):
        status = int(self.rfile.readline().split()[1])
        fields = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = line.decode("latin-1").partition(":")
            fields[k.strip().lower()] = v.strip().lower()
        if fields.get("transfer-encoding") == "chunked":
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(int(fields.get("content-length", 0)))
        if fields.get("connection") == "close":
            self.close()
        return status

    def close(self):
        if self.sock is not None:
            self.rfile.close()
            self.sock.close()
        self.sock = self.rfile = None


class ConnectionPool:
    """Keep-alive connections handed out last-returned-first, like Node's http.Agent (the
    reference harness's client): at a trickle one or two connections carry every POST,
    as they would from one sender; more open only while earlier POSTs are in flight."""

    def __init__(self, url):
        self.url, self.idle, self.lock = url, [], threading.Lock()

    def take(self):
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return Conn(self.url)

    def give(self, conn):
        with self.lock:
            self.idle.append(conn)

    def close(self):
        for conn in self.idle:
            conn.close()


def paced_load(url, bodies, headers, rate):
    """Sends bodies[i] at t0 + i/rate from SENDERS threads; returns send times and statuses."""
    n = len(bodies)
    send_t, status = [0.0] * n, [0] * n
    lock, nxt, pool = threading.Lock(), [0], ConnectionPool(url)
    t0 = time.monotonic() + 0.005

    def sender():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn = pool.take()
            send_t[i] = time.monotonic()
            status[i] = conn.post(bodies[i], headers[i])
            pool.give(conn)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    return send_t, status


def probe_until_delivered(relay, target):
    """Readiness: the client is connected once a probe webhook reaches the target."""
    target.call("reset?run=probe")
    conn = Conn(relay.ingest_url)
    deadline, k = time.monotonic() + relays.READY_TIMEOUT_S, 0
    while time.monotonic() < deadline:
        k += 1
        body = make_body("probe", -k, 256, probe=True)
        conn.post(body, headers_for(body, relay.signed))
        try:
            relays.wait_until("a probe", lambda: target.call("stats")["probes"] > 0, PROBE_EVERY_S,
                              procs=[relay.server, relay.client])
            conn.close()
            return k
        except RuntimeError as e:
            if "exited" in str(e):
                raise
    raise RuntimeError(f"{relay.name}: no probe reached the target in {relays.READY_TIMEOUT_S} s")


def wait_quiet(procs):
    """Start-up work (JIT, first connections) must not count: wait until the processes'
    CPU ticks stop moving for QUIET_WINDOW_S, or QUIET_TIMEOUT_S passes."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    last = [p.cpu_s() for p in procs]
    while time.monotonic() < deadline:
        time.sleep(QUIET_WINDOW_S)
        now = [p.cpu_s() for p in procs]
        if now == last:
            return
        last = now


def wait_delivery(target, n):
    last, last_change, t0 = -1, time.monotonic(), time.monotonic()
    while True:
        count = target.call("stats")["count"]
        if count >= n:
            return "complete"
        now = time.monotonic()
        if count != last:
            last, last_change = count, now
        if now - last_change > IDLE_TIMEOUT_S:
            return f"idle {IDLE_TIMEOUT_S:.0f} s at {count}"
        if now - t0 > MAX_WAIT_S:
            return "max wait"
        time.sleep(0.05)


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, -(-p * len(sorted_values) // 100) - 1))
    return sorted_values[int(i)]


def measure(relay, target, args):
    """One paced phase on a started relay: the numbers of one round."""
    run = f"r{time.monotonic_ns()}"
    bodies = [make_body(run, i, args.body_bytes) for i in range(args.events)]
    headers = [headers_for(b, relay.signed) for b in bodies]
    target.call(f"reset?run={run}")
    procs = [p for p in (relay.server, relay.client, relay.pre) if p]
    cpu0 = [p.cpu_s() for p in procs]
    send_t, status = paced_load(relay.ingest_url, bodies, headers, args.rate)
    how = wait_delivery(target, args.events)
    cpu1 = [p.cpu_s() for p in procs]
    dump = target.call("dump")
    first = {}
    for seq, t in zip(dump["seqs"], dump["times"]):
        first.setdefault(seq, t)
    lat = sorted((first[i] - send_t[i]) * 1000 for i in range(args.events) if i in first)
    n = args.events
    per_event = [(b - a) * 1000 / args.events for a, b in zip(cpu0, cpu1)]
    return {
        "relay": relay.name, "wait": how, "posts_2xx": sum(200 <= s < 300 for s in status),
        "delivered": len(first), "lost": n - len(first), "duplicates": len(dump["seqs"]) - len(first),
        "server_cpu_ms_per_event": per_event[0], "client_cpu_ms_per_event": per_event[1],
        "redis_cpu_ms_per_event": per_event[2] if relay.pre else None,
        "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": lat[-1] if lat else float("nan"),
    }


def one_round(relay, target, args, work):
    rdir = tempfile.mkdtemp(prefix="relay-", dir=work)
    try:
        relay.start(rdir, target.url)
        probes = probe_until_delivered(relay, target)
        wait_quiet([relay.server, relay.client])
        result = measure(relay, target, args)
        result["probes"] = probes
        return result
    finally:
        relay.stop()
        if not args.keep:
            shutil.rmtree(rdir, ignore_errors=True)


COLUMNS = [("server CPU / event", "server_cpu_ms_per_event"), ("client or agent CPU / event", "client_cpu_ms_per_event"),
           ("e2e p50", "p50_ms"), ("e2e p99", "p99_ms")]


def table(results, args):
    lines = [f"{args.events} events of {args.body_bytes} B at {args.rate:g}/s; medians of {args.rounds} rounds "
             "(CPU: utime+stime from /proc/PID/stat over the phase, divided by the events)", "",
             "| relay | " + " | ".join(c for c, _ in COLUMNS) + " | delivered (worst round) | 2xx (worst round) |",
             "| --- |" + " --- |" * (len(COLUMNS) + 2)]
    for name, rows in results.items():
        if not rows:
            continue
        cells = [f"{statistics.median(r[k] for r in rows):.2f} ms" for _, k in COLUMNS]
        if rows[0]["redis_cpu_ms_per_event"] is not None:
            cells[0] += f" + {statistics.median(r['redis_cpu_ms_per_event'] for r in rows):.2f} ms Redis"
        worst = min(r["delivered"] for r in rows), min(r["posts_2xx"] for r in rows)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {worst[0]} / {args.events} | {worst[1]} |")
    return "\n".join(lines)


def build_relays(args):
    out = [relays.Hookrelay(label, path, args.scheme) for label, path in args.hookrelay]
    out.append(relays.Gosmee(args.gosmee_bin))
    if args.redis_server:
        out.append(relays.Gosmee(args.gosmee_bin, args.redis_server))
    else:
        print("skip gosmee + Redis: no redis-server (apt-get install redis-server, or set REDIS_SERVER)", flush=True)
    out.append(relays.Smee(shutil.which("node"), args.smee_dir, args.smee_client))
    present = []
    for r in out:
        why = r.available()
        if why:
            print(why, flush=True)  # on stdout: the table's reader sees what was left out
        else:
            present.append(r)
    return present


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hookrelay", action="append", default=[], metavar="LABEL=BIN", type=lambda s: tuple(s.split("=", 1)))
    p.add_argument("--gosmee-bin")
    p.add_argument("--redis-server")
    p.add_argument("--smee-dir")
    p.add_argument("--smee-client")
    p.add_argument("--scheme", default="none", choices=["none", "github"])
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--rate", type=float, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--body-bytes", type=int, default=1024)
    p.add_argument("--json", help="also write every round's numbers here")
    p.add_argument("--keep", action="store_true", help="keep each round's work dir (logs, data)")
    return p.parse_args()


def main():
    args = parse_args()
    present = build_relays(args)
    if not present:
        sys.exit("no relay to measure")
    work = tempfile.mkdtemp(prefix="bench-cost-")
    target = Target(work)
    results = {r.name: [] for r in present}
    try:
        for rnd in range(args.rounds):
            # Turns: every relay once per round, the starting relay rotating between rounds.
            order = present[rnd % len(present):] + present[:rnd % len(present)]
            for relay in order:
                try:
                    res = one_round(relay, target, args, work)
                except RuntimeError as e:  # one relay failing to start must not end the others' run
                    log(f"round {rnd + 1} {relay.name}: FAILED: {e}")
                    continue
                results[relay.name].append(res)
                log(f"round {rnd + 1} {json.dumps(res)}")
    finally:
        target.proc.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(table(results, args))


if __name__ == "__main__":
    main()
