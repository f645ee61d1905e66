"""Helpers for the reliability suite (test_reliability.py): a daemon whose
config, process limits and user the test controls, simulated modems next
to it, and the bookkeeping that checks "nothing accepted is lost":
what the simulators' sent logs hold, what the inbox holds, what the
database says.

Python stdlib only. Every wait has a timeout, every loop a bound.
"""
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smsgwtest import Client, Daemon, TestFailure, binary, check, wait_for  # noqa: E402,F401
from simmodem import SimModem  # noqa: E402

SOAK = os.environ.get("SMSGW_SOAK", "") not in ("", "0")

CLAIM_URL = "https://portal.rel.example/claim/"
ACCOUNTS = """[accounts]
organization = Rel Plant
claim_url = %s{token}
password_hash = interactive
hash_threads = 2
""" % CLAIM_URL

OUTBOX_FAST = """[outbox]
retry_backoff = 1s
retry_backoff_max = 2s
send_attempts = 50
"""

NOBODY = 65534  # nobody / nogroup on Debian


def log(fmt, *args):
    """A line for the reader of the test output (counts, what happened)."""
    print("  " + (fmt % args if args else fmt), flush=True)


# --- the daemon ----------------------------------------------------------------

class RDaemon(Daemon):
    """A Daemon with extra [daemon] keys, its state directory anywhere, and
    a hook run in the child before exec (limits, signals, uid)."""

    def __init__(self, tmpdir=None, modems=None, extra="", daemon_keys=None,
                 state_dir=None, preexec=None, **kw):
        self.daemon_keys = dict(daemon_keys or {})
        self.preexec = preexec
        self._state_override = state_dir
        super().__init__(tmpdir=tmpdir, modems=modems, extra=extra, **kw)

    def write_config(self):
        if self._state_override:
            self.state_dir = self._state_override
        lines = [
            "[daemon]",
            "state_dir = %s" % self.state_dir,
            "socket = %s" % self.socket,
            "log_level = %s" % self.log_level,
        ]
        lines += ["%s = %s" % kv for kv in self.daemon_keys.items()]
        lines.append("")
        for name, opts in self.modems.items():
            lines.append("[modem.%s]" % name)
            lines += ["%s = %s" % kv for kv in opts.items()]
            lines.append("")
        lines.append(self.extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, wait=True, timeout=30.0):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([binary("smsgwd"), "-f", "-c", self.conf],
                                     stdout=self.log, stderr=self.log, env=env,
                                     preexec_fn=self.preexec)
        self.log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        """VmRSS of the running daemon in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_count(self, needle):
        return self.log_text().count(needle)

    def sanitizer_report(self):
        """The first sanitizer report in the log, or ''."""
        text = self.log_text()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:"):
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return ""


class Env:
    """Simulated modems and a daemon on them, torn down together.

        env = Env(1, sim_args=["--send-delay", "0.05"])
        env.d.start(); c = env.client(); env.wait_ready()
    """

    def __init__(self, n=1, sim_args=(), extra=ACCOUNTS + OUTBOX_FAST,
                 modem_opts=None, daemon_keys=None, state_dir=None,
                 preexec=None, per_sim_args=None, log_level="debug"):
        keys = {"admin_group": "", "portal_group": "", "socket_mode": "0666"}
        keys.update(daemon_keys or {})
        self.d = RDaemon(extra=extra, daemon_keys=keys, state_dir=state_dir,
                         preexec=preexec, log_level=log_level)
        os.chmod(self.d.dir, 0o755)
        self.sims = {}
        for i in range(n):
            name = "m%d" % i
            workdir = os.path.join(self.d.dir, "sim-" + name)
            os.makedirs(workdir, exist_ok=True)
            args = list(sim_args) + list((per_sim_args or {}).get(name, ()))
            self.sims[name] = SimModem(args, name=name, workdir=workdir).start()
        opts = {"command_timeout": "2s", "health_timeouts": 2}
        opts.update(modem_opts or {})
        self.d.modems = {name: dict(opts, device=s.link)
                         for name, s in self.sims.items()}
        self.d.write_config()
        self._client = None

    # --- life cycle -------------------------------------------------------
    def client(self, fresh=False):
        """A connection to the running daemon (reused unless fresh)."""
        if fresh or self._client is None:
            if self._client is not None:
                self._client.close()
            self._client = Client(self.d.socket, timeout=30)
        return self._client

    def drop_client(self):
        if self._client is not None:
            try:
                self._client.close()
            except OSError:
                pass
        self._client = None

    def start(self, wait=True):
        self.drop_client()
        self.d.start(wait=wait)
        return self

    def kill9(self):
        self.drop_client()
        self.d.kill9()

    def close(self, check_rc=True):
        """Stops the daemon (SIGTERM) and the simulators; checks the exit
        codes (a sanitizer report makes them non-zero)."""
        self.drop_client()
        rc = 0
        try:
            rc = self.d.stop(timeout=30)
        finally:
            sim_rcs = {}
            for name, s in self.sims.items():
                try:
                    sim_rcs[name] = s.stop()
                except Exception as e:  # keep tearing down the others
                    sim_rcs[name] = repr(e)
        if check_rc:
            check(rc == 0, "smsgwd exited %s on SIGTERM:\n%s\n%s" %
                  (rc, self.d.tail(), self.d.sanitizer_report()))
            for name, r in sim_rcs.items():
                check(r == 0, "simulator %s exited %r: %s" %
                      (name, r, self.sims[name].stderr()[-2000:]))
        for s in self.sims.values():
            s.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self.close(check_rc=exc_type is None)

    # --- modems ---------------------------------------------------------------
    def modems(self):
        return {m["name"]: m for m in self.client().ok("modem.list")["modems"]}

    def wait_ready(self, names=None, timeout=30.0):
        names = list(names or self.sims)

        def ready():
            mods = self.modems()
            return all(mods.get(n, {}).get("state") == "ready" for n in names)
        wait_for(ready, timeout, "modems %s ready" % names, interval=0.05)

    def wait_state(self, name, pred, timeout, what):
        return wait_for(lambda: pred(self.modems()[name]["state"]), timeout,
                        what, interval=0.05)

    # --- the phones' side ---------------------------------------------------
    def sent_entries(self):
        """Every complete JSON line of every simulator's sent log."""
        out = []
        for s in self.sims.values():
            try:
                with open(s.log_path, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            out += [json.loads(l) for l in data.split("\n")[:-1] if l.strip()]
        return out

    def sent_messages(self):
        """Whole messages the phones got: (to, text) per SMS, parts joined
        (a part seen twice joins once)."""
        msgs, sets = [], {}
        for e in self.sent_entries():
            udh = e.get("udh")
            if not udh:
                msgs.append((e["to"], e["text"]))
                continue
            key = (e["to"], udh["ref"], udh["total"])
            sets.setdefault(key, {})[udh["seq"]] = e["text"]
            if len(sets[key]) == udh["total"]:
                msgs.append((e["to"], "".join(sets[key][i]
                                              for i in sorted(sets[key]))))
                sets[key] = {}
        return msgs

    def duplicate_parts(self):
        """Parts that went out more than once (same recipient, text and
        concatenation reference and number)."""
        seen, dups = set(), 0
        for e in self.sent_entries():
            udh = e.get("udh") or {}
            key = (e["to"], e["text"], udh.get("ref"), udh.get("seq"))
            if key in seen:
                dups += 1
            seen.add(key)
        return dups

    def sim_stats(self):
        return {name: s.stats() for name, s in self.sims.items()}

    # --- the daemon's side ------------------------------------------------------
    def inbox(self, c=None):
        """Every inbound SMS in the store, through sms.list (all pages)."""
        c = c or self.client()
        out, after = [], None
        for _ in range(1000):
            args = {"direction": "in", "limit": 1000}
            if after:
                args["after"] = after
            r = c.ok("sms.list", args)
            out += r["sms"]
            after = r.get("next")
            if not after:
                return out
        raise TestFailure("sms.list paging did not end")

    def db_query(self, sql, *args):
        con = self.d.db()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def integrity(self):
        return self.db_query("PRAGMA integrity_check")[0][0]

    def out_status(self, ids):
        """{id: status} of outbound SMS, read from the database."""
        if not ids:
            return {}
        out = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = self.db_query("SELECT id, status FROM sms WHERE id IN (%s)"
                                 % ",".join("?" * len(chunk)), *chunk)
            out.update(dict(rows))
        return out

    def wait_all_sent(self, ids, timeout, what="every accepted SMS sent"):
        ids = list(ids)

        def done():
            st = self.out_status(ids)
            return all(st.get(i) in ("sent", "delivered") for i in ids)
        try:
            wait_for(done, timeout, what, interval=0.1)
        except TestFailure:
            st = self.out_status(ids)
            bad = {i: st.get(i) for i in ids if st.get(i) not in
                   ("sent", "delivered")}
            raise TestFailure("%s: %d not sent: %r\n%s" %
                              (what, len(bad), dict(list(bad.items())[:10]),
                               self.d.tail(40)))

    def retries(self):
        """Send attempts beyond the first, over every outbound SMS."""
        r = self.db_query("SELECT coalesce(sum(max(attempts - 1, 0)), 0) "
                          "FROM sms WHERE direction = 'out'")
        return r[0][0]


# --- processes as other users, limits ----------------------------------------------

def as_uid(uid, gid, fn, timeout=60.0):
    """Runs fn() in a forked child as uid/gid; returns what it returns
    (JSON-able), or raises with the child's error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = {"ok": fn()}
        except BaseException as e:  # reported to the parent
            out = {"error": "%s: %s" % (type(e).__name__, e)}
            code = 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TestFailure("child as uid %d timed out" % uid)
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    out = json.loads(data or b'{"error": "no result"}')
    if "error" in out:
        raise TestFailure("as uid %d: %s" % (uid, out["error"]))
    return out["ok"]


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit towards want; returns
    the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- a small filesystem of our own -------------------------------------------------

class SmallFs:
    """A tmpfs of `size` mounted on a fresh directory when we may mount
    (root, not forbidden by the container); else mounted is False and the
    directory is a plain one."""

    def __init__(self, size="2m"):
        self.dir = tempfile.mkdtemp(prefix="smsgw-fs-")
        self.mounted = False
        if os.environ.get("SMSGW_RELIAB_NO_MOUNT"):
            self.why = "SMSGW_RELIAB_NO_MOUNT set"
        elif os.geteuid() == 0:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                "size=%s,mode=0755" % size, "tmpfs", self.dir],
                               capture_output=True, text=True, timeout=30)
            self.mounted = r.returncode == 0
            self.why = r.stderr.strip()
        else:
            self.why = "not root"

    def remount(self, opts):
        """mount -o remount,OPTS: (ok, stderr)."""
        r = subprocess.run(["mount", "-o", "remount," + opts, self.dir],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0, r.stderr.strip()

    def free_bytes(self):
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize

    def fill(self, name="filler", leave=0):
        """Writes a file until the filesystem is full (less `leave` bytes);
        returns its path."""
        path = os.path.join(self.dir, name)
        with open(path, "ab") as f:
            block = b"\0" * 4096
            for _ in range(1 << 20):
                if self.free_bytes() <= leave:
                    break
                try:
                    f.write(block)
                    f.flush()
                except OSError:
                    break
        return path

    def cleanup(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.dir], capture_output=True,
                           timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- raw sockets --------------------------------------------------------------------

def raw_connect(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_lines(sock, n, timeout=30.0):
    """Reads n JSON lines from a raw socket."""
    buf, out = b"", []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        while b"\n" in buf and len(out) < n:
            line, buf = buf.split(b"\n", 1)
            out.append(json.loads(line))
        if len(out) >= n:
            break
        left = deadline - time.monotonic()
        check(left > 0, "only %d of %d lines within %.0fs" % (len(out), n, timeout))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        check(chunk, "connection closed after %d of %d lines" % (len(out), n))
        buf += chunk
    return out


def ping_latency(path, n=20):
    """Median and worst round trip of n pings on a fresh connection, in ms
    (printed, never asserted)."""
    c = Client(path, timeout=30)
    times = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            c.ok("ping")
            times.append((time.monotonic() - t0) * 1000)
    finally:
        c.close()
    times.sort()
    return times[len(times) // 2], times[-1]

