#!/usr/bin/python3
"""`make bench`: smsgwd against the simulator, side by side with gammu-smsd
and smstools3 through the same simulator, in one run on this machine.

Prints a table and writes bench/RESULTS.md from what it measured (nothing
in RESULTS.md is typed by hand). Raw numbers go to $SMSGW_BUILD/bench.json.

    bench/run.sh                  everything (what `make bench` runs)
    bench/run.sh idle latency     only some sections (prints, writes
                                  nothing to RESULTS.md)

Sections: idle, throughput, slow, peers, latency, invites, scaling.
"""
import json
import os
import platform
import random
import re
import sqlite3
import secrets
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import atclient        # noqa: E402
import peers           # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_MD = os.path.join(HERE, "RESULTS.md")

# Sizes: chosen so that the whole run stays well under 20 minutes on two
# shared cores while every number rests on enough samples.
N_ZERO = 3000          # SMS through one zero-delay modem
ZERO_REPEATS = 3       # the median run counts (the disk's fsync varies)
N_ZERO_REPORTS = 2000  # the same with status reports on
SLOW_DELAY = 3         # s, the realistic network round trip
SLOW_ROUNDS = 10       # SMS per modem at 3 s (30 s of sending)
PEER_ROUNDS = 5        # the peers at 3 s (they add up to 0.6 s per SMS)
N_GAMMU_ZERO = 20      # gammu-smsd sends about 1.4 SMS/s at zero delay
N_SMSTOOLS_ZERO = 600
N_PROBES = 300         # sms.send -> AT+CMGS latency samples, idle
N_CLAIMS = 100
N_SINGLE = 1000        # invites one at a time
N_PIPELINED = 2000
N_BULK = 10000         # account.invite_many, 500 per request like smsgwctl
BULK_BATCH = 500
SCALE_SIZES = (1000, 10000, 100000)
SCALE_OPS = 1000       # invites per size
SCALE_ACCEPTS = 2000   # sms.send per size
SCALE_WARMUP = 200     # of each, first, not counted
SCALE_BATCHES = 5      # each measured in 5 batches; the median counts
SCALE_WINDOW = 3000    # backlog SMS sent per size


def log(msg):
    print("bench: " + msg, flush=True)


# --- the machine -------------------------------------------------------------

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = f.read().strip()
    except OSError:
        qlen = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "max_dgram_qlen": qlen,
            "python": platform.python_version(),
            "load_start": bl.load_average()}


def fsync_latency(path, n=200):
    """fdatasync of a 4 KiB page on the filesystem the stores live on: every
    smsgwd commit costs at least one."""
    f = os.path.join(path, "fsync.probe")
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        lat = []
        for i in range(n):
            os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
            t = time.monotonic()
            os.fdatasync(fd)
            lat.append(time.monotonic() - t)
    finally:
        os.close(fd)
        os.unlink(f)
    return {"median_ms": bl.median(lat) * 1e3, "p99_ms": bl.pct(lat, 99) * 1e3}


# --- start-up and idle ---------------------------------------------------------

def sec_idle(R):
    w = bl.workdir("idle")
    sims = bl.start_sims(1, [], w)
    d = bl.Smsgwd(w, [sims[0].link], daemon={"health_interval": "15s"})
    try:
        fresh = d.start()
        d.wait_modems(1)
        d.stop()
        restarts = []
        for i in range(5):
            restarts.append(d.start())
            if i < 4:
                d.stop()
        d.wait_modems(1)
        time.sleep(1.0)
        pid = d.pid
        rss = bl.status_kb(pid, "VmRSS")
        anon = bl.status_kb(pid, "RssAnon")
        hwm = bl.status_kb(pid, "VmHWM")
        threads = bl.status_kb(pid, "Threads")
        cmds0 = sims[0].stats()["commands"]
        c0, t0, x0 = bl.cpu_ns(pid), bl.cpu_s(pid), bl.ctx_switches(pid)
        window = 10.0
        time.sleep(window)
        c1, t1, x1 = bl.cpu_ns(pid), bl.cpu_s(pid), bl.ctx_switches(pid)
        cmds1 = sims[0].stats()["commands"]
    finally:
        d.stop()
        bl.stop_all(sims)
        bl.rmtree(w)
    got = [t for t in restarts if t is not None]
    R["idle"] = {
        "start_fresh_ms": fresh * 1e3 if fresh is not None else None,
        "start_ms_median": bl.median(got) * 1e3 if got else None,
        "start_ms_max": max(got) * 1e3 if got else None,
        "rss_kb": rss, "rss_anon_kb": anon, "hwm_kb": hwm,
        "threads": threads, "window_s": window,
        "cpu_ms": (c1 - c0) / 1e6, "ticks": round((t1 - t0) * bl.TICK),
        "cpu_pct": (c1 - c0) / 1e9 / window * 100,
        "wakeups": x1 - x0, "modem_commands": cmds1 - cmds0}


