#!/usr/bin/env python3
"""The checks at the end of scripts/soak.sh (and its drain wait).

usage: soak_check.py drain URL ADMIN_TOKEN CHANNEL TIMEOUT_SECS
       soak_check.py check WORK_DIR URL ADMIN_TOKEN CHANNEL KEEP RATE MAX_IN_FLIGHT

`drain` waits until every consumer group of CHANNEL has acked the head (exit 1 on
timeout). `check` reads what soak.sh left in WORK_DIR:
  acks.log        `<t> <delivery id> <offset> <event id> <dup>` per 200 from the relay
  deliveries.log  `<t> <offset> <event id>` per 2xx the flaky target answered
  chaos.log       `<t> <what> <pid>`: relay_start, relay_kill, agent_kill, target_kill,
                  unexpected_exit_<name>
  samples.tsv     `<t> <relay pid> <VmRSS kB> <open fds> <data dir kB>` every few seconds
  ingest.json     the ingester's counters
and the relay's admin API, prints one PASS/FAIL line per check plus the figures, and
exits 1 if any check failed.
"""

import json
import statistics
import sys
import time
import urllib.request
from collections import Counter, defaultdict

# The agent receives up to this many events beyond --max-in-flight (README, "Agent").
AGENT_PREFETCH = 64
# A relay crash can also lose this many acknowledged events per group whose cursor write
# was waiting for the next group commit (src/storage/sled/linger.rs).
LINGER_MAX_EVENTS = 32
# Samples taken in the first seconds of a relay's life are start-up, not steady state.
WARMUP_SECS = 20
# A lifetime needs this many samples after warm-up for a first/last-quarter comparison.
MIN_SAMPLES = 4
# Leak thresholds: last-quarter median above first-quarter median by more than this.
RSS_LEAK_RATIO = 1.25
RSS_LEAK_SLACK_KB = 8 * 1024
FD_LEAK_SLACK = 16
# The data dir counts as bounded while its largest size in the last quarter of the
# retention-active samples stays under this multiple of the largest in the first half.
# Growing with the events ingested instead would give ~1.9 over a 30-minute soak.
DATA_DIR_GROWTH_RATIO = 1.25
# Retention runs every 5 s; allow two passes after the head first exceeds KEEP.
RETENTION_PASS_SECS = 5


def get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def channel_info(url, token, channel):
    for c in get(f"{url}/v1/channels", token)["channels"]:
        if c["name"] == channel:
            return c
    raise SystemExit(f"channel {channel} not in /v1/channels")


def drain(url, token, channel, timeout):
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            c = channel_info(url, token, channel)
            if c["groups"] and all(g["cursor"] >= c["head"] for g in c["groups"]):
                print(f"drained: head {c['head']}, groups {c['groups']}")
                return 0
        except OSError:
            pass
        time.sleep(1)
    print(f"not drained after {timeout} s: {channel_info(url, token, channel)}")
    return 1


