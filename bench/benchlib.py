"""Shared pieces of `make bench`: process accounting from /proc, the sent-log
tail, simulated modems, and a real smsgwd in a private directory.

Python 3 stdlib only. Every wait has a timeout, every loop a bound.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("SMSGW_BUILD") or os.path.join(ROOT, "build", "release")
os.environ.setdefault("SMSGW_BUILD", BUILD)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from simmodem import SimModem  # noqa: E402  (the lead's helper)
from smsgwtest import Client   # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
BENCH_ORG = "Bench"
CLAIM_URL = "https://portal.bench.local/claim/{token}"


class BenchError(RuntimeError):
    pass


def binary(name):
    return os.path.join(BUILD, name)


# --- /proc ------------------------------------------------------------------

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_s(pid, children=False):
    """utime + stime of a process (all its threads), in seconds; with
    children, plus what its reaped children used."""
    f = _stat_fields(pid)
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / TICK


def descendants(pid):
    """pid and every process below it (scans /proc)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(_stat_fields(int(d))[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [pid], [pid]
    for _ in range(10000):
        if not todo:
            break
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def cpu_ns(pid):
    """On-CPU time of every live thread of pid (the schedstat runtime in
    ns: utime + stime without the 10 ms tick rounding), plus the ticks of
    its reaped children."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    f = _stat_fields(pid)
    return total + (int(f[13]) + int(f[14])) * 1000000000 // TICK


def tree_cpu_ns(pids):
    total = 0
    for p in pids:
        try:
            total += cpu_ns(p)
        except OSError:
            pass
    return total


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def clear_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def ctx_switches(pid):
    """Voluntary + involuntary context switches of every thread: each
    voluntary one is a wake-up from a wait."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def median(values):
    return statistics.median(values)


def wait_for(pred, timeout, what, interval=0.005):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 100):
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise BenchError("timed out after %.0fs waiting for %s" % (timeout, what))


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# --- the simulator's sent log --------------------------------------------------

class LogTail:
    """Counts complete lines of an append-only file without re-reading it
    (the bench must stay light: it shares two cores with what it measures)."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.n = 0
        self.part = b""
        self.lines = []

    def poll(self, keep=False):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return self.n
        self.off += len(data)
        data = self.part + data
        cut = data.rfind(b"\n") + 1
        self.part = data[cut:]
        done = data[:cut]
        self.n += done.count(b"\n")
        if keep:
            self.lines += [l for l in done.split(b"\n") if l]
        return self.n


def wait_lines(tails, n, timeout, keep=False, interval=0.002):
    """Waits until the tails hold n lines together; returns the monotonic
    time it saw the last one."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1000):
        total = sum(t.poll(keep) for t in tails)
        if total >= n:
            return time.monotonic()
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise BenchError("only %d of %d SMS in the sent logs after %.0fs" %
                     (sum(t.n for t in tails), n, timeout))


def iso_to_epoch(s):
    """The sent log's "2024-05-01T12:00:00.123Z" -> seconds since the
    epoch."""
    import calendar
    main, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) + \
        int(frac) / 1000.0


def sent_times(tails):
    """Every logged send time (epoch s), sorted, from tails polled with
    keep=True."""
    out = []
    for t in tails:
        for l in t.lines:
            out.append(iso_to_epoch(json.loads(l)["time"]))
    return sorted(out)


# --- simulated modems -------------------------------------------------------------

def start_sims(k, args=(), workdir=None):
    sims = []
    try:
        for i in range(k):
            d = tempfile.mkdtemp(prefix="sim%d-" % i, dir=workdir)
            sims.append(SimModem(list(args), name="m%d" % i, workdir=d,
                                 binary=binary("smsgw-modemsim")).start())
    except Exception:
        stop_all(sims)
        raise
    return sims


def stop_all(procs):
    for p in procs:
        try:
            p.stop()
        except Exception:  # best effort: a bench cleans up what it can
            pass


# --- smsgwd ---------------------------------------------------------------------