# --- throughput ----------------------------------------------------------------

def _sends(n, prefix="+34612"):
    return [("sms.send", {"to": "%s%06d" % (prefix, i),
                          "text": "bench message %d" % i}) for i in range(n)]


class EventClock(threading.Thread):
    """Stamps every sms.sent event on its own connection."""

    def __init__(self, d, n, timeout):
        super().__init__(daemon=True)
        self.c = d.client(timeout=timeout)
        self.c.ok("events.subscribe")
        self.n, self.timeout = n, timeout
        self.times = []

    def run(self):
        deadline = time.monotonic() + self.timeout
        for _ in range(self.n * 20 + 100):
            if len(self.times) >= self.n or time.monotonic() > deadline:
                break
            try:
                msg = self.c.read_line(max(0.1, deadline - time.monotonic()))
            except Exception:  # the daemon went away: the bench reports it
                break
            if msg.get("event") == "sms.sent":
                self.times.append(time.monotonic())
        self.c.close()


def smsgw_run(k, delay, n, reports=False, events=False, min_pdus=None,
              timeout=600.0):
    """n SMS through one smsgwd with k simulated modems of `delay` s."""
    w = bl.workdir("tp")
    args = ["--send-delay", str(delay)]
    if reports:
        args += ["--report-delay", "0.2"]
    sims = bl.start_sims(k, args, w)
    extra = bl.start_sims(1, args, w) if min_pdus else []
    d = bl.Smsgwd(w, [s.link for s in sims],
                  outbox={"status_reports": "yes" if reports else "no"})
    out = {"modems": k, "delay_s": delay, "n": n, "reports": reports}
    try:
        d.start()
        d.wait_modems(k)
        time.sleep(0.5)
        pid = d.pid
        tails = [bl.LogTail(s.log_path) for s in sims]
        clock = EventClock(d, n, timeout) if events else None
        minc = None
        if min_pdus:
            minc = {}
            th = threading.Thread(target=lambda: minc.update(
                times=atclient.run(extra[0].link, min_pdus)), daemon=True)
        c = d.client(timeout=timeout)
        out["hwm_life_kb"] = bl.status_kb(pid, "VmHWM")
        bl.clear_hwm(pid)
        if clock:
            clock.start()
        if minc is not None:
            th.start()
        sims_c0 = [bl.cpu_ns(s.proc.pid) for s in sims]
        c0 = bl.cpu_ns(pid)
        t0 = time.monotonic()
        res = bl.pipeline(c, _sends(n), window=128, timeout=timeout)
        t_acc = time.monotonic()
        wall_acc = time.time()
        bl.must_ok(res, "sms.send")
        t1 = bl.wait_lines(tails, n, timeout, keep=True)
        if reports:
            def reported():
                st = [s.stats() for s in sims]
                return (sum(x["reports"] for x in st) >= n and
                        sum(x["stored"] for x in st) == 0)
            bl.wait_for(reported, timeout, "every status report handled",
                        interval=0.05)
            time.sleep(0.3)
        c1 = bl.cpu_ns(pid)
        sims_cpu = sum(bl.cpu_ns(s.proc.pid) for s in sims) - sum(sims_c0)
        out["hwm_run_kb"] = bl.status_kb(pid, "VmHWM")
        c.close()
        if clock:
            clock.join(timeout)
        if minc is not None:
            th.join(timeout)
        times = bl.sent_times(tails)
    finally:
        d.stop()
        bl.stop_all(sims + extra)
    after = [t for t in times if t > wall_acc]
    out.update({
        "seconds": t1 - t0, "rate": n / (t1 - t0),
        "accept_s": t_acc - t0, "accept_rate": n / (t_acc - t0),
        "cpu_ms_per_msg": (c1 - c0) / 1e6 / n,
        "sim_cpu_ms_per_msg": sims_cpu / 1e6 / n,
        "pdus": [json.loads(l)["pdu"] for l in tails[0].lines][:n],
        "period_after_accept_s": ((after[-1] - after[0]) / (len(after) - 1)
                                  if len(after) > 50 else None),
        "n_after_accept": len(after)})
    if clock and len(clock.times) > 1:
        out["event_period_s"] = ((clock.times[-1] - clock.times[0]) /
                                 (len(clock.times) - 1))
    if minc and len(minc.get("times", [])) > 1:
        mt = minc["times"]
        out["min_period_s"] = (mt[-1] - mt[0]) / (len(mt) - 1)
    bl.rmtree(w)
    return out


