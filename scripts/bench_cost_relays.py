"""How scripts/bench-cost.sh starts each relay: its server, its client, the URL it ingests on.

Every relay runs on 127.0.0.1 only, from a fresh work directory; the harness ends only
the processes it started (by pid). A relay whose programs are missing is not built here:
`available()` says why, and the harness prints that line and skips it.
"""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

HOST = "127.0.0.1"
CHANNEL = "benchchannel0001"
TOKEN = "bench-token"
SECRET = "bench-secret"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
POLL_S = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")


def child_env(extra=None):
    """Loopback only: no proxy may catch a child's requests to 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not re.fullmatch(r"(https?|all|no)_proxy", k, re.I)}
    env.update(NO_PROXY="*", no_proxy="*")
    env.update(extra or {})
    return env


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    """One child process, its output in a log file; stopped by its own pid only."""

    def __init__(self, role, argv, work, cwd=None, env=None):
        self.role, self.argv = role, argv
        self.log = os.path.join(work, f"{role}.log")
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(argv, cwd=cwd or work, env=child_env(env), stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def cpu_s(self):
        """utime + stime of the whole process (all its threads, live and exited), seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def wait_until(what, check, timeout_s=READY_TIMEOUT_S, procs=()):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.role} exited while waiting for {what}; see {p.log}")
        value = check()
        if value:
            return value
        time.sleep(POLL_S)
    raise RuntimeError(f"timed out waiting for {what}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status < 500
    except OSError as e:
        return getattr(e, "code", 500) < 500


def tcp_open(port):
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


class Relay:
    """Base: subclasses set name, server, client, ingest_url in start()."""

    server = client = pre = None
    ingest_url = ""
    signed = False

    def available(self):
        return None

    def stop(self):
        for p in (self.client, self.server, self.pre):
            if p:
                p.stop()


class Hookrelay(Relay):
    """Durable (sled, fresh data dir, fsync before every 2xx), with its agent."""

    def __init__(self, name, binary, scheme):
        self.name, self.binary, self.scheme = name, binary, scheme
        self.signed = scheme == "github"

    def available(self):
        if not os.access(self.binary, os.X_OK):
            return f"skip {self.name}: {self.binary} is not an executable (cargo build --release)"
        return None

    def start(self, work, target):
        cfg = os.path.join(work, "config.toml")
        secrets = f'secrets = ["{SECRET}"]\n' if self.signed else ""
        with open(cfg, "w") as f:
            f.write(f'[server]\nlisten = "{HOST}:0"\ndata_dir = "{work}/data"\n\n'
                    f'[[channel]]\nname = "{CHANNEL}"\nscheme = "{self.scheme}"\n{secrets}tokens = ["{TOKEN}"]\n')
        self.server = Proc("server", [self.binary, "serve", "--config", cfg], work)
        url = wait_until("hookrelay to listen", lambda: self._listening(), procs=[self.server])
        self.ingest_url = f"{url}/hooks/{CHANNEL}"
        relay_ws = "ws://" + url.split("://", 1)[1]
        self.client = Proc("agent", [self.binary, "agent", "--relay", relay_ws, "--channel", CHANNEL,
                                     "--token", TOKEN, "--forward", target, "--from", "latest"], work)

    def _listening(self):
        with open(self.server.log, errors="replace") as f:
            m = re.search(r"hookrelay listening on (\S+)", f.read())
        return m and m.group(1)


class Gosmee(Relay):
    """gosmee in memory, or with --redis-url (a throwaway redis-server with no persistence)."""

    def __init__(self, binary, redis_server=None):
        self.binary, self.redis_server = binary, redis_server
        self.name = "gosmee + Redis" if redis_server else "gosmee (memory)"

    def available(self):
        if not self.binary or not os.access(self.binary, os.X_OK):
            return (f"skip {self.name}: GOSMEE_BIN is not set to a gosmee binary "
                    "(build: GOFLAGS=-mod=vendor go build in a gosmee checkout)")
        if self.redis_server is not None and not os.access(self.redis_server, os.X_OK):
            return f"skip {self.name}: no redis-server (apt-get install redis-server, or set REDIS_SERVER)"
        return None

    def start(self, work, target):
        port = free_port()
        args = [self.binary, "server", "--address", HOST, "--port", str(port)]
        client = [self.binary, "client", "--nocolor"]
        if self.redis_server:
            rport = free_port()
            self.pre = Proc("redis", [self.redis_server, "--port", str(rport), "--bind", HOST, "--save", "",
                                      "--appendonly", "no", "--protected-mode", "yes"], work)
            wait_until("redis-server", lambda: tcp_open(rport), procs=[self.pre])
            args += ["--redis-url", f"redis://{HOST}:{rport}/0"]
            client += ["--resume-state-file", os.path.join(work, "resume.state")]
        self.server = Proc("server", args, work)
        wait_until("gosmee to listen", lambda: http_ok(f"http://{HOST}:{port}/health"), procs=[self.server])
        self.ingest_url = f"http://{HOST}:{port}/{CHANNEL}"
        self.client = Proc("client", client + [self.ingest_url, target], work)


class Smee(Relay):
    """smee.io (node index.js, production build) with smee-client."""

    name = "smee.io + smee-client"

    def __init__(self, node, smee_dir, smee_client):
        self.node, self.smee_dir, self.smee_client = node, smee_dir, smee_client

    def available(self):
        if not self.node:
            return f"skip {self.name}: node is not on PATH"
        if not self.smee_dir or not os.path.isfile(os.path.join(self.smee_dir, "public", "main.min.js.gz")):
            return (f"skip {self.name}: SMEE_DIR is not set to a smee.io checkout with its production build "
                    "(npm install && NODE_ENV=production npx webpack)")
        if not self.smee_client or not os.path.isfile(self.smee_client):
            return f"skip {self.name}: SMEE_CLIENT is not set to smee-client's bin/smee.js (npm install smee-client@5.0.0)"
        return None

    def start(self, work, target):
        port = free_port()
        env = {"PORT": str(port), "HOST": HOST, "NODE_ENV": "production", "SMEE_LOGGER": "1"}
        self.server = Proc("server", [self.node, os.path.join(self.smee_dir, "index.js")], work,
                           cwd=self.smee_dir, env=env)
        wait_until("smee.io to listen", lambda: http_ok(f"http://{HOST}:{port}/"), procs=[self.server])
        self.ingest_url = f"http://{HOST}:{port}/{CHANNEL}"
        self.client = Proc("client", [self.node, self.smee_client, "--url", self.ingest_url, "--target", target], work)
