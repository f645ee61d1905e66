#!/usr/bin/python3
"""smsgwctl's secret prompts on a real terminal (a pty).

A small fake control server (JSON lines on a Unix socket, answering the way
smsgwd's account ops do) stands in for the daemon, so this checks only the
client: prompts go to the terminal, secrets are not echoed, the yes/no
question is, the server receives exactly what was typed, and a signal at
a prompt leaves the terminal with echo back on.

Environment: SMSGW_BUILD = build directory holding smsgwctl.
"""
import json
import os
import pty
import re
import select
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smsgwtest import binary  # noqa: E402

CTL = binary("smsgwctl")


class FakeServer:
    """Answers account.claim / account.recovery_reset / ping; records the
    requests it got."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.client, args=(conn,), daemon=True).start()

    def client(self, conn):
        conn.settimeout(30)
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    req = json.loads(line)
                    self.requests.append(req)
                    conn.sendall(json.dumps(self.answer(req)).encode() + b"\n")

    @staticmethod
    def answer(req):
        account = {"id": 1, "phone": "+34600000001", "name": "Ana", "state": "active",
                   "created_at": "2024-05-01T10:00:00Z", "claimed_at": None,
                   "session_epoch": 1, "claim_sms_sent_24h": 1}
        if req["op"] == "ping":
            return {"id": req["id"], "ok": True, "result": {"version": "0.1.0"}}
        if req["op"] in ("account.claim", "account.recovery_reset"):
            return {"id": req["id"], "ok": True, "result": {"account": account}}
        return {"id": req["id"], "ok": False,
                "error": {"code": "unknown_op", "message": "unknown op"}}


class Term:
    """A program on a pty: type into it, read what the terminal shows."""

    def __init__(self, argv, env=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.execve(argv[0], argv, env or os.environ)
            finally:
                os._exit(127)
        self.shown = b""

    def read_until(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.shown):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal; it shows %r"
                                     % (pattern, self.shown))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # EIO: the other side is gone
                    data = b""
                if not data:
                    raise AssertionError("terminal closed; it showed %r" % self.shown)
                self.shown += data
        return self.shown

    def type(self, text):
        os.write(self.fd, text)

    def wait(self, timeout=10):
        """Drains the terminal until the program exits; returns its status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.shown += os.read(self.fd, 4096)
                except OSError:
                    pass
            if pid:
                os.close(self.fd)
                return status
        raise AssertionError("program still running; terminal shows %r" % self.shown)


class TtyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.sock = os.path.join(self.dir.name, "control.sock")
        self.server = FakeServer(self.sock)

    def tearDown(self):
        self.server.stop()
        self.dir.cleanup()

    def test_claim_prompts_without_echo(self):
        t = Term([CTL, "-s", self.sock, "claim", "tok123"])
        t.read_until(rb"New password: ")
        t.type(b"hunter2 secret\r")
        t.read_until(rb"Repeat the new password: ")
        t.type(b"hunter2 secret\r")
        status = t.wait()
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, t.shown)
        self.assertNotIn(b"hunter2", t.shown)
        self.assertIn(b"state:              active", t.shown)
        claims = [r for r in self.server.requests if r["op"] == "account.claim"]
        self.assertEqual(len(claims), 1)
        self.assertEqual(claims[0]["args"], {"token": "tok123",
                                             "password": "hunter2 secret"})

    def test_recover_asks_code_passwords_and_logout(self):
        t = Term([CTL, "-s", self.sock, "recover", "+34600000001"])
        t.read_until(rb"Recovery code: ")
        t.type(b"ABCD-EFGH-J\r")
        t.read_until(rb"New password: ")
        t.type(b"n3w-pass-word\r")
        t.read_until(rb"Repeat the new password: ")
        t.type(b"n3w-pass-word\r")
        t.read_until(rb"Log out your other devices\? \[y/N\] ")
        t.type(b"y\r")
        status = t.wait()
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, t.shown)
        self.assertNotIn(b"ABCD", t.shown)
        self.assertNotIn(b"n3w-pass", t.shown)
        self.assertRegex(t.shown, rb"\[y/N\] y\r?\n")  # the answer is echoed
        resets = [r for r in self.server.requests
                  if r["op"] == "account.recovery_reset"]
        self.assertEqual(resets[0]["args"], {
            "phone": "+34600000001", "code": "ABCD-EFGH-J",
            "new_password": "n3w-pass-word", "logout_other_devices": True})

    def test_mismatch_sends_nothing(self):
        t = Term([CTL, "-s", self.sock, "claim", "tok"])
        t.read_until(rb"New password: ")
        t.type(b"one\r")
        t.read_until(rb"Repeat the new password: ")
        t.type(b"two\r")
        status = t.wait()
        self.assertEqual(os.waitstatus_to_exitcode(status), 1)
        self.assertIn(b"the passwords do not match", t.shown)
        self.assertFalse([r for r in self.server.requests if r["op"] == "account.claim"])

    def test_interrupt_restores_echo(self):
        # The shell ignores SIGINT and reports the terminal's settings after
        # smsgwctl died of the ^C typed at its no-echo prompt.
        script = 'trap "" INT; "$0" -s "$1" claim tok; echo "rc=$?"; stty -a'
        t = Term(["/bin/sh", "-c", script, CTL, self.sock])
        t.read_until(rb"New password: ")
        t.type(b"\x03")
        t.read_until(rb"rc=130")
        out = t.read_until(rb"[-\s]echo\s")
        t.wait()
        self.assertRegex(out, rb"\secho\s")
        self.assertNotRegex(out, rb"\s-echo\s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
