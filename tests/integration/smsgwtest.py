"""Helpers for integration tests: the real smsgwd, its real socket, its real
SQLite file, and simulated modems on ptys.

Python stdlib only. Every wait has a timeout; every loop is bounded.
Binaries come from $SMSGW_BUILD (default build/check), sources from
$SMSGW_SRC (default the repo root).
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("SMSGW_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SMSGW_BUILD") or os.path.join(SRC, "build", "check")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def binary(name):
    return os.path.join(BUILD, name)


class TestFailure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def wait_for(pred, timeout, what, interval=0.01):
    """Polls pred() until it returns a truthy value, at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Client:
    """One control-socket connection speaking JSON lines."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.pending = {}  # id -> response that arrived out of order
        self.events = []

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            check(left > 0, "no line from the daemon within %.1fs" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            check(chunk, "daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send(self, op, args=None, rid=None):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        msg = {"id": rid, "op": op}
        if args is not None:
            msg["args"] = args
        self.sock.sendall((json.dumps(msg) + "\n").encode())
        return rid

    def response(self, rid, timeout=30.0):
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            if rid in self.pending:
                return self.pending.pop(rid)
            msg = self.read_line(max(0.0, deadline - time.monotonic()))
            if "event" in msg:
                self.events.append(msg)
            elif msg.get("id") == rid:
                return msg
            else:
                self.pending[msg.get("id")] = msg
        raise TestFailure("too many unrelated lines")

    def request(self, op, args=None, timeout=30.0):
        return self.response(self.send(op, args), timeout)

    def ok(self, op, args=None, timeout=30.0):
        r = self.request(op, args, timeout)
        check(r.get("ok") is True, "%s failed: %r" % (op, r))
        return r["result"]

    def err(self, op, args, code, timeout=30.0):
        r = self.request(op, args, timeout)
        check(r.get("ok") is False, "%s should fail with %s: %r" % (op, code, r))
        check(r["error"]["code"] == code,
              "%s: expected %s, got %r" % (op, code, r["error"]))
        return r["error"]

    def wait_event(self, name, pred=None, timeout=30.0):
        deadline = time.monotonic() + timeout
        for _ in range(1000000):
            for i, ev in enumerate(self.events):
                if ev.get("event") == name and (pred is None or pred(ev)):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            check(left > 0, "no %s event within %.1fs" % (name, timeout))
            msg = self.read_line(left)
            if "event" in msg:
                self.events.append(msg)
            else:
                self.pending[msg.get("id")] = msg
        raise TestFailure("event loop bound reached")


class Daemon:
    """A real smsgwd in a private directory, with its own config."""

    def __init__(self, tmpdir=None, modems=None, extra="", log_level="debug",
                 env=None):
        self.dir = tmpdir or tempfile.mkdtemp(prefix="smsgw-it-")
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "control.sock")
        self.conf = os.path.join(self.dir, "smsgwd.conf")
        self.logpath = os.path.join(self.dir, "smsgwd.log")
        self.modems = modems or {}
        self.extra = extra
        self.log_level = log_level
        self.env = env
        self.proc = None
        self.write_config()

    def write_config(self):
        lines = [
            "[daemon]",
            "state_dir = %s" % self.state_dir,
            "socket = %s" % self.socket,
            "log_level = %s" % self.log_level,
            "",
        ]
        for name, opts in self.modems.items():
            lines.append("[modem.%s]" % name)
            for k, v in opts.items():
                lines.append("%s = %s" % (k, v))
            lines.append("")
        lines.append(self.extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, wait=True, timeout=20.0):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([binary("smsgwd"), "-f", "-c", self.conf],
                                     stdout=self.log, stderr=self.log, env=env)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20.0):
        def pinged():
            check(self.proc.poll() is None,
                  "smsgwd exited with %s:\n%s" % (self.proc.returncode, self.tail()))
            try:
                c = Client(self.socket, timeout=2)
            except OSError:
                return False
            try:
                return c.request("ping", timeout=2).get("ok")
            finally:
                c.close()
        wait_for(pinged, timeout, "smsgwd to answer ping")

    def client(self):
        return Client(self.socket)

    def stop(self, timeout=20.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise TestFailure("smsgwd did not stop on SIGTERM within %ss" % timeout)
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def tail(self, n=60):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def db(self):
        """A read-only connection to the daemon's real SQLite file."""
        path = os.path.join(self.state_dir, "smsgw.db")
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)


def run_tests(tests):
    """Runs test functions, prints a line each, exits 1 on any failure."""
    failed = 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
            print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # report every kind of failure, keep going
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
    print("%d of %d passed" % (len(tests) - failed, len(tests)))
    sys.exit(1 if failed else 0)