def min_client_run(delay, pdus):
    """The simulator's own cost: the minimal client sends the same PDUs."""
    w = bl.workdir("min")
    sim = bl.start_sims(1, ["--send-delay", str(delay)], w)[0]
    try:
        c0 = bl.cpu_ns(sim.proc.pid)
        times = atclient.run(sim.link, pdus)
        cpu = bl.cpu_ns(sim.proc.pid) - c0
        n = bl.LogTail(sim.log_path).poll()
    finally:
        bl.stop_all([sim])
        bl.rmtree(w)
    if n < len(pdus):
        raise bl.BenchError("the simulator logged %d of %d" % (n, len(pdus)))
    return {"n": len(pdus),
            "period_s": (times[-1] - times[0]) / (len(times) - 1),
            "sim_cpu_ms_per_msg": cpu / 1e6 / len(pdus)}


def sec_throughput(R):
    runs = []
    for i in range(ZERO_REPEATS):
        log("zero delay, 1 modem, %d SMS (run %d of %d)" %
            (N_ZERO, i + 1, ZERO_REPEATS))
        z = smsgw_run(1, 0, N_ZERO)
        log("  %.0f SMS/s, %.3f ms CPU/SMS" % (z["rate"], z["cpu_ms_per_msg"]))
        runs.append(z)
    runs.sort(key=lambda r: r["cpu_ms_per_msg"])
    z = runs[len(runs) // 2]
    R["pdus"] = z.pop("pdus")
    R["zero"] = z
    R["zero_runs"] = [{"rate": r["rate"], "cpu_ms_per_msg":
                       r["cpu_ms_per_msg"], "period_after_accept_s":
                       r["period_after_accept_s"]} for r in runs]
    log("minimal client, zero delay, %d SMS" % len(R["pdus"]))
    R["min_zero"] = min_client_run(0, R["pdus"])
    log("zero delay with status reports, %d SMS" % N_ZERO_REPORTS)
    zr = smsgw_run(1, 0, N_ZERO_REPORTS, reports=True)
    zr.pop("pdus")
    R["zero_reports"] = zr


def sec_slow(R):
    pdus = R.get("pdus")
    if not pdus:   # run alone: smsgwd's PDUs for the minimal client
        pdus = smsgw_run(1, 0, SLOW_ROUNDS)["pdus"]
    R["slow"] = {}
    for k in (1, 4, 16):
        n = SLOW_ROUNDS * k
        log("%d s delay, %d modems, %d SMS" % (SLOW_DELAY, k, n))
        r = smsgw_run(k, SLOW_DELAY, n, events=(k == 1),
                      min_pdus=(pdus[:SLOW_ROUNDS] if k == 1 and pdus
                                else None))
        r.pop("pdus")
        R["slow"][str(k)] = r
        log("  %.3f SMS/s (%.1f%% of %d/%d)" %
            (r["rate"], r["rate"] / (k / SLOW_DELAY) * 100, k, SLOW_DELAY))


# --- peers -----------------------------------------------------------------------

def sec_peers(R):
    R["peers"] = {}
    for peer in ("gammu", "smstools"):
        P = R["peers"][peer] = {"version": peers.version(peer)}
        if not peers.available(peer):
            P["skipped"] = ("not installed (bench/run.sh installs it from "
                            "Debian when run as root)")
            log("%s: %s" % (peer, P["skipped"]))
            continue
        try:
            n = N_GAMMU_ZERO if peer == "gammu" else N_SMSTOOLS_ZERO
            log("%s: zero delay, 1 modem, %d SMS" % (peer, n))
            P["zero"] = _peer_run(peer, 1, 0, n, fast=True)
            log("  %.1f SMS/s, %.3f ms CPU/SMS" %
                (P["zero"]["rate"], P["zero"]["cpu_ms_per_msg"]))
            P["slow"] = {}
            for k in (1, 4, 16):
                n = PEER_ROUNDS * k
                log("%s: %d s delay, %d modems, %d SMS" %
                    (peer, SLOW_DELAY, k, n))
                P["slow"][str(k)] = _peer_run(peer, k, SLOW_DELAY, n,
                                              fast=False)
        except Exception as e:  # a peer that fails is reported, not fatal
            P["error"] = "%s: %s" % (type(e).__name__, e)
            log("%s failed: %s" % (peer, P["error"]))


def _peer_run(peer, k, delay, n, fast):
    w = bl.workdir(peer)
    sims = bl.start_sims(k, ["--send-delay", str(delay)], w)
    try:
        return peers.run(peer, sims, w, n, loopsleep=0 if fast else 1,
                         poll_faster=1000 if fast else 100,
                         idle_s=5.0 if fast else 0.0)
    finally:
        bl.stop_all(sims)
        bl.rmtree(w)


# --- sms.send -> AT+CMGS latency, claims -------------------------------------------

TOKEN_RE = re.compile(re.escape(bl.CLAIM_URL.split("{")[0]) +
                      r"([A-Za-z0-9_-]{24})(?![A-Za-z0-9_-])")


class Trace:
    """The fake modem's trace: destination digits -> first-byte times."""

    def __init__(self, path):
        self.tail = bl.LogTail(path)
        self.seen = []   # (t, digits)

    def poll(self):
        before = len(self.tail.lines)
        self.tail.poll(keep=True)
        for l in self.tail.lines[before:]:
            t, _mr, digits = l.decode().split()
            self.seen.append((float(t), digits))

    def wait(self, digits, timeout=10.0):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.0005) + 10):
            for t, dg in reversed(self.seen[-64:]):
                if dg == digits:
                    return t
            if time.monotonic() > deadline:
                break
            time.sleep(0.0005)
            self.poll()
        raise bl.BenchError("no AT+CMGS for %s" % digits)