def read_rows(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


class Report:
    def __init__(self):
        self.failed = 0

    def check(self, name, ok, detail):
        self.failed += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    @staticmethod
    def figure(name, value):
        print(f"      {name}: {value}")


def stored_events(url, token, channel, earliest, head):
    """Every stored event from earliest to head, page by page: [(offset, id)]. Capped
    at the head read before, so that the check also runs against a live relay."""
    out = []
    offset = earliest
    while offset <= head:
        page = get(f"{url}/v1/channels/{channel}/events?from={offset}&limit=1000", token)
        if not page["events"]:
            break
        out += [(e["offset"], e["id"]) for e in page["events"] if e["offset"] <= head]
        offset = page["events"][-1]["offset"] + 1
    return out


def check_log(rep, acks, info, stored):
    """Offsets dense from earliest to head; what the relay acknowledged is what it stores."""
    head, earliest = info["head"], info["earliest"]
    offsets = [o for o, _ in stored]
    dense = offsets == list(range(earliest, head + 1))
    rep.check("offsets dense", dense,
              f"{len(offsets)} stored events, offsets {earliest}..{head}"
              + ("" if dense else f", first gap near {first_gap(offsets, earliest)}"))
    by_offset = dict(stored)
    id_offsets = defaultdict(set)
    for o, i in stored:
        id_offsets[i].add(o)
    stored_twice = sum(1 for s in id_offsets.values() if len(s) > 1)
    ack_offsets = defaultdict(set)
    for _, _, off, eid, _ in acks:
        ack_offsets[eid].add(int(off))
    acked_twice = sum(1 for s in ack_offsets.values() if len(s) > 1)
    mismatched = sum(1 for eid, offs in ack_offsets.items()
                     for o in offs if o in by_offset and by_offset[o] != eid)
    beyond = sum(1 for offs in ack_offsets.values() for o in offs if o > head)
    rep.check("acknowledged = stored", stored_twice + acked_twice + mismatched + beyond == 0,
              f"ids stored at two offsets {stored_twice}, ids acknowledged with two offsets "
              f"{acked_twice}, acknowledged offset holding another id {mismatched}, "
              f"acknowledged offsets above head {beyond}")


def first_gap(offsets, start):
    for expected, got in zip(range(start, start + len(offsets)), offsets):
        if expected != got:
            return expected
    return start + len(offsets)


def check_delivery(rep, acks, deliveries, info):
    acked = {row[3]: int(row[2]) for row in acks}
    delivered = Counter(row[2] for row in deliveries)
    missing = [eid for eid in acked if eid not in delivered]
    trimmed = sum(1 for eid in missing if acked[eid] < info["earliest"])
    rep.check("every acknowledged event delivered", not missing,
              f"{len(acked)} acknowledged, {len(acked) - len(missing)} delivered, "
              f"{len(missing)} missing ({trimmed} of them trimmed by retention before delivery)")
    unacked = sum(1 for eid in delivered if eid not in acked)
    rep.figure("delivered but never acknowledged to the ingester (stored, answer lost at "
               "a kill or at the stop)", unacked)
    return delivered


def failures_from(chaos):
    """Moments after which duplicates are allowed: every kill and every crash."""
    return sorted((float(t), what) for t, what, *_ in chaos
                  if what.endswith("_kill") or what.startswith("unexpected_exit"))


def check_duplicates(rep, deliveries, chaos, max_in_flight):
    """Each extra delivery is charged to the latest failure before it."""
    failures = failures_from(chaos)
    seen = set()
    charged = Counter()
    unexplained = 0
    for t, _, eid in deliveries:
        if eid not in seen:
            seen.add(eid)
            continue
        before = [i for i, (ft, _) in enumerate(failures) if ft <= float(t)]
        if before:
            charged[before[-1]] += 1
        else:
            unexplained += 1
    bound = max_in_flight + AGENT_PREFETCH + LINGER_MAX_EVENTS
    worst = max(charged.values(), default=0)
    over = [(failures[i][1], n) for i, n in charged.items() if n > bound]
    total = sum(charged.values()) + unexplained
    by_kind = Counter()
    for i, n in charged.items():
        by_kind[failures[i][1]] += n
    rep.check("duplicates only in in-flight windows", not over and unexplained == 0,
              f"{total} duplicate deliveries after {len(failures)} failures; at most {worst} "
              f"after one failure (bound --max-in-flight {max_in_flight} + prefetch "
              f"{AGENT_PREFETCH} + held cursor moves {LINGER_MAX_EVENTS} = {bound}); over the bound {over or 0}; before any failure "
              f"{unexplained}")
    rep.figure("duplicates by the failure they followed", dict(by_kind) or 0)
    return total


def quarters(values):
    q = max(1, len(values) // 4)
    return statistics.median(values[:q]), statistics.median(values[-q:])


def check_resources(rep, samples, chaos, steady_from):
    """RSS and fds flat within each relay lifetime, and from early to late lifetimes
    (those started after `steady_from`, when retention had engaged)."""
    started = {pid: float(t) for t, what, pid in chaos if what == "relay_start"}
    lives = defaultdict(list)
    for t, pid, rss, fds, _ in samples:
        if float(t) - started.get(pid, float(t)) >= WARMUP_SECS:
            lives[pid].append((int(rss), int(fds)))
    judged = {pid: s for pid, s in lives.items() if len(s) >= MIN_SAMPLES}
    rss_leaks, fd_leaks, growth = [], [], []
    for pid, s in judged.items():
        r0, r1 = quarters([r for r, _ in s])
        f0, f1 = quarters([f for _, f in s])
        growth.append(r1 - r0)
        if r1 > r0 * RSS_LEAK_RATIO + RSS_LEAK_SLACK_KB:
            rss_leaks.append((pid, r0, r1))
        if f1 > f0 + FD_LEAK_SLACK:
            fd_leaks.append((pid, f0, f1))
    # Across lifetimes only once retention keeps the log at its size: before that a
    # new relay maps (and caches) a log that is still growing, by design.
    order = sorted((p for p in lives if started.get(p, 0) >= steady_from),
                   key=lambda p: started.get(p, 0))
    meds = [(statistics.median(r for r, _ in lives[p]), statistics.median(f for _, f in lives[p]))
            for p in order if lives[p]]
    enough = len(judged) >= 2 and len(meds) >= 4
    a, b = quarters([m[0] for m in meds]) if meds else (0, 0)
    fa, fb = quarters([m[1] for m in meds]) if meds else (0, 0)
    across_ok = b <= a * RSS_LEAK_RATIO + RSS_LEAK_SLACK_KB and fb <= fa + FD_LEAK_SLACK
    rep.check("relay RSS and fds flat", enough and not rss_leaks and not fd_leaks and across_ok,
              ("" if enough else "too few relay lifetimes to judge (run longer); ")
              + ("" if across_ok else "late lifetimes use more than early ones; ")
              + f"{len(judged)} of {len(lives)} relay lifetimes had >= {MIN_SAMPLES} samples after "
              f"{WARMUP_SECS} s warm-up; RSS leaks {rss_leaks or 0}, fd leaks {fd_leaks or 0} "
              f"(leak = last-quarter median > first-quarter x {RSS_LEAK_RATIO} + "
              f"{RSS_LEAK_SLACK_KB // 1024} MiB, or fds > first + {FD_LEAK_SLACK})")
    if growth:
        rep.figure("RSS change first->last quarter within a lifetime (MiB): median / max",
                   f"{statistics.median(growth) / 1024:+.1f} / {max(growth) / 1024:+.1f}")
    rep.figure(f"per-lifetime median RSS, early vs late of the {len(meds)} lifetimes after "
               "retention engaged (MiB)",
               f"{a / 1024:.1f} -> {b / 1024:.1f}")
    rep.figure("per-lifetime median open fds, early vs late of those lifetimes", f"{fa:.0f} -> {fb:.0f}")
    all_rss = [int(r) for _, _, r, _, _ in samples]
    all_fds = [int(f) for _, _, _, f, _ in samples]
    if all_rss:
        rep.figure("RSS over all samples (MiB): min / median / max",
                   f"{min(all_rss) / 1024:.1f} / {statistics.median(all_rss) / 1024:.1f} / "
                   f"{max(all_rss) / 1024:.1f}")
        rep.figure("open fds over all samples: min / median / max",
                   f"{min(all_fds)} / {statistics.median(all_fds):.0f} / {max(all_fds)}")


def retention_engaged(acks, keep, rate):
    """When the head first passed KEEP plus two retention passes (None: never)."""
    full = [float(t) for t, _, off, _, _ in acks if int(off) > keep + 2 * RETENTION_PASS_SECS * rate]
    return min(full) if full else None


def check_data_dir(rep, samples, acks, keep, rate):
    """Bounded once retention has something to delete: the size levels off instead of
    growing with the number of events ingested. sled needs a while to reach its plateau
    (it keeps segments until its own GC rewrites them), so the late size is compared
    with the largest size of the first half after retention engaged."""
    engaged = retention_engaged(acks, keep, rate)
    sizes = [(float(t), int(kb)) for t, _, _, _, kb in samples]
    if not sizes:
        rep.check("data dir bounded by retention", False, "no samples")
        return
    if engaged is None:
        rep.check("data dir bounded by retention", False,
                  f"the head never passed keep={keep} (+2 passes): run longer or lower SOAK_KEEP; "
                  f"max size {max(kb for _, kb in sizes) / 1024:.0f} MiB")
        return
    active = [kb for t, kb in sizes if t >= engaged]
    if len(active) < MIN_SAMPLES:
        rep.check("data dir bounded by retention", False, f"only {len(active)} samples after "
                  "retention engaged: run longer")
        return
    first_half = max(active[: len(active) // 2])
    last_quarter = max(active[-max(1, len(active) // 4):])
    events = max(int(off) for _, _, off, _, _ in acks)
    rep.check("data dir bounded by retention", last_quarter <= first_half * DATA_DIR_GROWTH_RATIO,
              f"keep {keep} of {events} events; max size in the first half after retention "
              f"engaged {first_half / 1024:.0f} MiB, in the last quarter {last_quarter / 1024:.0f} "
              f"MiB (bound: x{DATA_DIR_GROWTH_RATIO}); max over the run "
              f"{max(kb for _, kb in sizes) / 1024:.0f} MiB")


def check(work, url, token, channel, keep, rate, max_in_flight):
    rep = Report()
    acks = read_rows(f"{work}/acks.log")
    deliveries = read_rows(f"{work}/deliveries.log")
    chaos = read_rows(f"{work}/chaos.log")
    samples = read_rows(f"{work}/samples.tsv")
    with open(f"{work}/ingest.json") as f:
        ingest = json.load(f)
    info = channel_info(url, token, channel)
    kinds = Counter(row[1] for row in chaos)
    rep.figure("ingest counters", json.dumps(ingest, sort_keys=True))
    rep.figure("kills", f"relay {kinds['relay_kill']}, agent {kinds['agent_kill']}, "
               f"target {kinds['target_kill']}")
    rep.figure("log", f"head {info['head']}, earliest {info['earliest']}, groups {info['groups']}")
    rep.check("no unexpected exits", not any(k.startswith("unexpected") for k in kinds),
              ", ".join(f"{k} {n}" for k, n in kinds.items() if k.startswith("unexpected"))
              or "none")
    check_log(rep, acks, info, stored_events(url, token, channel, info["earliest"], info["head"]))
    delivered = check_delivery(rep, acks, deliveries, info)
    rep.figure("deliveries (2xx) / distinct events delivered",
               f"{len(deliveries)} / {len(delivered)}")
    check_duplicates(rep, deliveries, chaos, max_in_flight)
    engaged = retention_engaged(acks, keep, rate)
    check_resources(rep, samples, chaos, engaged if engaged is not None else float("inf"))
    check_data_dir(rep, samples, acks, keep, rate)
    print(f"RESULT: {'FAIL' if rep.failed else 'PASS'} ({rep.failed} check(s) failed)")
    return 1 if rep.failed else 0


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "drain":
        url, token, channel, timeout = args
        return drain(url, token, channel, timeout)
    work, url, token, channel, keep, rate, mif = args
    return check(work, url, token, channel, int(keep), float(rate), int(mif))


if __name__ == "__main__":
    sys.exit(main())