class Smsgwd:
    """A real smsgwd with its own config, state dir and socket."""

    def __init__(self, workdir, devices, outbox=None, accounts=None,
                 daemon=None, modem=None, state_dir=None):
        self.dir = workdir
        self.state_dir = state_dir or os.path.join(workdir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.socket = os.path.join(workdir, "control.sock")
        self.notify_path = os.path.join(workdir, "notify.sock")
        self.conf = os.path.join(workdir, "smsgwd.conf")
        self.logpath = os.path.join(workdir, "smsgwd.log")
        self.proc = None
        self.n_modems = len(devices)
        sections = [("daemon", dict({
            "state_dir": self.state_dir, "socket": self.socket,
            "admin_group": "", "portal_group": ""}, **(daemon or {})))]
        for i, dev in enumerate(devices):
            sections.append(("modem.m%d" % i, dict(
                {"device": dev, "flow_control": "none"}, **(modem or {}))))
        sections.append(("outbox", dict({"status_reports": "no"},
                                        **(outbox or {}))))
        sections.append(("accounts", dict({
            "organization": BENCH_ORG, "claim_url": CLAIM_URL,
            "invites_per_day": "1000000",
            "invites_per_day_verified": "1000000",
            "password_hash": "interactive"}, **(accounts or {}))))
        with open(self.conf, "w") as f:
            for name, kv in sections:
                f.write("[%s]\n" % name)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    @property
    def pid(self):
        return self.proc.pid

    # Starts whose READY=1 never arrived although smsgwd came up (see
    # start()); the report lists them.
    ready_lost = []

    def start(self, timeout=30.0, ready_wait=5.0):
        """Starts smsgwd under a NOTIFY_SOCKET; returns the seconds from
        exec to READY=1. When READY=1 does not come within ready_wait s but
        smsgwd answers ping, the start is recorded in ready_lost and None
        returned: a datagram socket queues only net.unix.max_dgram_qlen
        messages, and smsgwd's notify socket does not wait for room."""
        if os.path.exists(self.notify_path):
            os.unlink(self.notify_path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(self.notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        log = open(self.logpath, "ab")
        try:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(
                [binary("smsgwd"), "-f", "-c", self.conf], stdout=log,
                stderr=log, stdin=subprocess.DEVNULL, env=env)
            deadline = t0 + ready_wait
            for _ in range(100000):
                if self.proc.poll() is not None:
                    raise BenchError("smsgwd exited with %s:\n%s" %
                                     (self.proc.returncode, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ns.settimeout(left)
                try:
                    msg = ns.recv(4096).decode()
                except socket.timeout:
                    continue
                if "READY=1" in msg.split("\n"):
                    return time.monotonic() - t0
            self._wait_ping(max(1.0, timeout - ready_wait))
            Smsgwd.ready_lost.append(self.n_modems)
            return None
        finally:
            ns.close()
            log.close()

    def _wait_ping(self, timeout):
        def pinged():
            if self.proc.poll() is not None:
                raise BenchError("smsgwd exited with %s:\n%s" %
                                 (self.proc.returncode, self.tail()))
            try:
                c = Client(self.socket, timeout=2)
            except OSError:
                return False
            try:
                return c.request("ping", timeout=2).get("ok")
            finally:
                c.close()
        try:
            wait_for(pinged, timeout, "smsgwd to answer ping", interval=0.05)
        except BenchError:
            raise BenchError("smsgwd sent no READY=1 and answers no ping:\n"
                             + self.tail())

    def client(self, timeout=120.0):
        return Client(self.socket, timeout=timeout)

    def wait_modems(self, n, timeout=30.0):
        c = self.client()
        try:
            def ready():
                ms = c.ok("modem.list")["modems"]
                return sum(1 for m in ms if m["state"] == "ready") >= n
            wait_for(ready, timeout, "%d modems ready" % n, interval=0.02)
        finally:
            c.close()

    def stop(self, timeout=30.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def tail(self, n=30):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(
                    "utf-8", "replace")
        except OSError:
            return ""


def pipeline(client, requests, window=128, timeout=300.0):
    """Sends (op, args) requests on one connection with at most `window`
    unanswered; returns [(response, monotonic time it arrived)] in order."""
    out = [None] * len(requests)
    pending = {}
    i = 0
    deadline = time.monotonic() + timeout
    for _ in range(len(requests) * 4 + 100):
        while i < len(requests) and len(pending) < window:
            op, args = requests[i]
            pending[client.send(op, args)] = i
            i += 1
        if not pending:
            return out
        if time.monotonic() > deadline:
            break
        msg = client.read_line(max(0.1, deadline - time.monotonic()))
        if "event" in msg:
            continue
        k = pending.pop(msg.get("id"), None)
        if k is not None:
            out[k] = (msg, time.monotonic())
    raise BenchError("pipeline did not finish")


def must_ok(responses, what):
    bad = [r for r, _ in responses if not r.get("ok")]
    if bad:
        raise BenchError("%d %s failed, first: %r" % (len(bad), what, bad[0]))


def workdir(prefix):
    return tempfile.mkdtemp(prefix="smsgw-bench-%s-" % prefix)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