def probe(c, trace, i):
    number = "+34690%06d" % i
    r = c.request("sms.send", {"to": number, "text": "probe %d" % i})
    t_acc = time.monotonic()
    if not r.get("ok"):
        raise bl.BenchError("sms.send: %r" % r)
    return t_acc, trace.wait(number.lstrip("+"))


def loop_wait(pid):
    """(now, run-queue wait ns, time slices) of smsgwd's event-loop thread
    (the main thread) from its schedstat."""
    with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
        v = [int(x) for x in f.read().split()]
    return time.monotonic(), v[1], v[2]


def sec_latency(R):
    w = bl.workdir("lat")
    sims = bl.start_sims(1, [], w)
    d = bl.Smsgwd(w, [sims[0].link])
    n_people = 2 * N_CLAIMS + 10
    try:
        # Phase 1: invites through the real simulator, for claim tokens.
        d.start()
        d.wait_modems(1)
        c = d.client()
        c.ok("settings.set", {"phone_profiles": True})
        res = bl.pipeline(c, [("account.invite", {
            "phone": "+34650%06d" % i, "name": "P%d" % i})
            for i in range(n_people)])
        bl.must_ok(res, "account.invite")
        tail = bl.LogTail(sims[0].log_path)
        bl.wait_lines([tail], n_people, 120, keep=True)
        c.close()
    finally:
        d.stop()
        bl.stop_all(sims)
    tokens = []
    for l in tail.lines:
        m = TOKEN_RE.search(json.loads(l)["text"])
        if m:
            tokens.append(m.group(1))
    if len(tokens) < 2 * N_CLAIMS:
        raise bl.BenchError("only %d claim links in the sent log" %
                            len(tokens))
    # Phase 2: the same store behind the fake modem.
    link = os.path.join(w, "fake.pty")
    trace_path = os.path.join(w, "trace.txt")
    fm = subprocess.Popen([sys.executable, os.path.join(HERE, "fakemodem.py"),
                           "--link", link, "--trace", trace_path],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    d = bl.Smsgwd(w, [link], state_dir=d.state_dir)
    try:
        fm.stdout.readline()
        d.start()
        d.wait_modems(1)
        trace = Trace(trace_path)
        c = d.client()
        rnd = random.Random(1)
        idle = []
        q0 = loop_wait(d.pid)
        for i in range(N_PROBES):
            t_acc, t_at = probe(c, trace, i)
            idle.append(t_at - t_acc)
            time.sleep(0.01 + rnd.random() * 0.02)
        q1 = loop_wait(d.pid)
        # Claims alone.
        claims = _claims(d, tokens[:N_CLAIMS], "first")
        # Claims again, with probes while they hash.
        box = {}
        th = threading.Thread(target=lambda: box.update(
            _claims(d, tokens[N_CLAIMS:2 * N_CLAIMS], "second")), daemon=True)
        busy, clean, worst, i = [], [], [], N_PROBES
        q2 = loop_wait(d.pid)
        th.start()
        time.sleep(0.05)
        for _ in range(100000):
            if not th.is_alive():
                break
            t_acc, t_at = probe(c, trace, i)
            i += 1
            busy.append(t_at - t_acc)
            others = [t for t, dg in trace.seen
                      if not dg.startswith("34690") and
                      t_acc - 0.005 <= t <= t_at]
            worst.append(((t_at - t_acc) * 1e3, len(others)))
            if not others:
                clean.append(t_at - t_acc)
            time.sleep(0.005 + rnd.random() * 0.01)
        th.join(300)
        q3 = loop_wait(d.pid)
        c.close()
    finally:
        d.stop()
        fm.terminate()
        fm.wait(10)
        bl.rmtree(w)
    R["latency"] = {
        "idle_n": len(idle), "idle_median_ms": bl.median(idle) * 1e3,
        "idle_p99_ms": bl.pct(idle, 99) * 1e3, "idle_max_ms": max(idle) * 1e3,
        "busy_n": len(busy),
        "busy_median_ms": bl.median(busy) * 1e3 if busy else None,
        "busy_p99_ms": bl.pct(busy, 99) * 1e3 if busy else None,
        "busy_worst": sorted(worst, reverse=True)[:10],
        "loop_runq_idle_ms_per_s": (q1[1] - q0[1]) / 1e6 / (q1[0] - q0[0]),
        "loop_runq_busy_ms_per_s": (q3[1] - q2[1]) / 1e6 / (q3[0] - q2[0]),
        "loop_wakeups_busy": q3[2] - q2[2],
        "loop_runq_busy_ms": (q3[1] - q2[1]) / 1e6,
        "clean_n": len(clean),
        "clean_p99_ms": bl.pct(clean, 99) * 1e3 if clean else None}
    R["claims"] = claims
    R["claims_with_probes"] = box


def _claims(d, tokens, tag):
    """Claims with pipelined requests (at most 32 waiting: the hasher's
    queue holds 64); returns the rate and the daemon's CPU per claim."""
    c = d.client(timeout=300)
    c0 = bl.cpu_ns(d.pid)
    t0 = time.monotonic()
    res = bl.pipeline(c, [("account.claim", {
        "token": t, "password": "bench %s passphrase %d" % (tag, i)})
        for i, t in enumerate(tokens)], window=32, timeout=300)
    t1 = time.monotonic()
    cpu = bl.cpu_ns(d.pid) - c0
    c.close()
    bl.must_ok(res, "account.claim")
    return {"n": len(tokens), "seconds": t1 - t0,
            "rate": len(tokens) / (t1 - t0),
            "cpu_ms_per_claim": cpu / 1e6 / len(tokens)}


# --- invites -------------------------------------------------------------------------

def _invites(prefix, n):
    return [("account.invite", {"phone": "%s%06d" % (prefix, i),
                                "name": "Person %d" % i}) for i in range(n)]


def sec_invites(R):
    w = bl.workdir("inv")
    d = bl.Smsgwd(w, [os.path.join(w, "absent.pty")])
    out = {}
    try:
        d.start()
        c = d.client(timeout=300)
        c.ok("settings.set", {"phone_profiles": True})
        pid = d.pid

        def measure(name, fn, n):
            c0, t0 = bl.cpu_ns(pid), time.monotonic()
            fn()
            t1, c1 = time.monotonic(), bl.cpu_ns(pid)
            out[name] = {"n": n, "seconds": t1 - t0, "rate": n / (t1 - t0),
                         "cpu_ms_per_invite": (c1 - c0) / 1e6 / n}
            log("  %s: %.0f invites/s" % (name, n / (t1 - t0)))

        def single():
            for op, args in _invites("+34660", N_SINGLE):
                r = c.request(op, args)
                if not r.get("ok"):
                    raise bl.BenchError("account.invite: %r" % r)

        def pipelined():
            bl.must_ok(bl.pipeline(c, _invites("+34661", N_PIPELINED)),
                       "account.invite")

        batches = []

        def bulk():
            people = [a for _, a in _invites("+34662", N_BULK)]
            for i in range(0, N_BULK, BULK_BATCH):
                b0 = bl.cpu_ns(pid)
                r = c.ok("account.invite_many",
                         {"people": people[i:i + BULK_BATCH]}, timeout=300)
                batches.append((bl.cpu_ns(pid) - b0) / 1e6 / BULK_BATCH)
                bad = [x for x in r["results"] if not x.get("ok")]
                if bad:
                    raise bl.BenchError("invite_many: %r" % bad[0])

        log("invites: single %d, pipelined %d, bulk %d" %
            (N_SINGLE, N_PIPELINED, N_BULK))
        measure("single", single, N_SINGLE)
        measure("pipelined", pipelined, N_PIPELINED)
        measure("bulk", bulk, N_BULK)
        out["bulk"]["first_batch_cpu_ms"] = batches[0]
        out["bulk"]["last_batch_cpu_ms"] = batches[-1]
        out["bulk"]["invited_before"] = N_SINGLE + N_PIPELINED
        c.close()
    finally:
        d.stop()
        bl.rmtree(w)
    R["invites"] = out


# --- growth: 1k, 10k, 100k SMS and accounts --------------------------------------------

def _template_store(w):
    """A store made by smsgwd itself, holding one invited account (with its
    invite SMS) and one sms.send: the rows the prefill clones."""
    d = bl.Smsgwd(w, [os.path.join(w, "absent.pty")])
    try:
        d.start()
        c = d.client()
        c.ok("settings.set", {"phone_profiles": True})
        c.ok("account.invite", {"phone": "+34600000001", "name": "T"})
        c.ok("sms.send", {"to": "+34600000002", "text": "bench message 0"})
        c.close()
    finally:
        d.stop()
    return d.state_dir


def _clone(db, table, cols, rows):
    db.executemany("INSERT INTO %s (%s) VALUES (%s)" % (
        table, ", ".join(cols), ", ".join("?" * len(cols))), rows)


def prefill(path, n):
    """n invited accounts, each with its sent invite SMS, claim-SMS record
    and audit entry (a month old), plus n queued sms.send SMS (the outbox
    backlog), cloned from the template rows. smsgwd must be stopped."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    now = int(time.time() * 1000)
    old = now - 30 * 86400 * 1000

    def one(sql):
        r = db.execute(sql).fetchone()
        if r is None:
            raise bl.BenchError("template row missing: " + sql)
        return dict(r)
    acc = one("SELECT * FROM accounts")
    inv = one("SELECT * FROM sms WHERE kind = 'invite'")
    man = one("SELECT * FROM sms WHERE kind = 'manual'")
    inv_parts = [dict(r) for r in db.execute(
        "SELECT * FROM sms_part WHERE sms_id = ?", (inv["id"],))]
    man_parts = [dict(r) for r in db.execute(
        "SELECT * FROM sms_part WHERE sms_id = ?", (man["id"],))]
    claim = one("SELECT * FROM account_claim_sms")
    audit = one("SELECT * FROM audit WHERE op = 'account.invite'")
    acc_id = db.execute("SELECT max(id) FROM accounts").fetchone()[0] + 1
    sms_id = db.execute("SELECT max(id) FROM sms").fetchone()[0] + 1
    A, S, P, C, U = [], [], [], [], []
    for i in range(n):
        aid, iid, mid = acc_id + i, sms_id + 2 * i, sms_id + 2 * i + 1
        phone = "+34610%06d" % i
        A.append(dict(acc, id=aid, phone=phone, name="Person %d" % i,
                      claim_token_hash=secrets.token_hex(32),
                      claim_token_expires_at=old + 7 * 86400 * 1000,
                      created_at=old, updated_at=old))
        S.append(dict(inv, id=iid, peer=phone, account_id=aid, status="sent",
                      created_at=old, updated_at=old, next_attempt_at=old))
        for p in inv_parts:
            P.append(dict(p, sms_id=iid, status="sent", mr=i % 256,
                          modem="m0", sent_at=old))
        C.append(dict(claim, account_id=aid, at=old, sms_id=iid))
        U.append(dict(audit, id=None, at=old, account_id=aid))
        S.append(dict(man, id=mid, peer="+34620%06d" % i, status="queued",
                      created_at=now, updated_at=now, next_attempt_at=now))
        for p in man_parts:
            P.append(dict(p, sms_id=mid))
    with db:
        for table, rows in (("accounts", A), ("sms", S), ("sms_part", P),
                            ("account_claim_sms", C), ("audit", U)):
            cols = list(rows[0].keys())
            _clone(db, table, cols, [tuple(r[k] for k in cols)
                                           for r in rows])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def sec_scaling(R):
    tw = bl.workdir("tpl")
    out = {}
    try:
        tpl = _template_store(tw)
        for size in SCALE_SIZES:
            log("growth: %d accounts, %d sent + %d queued SMS" %
                (size, size, size))
            w = bl.workdir("scale%d" % size)
            try:
                state = os.path.join(w, "state")
                shutil.copytree(tpl, state)
                t = time.monotonic()
                prefill(os.path.join(state, "smsgw.db"), size)
                r = {"prefill_s": time.monotonic() - t}
                r.update(_scale_ops(w, state))
                r.update(_scale_send(w, state))
                r["db_mb"] = os.path.getsize(
                    os.path.join(state, "smsgw.db")) / 1e6
                out[str(size)] = r
            finally:
                bl.rmtree(w)
    finally:
        bl.rmtree(tw)
    R["scaling"] = out


def _scale_ops(w, state):
    """Invites and sms.send accepts, with the modem away (nothing sends)."""
    d = bl.Smsgwd(w, [os.path.join(w, "absent.pty")], state_dir=state)
    r = {}
    try:
        t = d.start()
        r["start_ms"] = t * 1e3 if t is not None else None
        c = d.client(timeout=300)
        # Warm up first (the first requests after a start read the pages
        # they need from disk): the steady cost is what must stay flat.
        bl.must_ok(bl.pipeline(c, _invites("+34672", SCALE_WARMUP)), "warm")
        bl.must_ok(bl.pipeline(c, _sends(SCALE_WARMUP, "+34673")), "warm")
        for name, reqs in (("invite", _invites("+34670", SCALE_OPS)),
                           ("accept", _sends(SCALE_ACCEPTS, "+34671"))):
            # One at a time, so that each request is one commit (pipelined
            # sms.send share commits, and how many share one depends on
            # timing, which would blur the comparison between sizes). In
            # SCALE_BATCHES batches: the median batch is the steady cost
            # (one batch may hold a WAL checkpoint, which costs more).
            per, cpus, dt = len(reqs) // SCALE_BATCHES, [], 0.0
            for b in range(SCALE_BATCHES):
                c0, t0 = bl.cpu_ns(d.pid), time.monotonic()
                for op, args in reqs[b * per:(b + 1) * per]:
                    res = c.request(op, args)
                    if not res.get("ok"):
                        raise bl.BenchError("%s: %r" % (op, res))
                dt += time.monotonic() - t0
                cpus.append((bl.cpu_ns(d.pid) - c0) / 1e6 / per)
            r[name + "_rate"] = per * SCALE_BATCHES / dt
            r[name + "_cpu_ms"] = bl.median(cpus)
            r[name + "_cpu_ms_batches"] = cpus
        c.close()
    finally:
        d.stop()
    return r


def _scale_send(w, state):
    """The backlog through one zero-delay modem: the cost per SMS while the
    store holds it all."""
    sims = bl.start_sims(1, [], w)
    d = bl.Smsgwd(w, [sims[0].link], state_dir=state)
    r = {}
    try:
        d.start()
        tail = bl.LogTail(sims[0].log_path)
        bl.wait_lines([tail], 200, 120)
        r["hwm_life_kb"] = bl.status_kb(d.pid, "VmHWM")
        bl.clear_hwm(d.pid)
        per, cpus, dt = SCALE_WINDOW // SCALE_BATCHES, [], 0.0
        for b in range(SCALE_BATCHES):
            c0 = bl.cpu_ns(d.pid)
            t0 = time.monotonic()
            base = tail.poll()
            dt += bl.wait_lines([tail], base + per, 300) - t0
            cpus.append((bl.cpu_ns(d.pid) - c0) / 1e6 / per)
        r["send_rate"] = per * SCALE_BATCHES / dt
        r["send_cpu_ms"] = bl.median(cpus)
        r["send_cpu_ms_batches"] = cpus
        r["hwm_run_kb"] = bl.status_kb(d.pid, "VmHWM")
        r["rss_kb"] = bl.status_kb(d.pid, "VmRSS")
        r["rss_anon_kb"] = bl.status_kb(d.pid, "RssAnon")
    finally:
        d.stop()
        bl.stop_all(sims)
    return r


# --- the report ------------------------------------------------------------------------

import report  # noqa: E402


SECTIONS = [("idle", sec_idle), ("throughput", sec_throughput),
            ("slow", sec_slow), ("peers", sec_peers),
            ("latency", sec_latency), ("invites", sec_invites),
            ("scaling", sec_scaling)]


def main(argv):
    want = argv[1:] or [name for name, _ in SECTIONS]
    unknown = set(want) - {name for name, _ in SECTIONS}
    if unknown:
        print("unknown sections: %s (have: %s)" % (
            " ".join(sorted(unknown)), " ".join(n for n, _ in SECTIONS)))
        return 2
    for b in ("smsgwd", "smsgw-modemsim"):
        if not os.access(bl.binary(b), os.X_OK):
            print("bench: %s is missing: run make all" % bl.binary(b))
            return 2
    R = {"machine": machine(), "errors": {}, "params": {
        "slow_rounds": SLOW_ROUNDS, "peer_rounds": PEER_ROUNDS,
        "scale_ops": SCALE_OPS, "scale_window": SCALE_WINDOW,
        "scale_warmup": SCALE_WARMUP, "scale_accepts": SCALE_ACCEPTS,
        "scale_batches": SCALE_BATCHES,
        "probes": N_PROBES, "claims": N_CLAIMS}}
    t_start = time.monotonic()
    w = bl.workdir("fsync")
    R["fsync"] = fsync_latency(w)
    bl.rmtree(w)
    for name, fn in SECTIONS:
        if name not in want:
            continue
        t = time.monotonic()
        log("== %s" % name)
        try:
            fn(R)
        except Exception as e:  # one broken section must not hide the rest
            R["errors"][name] = "%s: %s" % (type(e).__name__, e)
            log("%s FAILED: %s" % (name, R["errors"][name]))
        log("   (%.0f s)" % (time.monotonic() - t))
    R["machine"]["load_end"] = bl.load_average()
    R["ready_lost"] = list(bl.Smsgwd.ready_lost)
    R["machine"]["total_s"] = time.monotonic() - t_start
    R.pop("pdus", None)
    with open(os.path.join(bl.BUILD, "bench.json"), "w") as f:
        json.dump(R, f, indent=1)
    table, md = report.render(R, full=(set(want) == {n for n, _ in SECTIONS}))
    print()
    print(table)
    if set(want) == {n for n, _ in SECTIONS}:
        with open(RESULTS_MD, "w") as f:
            f.write(md)
        log("wrote %s" % os.path.relpath(RESULTS_MD, bl.ROOT))
    return 1 if R["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
