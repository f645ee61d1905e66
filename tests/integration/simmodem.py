"""Drive smsgw-modemsim from integration tests.

    from simmodem import SimModem, AtPort

    sim = SimModem(["--vendor", "simcom"]).start()
    port = AtPort(sim.link)               # or sim.pty, the /dev/pts/N path
    r = port.cmd("AT+CSQ")                # -> Response(lines, final, raw)
    sim.inject("+34600111222", "hello")   # control socket "inject"
    sim.wait_sent(1)                      # the sent-SMS JSON log
    sim.stop()                            # SIGTERM; returns the exit code

Every SimModem gets a private directory holding the --link symlink
(modem.pty), the --control socket (control.sock), the --sms-log
(sent.jsonl) and the simulator's stdout/stderr. Python stdlib only; every
wait has a timeout and every loop a bound.
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import termios
import time
import tty

SRC = os.environ.get("SMSGW_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SMSGW_BUILD") or os.path.join(SRC, "build", "check")

FINAL_RE = re.compile(r"^(OK|ERROR|\+CME ERROR: .*|\+CMS ERROR: .*)$")


class SimError(AssertionError):
    pass


def _deadline_left(deadline, what):
    left = deadline - time.monotonic()
    if left <= 0:
        raise SimError("timed out waiting for %s" % what)
    return left


class SimModem:
    """One smsgw-modemsim process with its link, control socket and log."""

    def __init__(self, args=(), name="sim", workdir=None, binary=None):
        self.args = list(args)
        self.name = name
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="smsgw-sim-")
        self.link = os.path.join(self.dir, "modem.pty")
        self.control_path = os.path.join(self.dir, "control.sock")
        self.log_path = os.path.join(self.dir, "sent.jsonl")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.binary = binary or os.path.join(BUILD, "smsgw-modemsim")
        self.proc = None
        self.pty = None
        self._ctl = None
        self._ctl_buf = b""

    # --- process ------------------------------------------------------
    def command(self):
        return [self.binary, "--name", self.name, "--link", self.link,
                "--control", self.control_path, "--sms-log", self.log_path
                ] + self.args

    def start(self, timeout=10.0):
        """Starts the simulator; returns once its pty path is printed and
        the control socket accepts connections."""
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL)
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + timeout
        while True:
            paths = self.pty_lines()
            if paths:
                self.pty = paths[0]
                break
            if self.proc.poll() is not None:
                raise SimError("smsgw-modemsim exited with %s: %s" %
                               (self.proc.returncode, self.stderr()))
            _deadline_left(deadline, "the simulator's pty line")
            time.sleep(0.01)
        while not os.path.exists(self.control_path):
            _deadline_left(deadline, "the control socket")
            time.sleep(0.01)
        return self

    def pty_lines(self):
        """Every pty path printed so far (one more per replug)."""
        try:
            with open(self.stdout_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [l for l in data.split("\n")[:-1] if l.startswith("/dev/")]

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit code (0 is a clean exit, an
        ASan report makes it non-zero)."""
        if self._ctl:
            self._ctl.close()
            self._ctl = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise SimError("smsgw-modemsim ignored SIGTERM")
        rc = self.proc.returncode
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.cleanup()

    # --- control socket -------------------------------------------------
    def control(self, op, timeout=10.0, **args):
        """Sends {"op": op, **args}; returns the response object."""
        if self._ctl is None:
            self._ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._ctl.settimeout(timeout)
            self._ctl.connect(self.control_path)
        msg = dict(args)
        msg["op"] = op
        self._ctl.sendall((json.dumps(msg) + "\n").encode())
        deadline = time.monotonic() + timeout
        while b"\n" not in self._ctl_buf:
            self._ctl.settimeout(_deadline_left(deadline, "control " + op))
            chunk = self._ctl.recv(65536)
            if not chunk:
                raise SimError("control socket closed")
            self._ctl_buf += chunk
        line, self._ctl_buf = self._ctl_buf.split(b"\n", 1)
        return json.loads(line)

    def ok(self, op, **args):
        r = self.control(op, **args)
        if r.get("ok") is not True:
            raise SimError("control %s failed: %r" % (op, r))
        return r

    def inject(self, sender, text, **extra):
        """An inbound SMS now; returns the number of parts."""
        return self.ok("inject", **dict(extra, **{"from": sender,
                                                  "text": text}))["parts"]

    def stats(self):
        return self.ok("stats")["stats"]

    def storage(self):
        return self.ok("storage")["messages"]

    # --- sent-SMS log ---------------------------------------------------
    def sent_log(self):
        """Every JSON line of the sent-SMS log so far."""
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in data.split("\n") if l.strip()]

    def wait_sent(self, n, timeout=10.0):
        """Waits until the log holds at least n entries; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.sent_log()
            if len(entries) >= n:
                return entries
            _deadline_left(deadline, "%d sent SMS (have %d)" %
                           (n, len(entries)))
            time.sleep(0.01)


class Response:
    def __init__(self, lines, final, raw):
        self.lines = lines  # non-empty lines before the final result
        self.final = final  # "OK", "ERROR", "+CMS ERROR: 304", ...
        self.raw = raw      # every byte read

    def __repr__(self):
        return "Response(%r, %r)" % (self.lines, self.final)


class AtPort:
    """The client end of the simulator's pty, in raw mode, like a driver
    opens a serial port."""

    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY |
                                  os.O_NONBLOCK)
                break
            except OSError:
                _deadline_left(deadline, "pty %s to open" % path)
                time.sleep(0.02)
        tty.setraw(self.fd, termios.TCSANOW)
        self.buf = b""

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]

    def _fill(self, timeout):
        """Reads what arrives within timeout; b"" on timeout. Raises
        OSError (EIO) when the simulator closed the pty."""
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return b""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            raise OSError(5, "pty closed")
        self.buf += chunk
        return chunk

    def read_until(self, token, timeout=5.0):
        """Returns everything up to and including `token` (bytes)."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            i = self.buf.find(token)
            if i >= 0:
                out, self.buf = self.buf[:i + len(token)], \
                    self.buf[i + len(token):]
                return out
            self._fill(_deadline_left(deadline, "%r from the modem (got %r)"
                                      % (token, self.buf)))
        raise SimError("read loop bound")

    def read_for(self, seconds):
        """Everything that arrives within `seconds` (plus what was
        buffered)."""
        deadline = time.monotonic() + seconds
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._fill(left)
        out, self.buf = self.buf, b""
        return out

    def lines_until_final(self, timeout=5.0):
        """Reads lines until a final result code; returns a Response."""
        deadline = time.monotonic() + timeout
        raw = b""
        lines = []
        for _ in range(100000):
            j = self.buf.find(b"\n")
            if j < 0:
                self._fill(_deadline_left(deadline, "a final result (got %r)"
                                          % (raw + self.buf)))
                continue
            line, self.buf = self.buf[:j + 1], self.buf[j + 1:]
            raw += line
            for part in line.decode("utf-8", "replace").split("\r"):
                text = part.strip("\r\n")
                if not text:
                    continue
                if FINAL_RE.match(text):
                    return Response(lines, text, raw)
                lines.append(text)
        raise SimError("read loop bound")

    def cmd(self, line, timeout=5.0):
        """Sends an AT command line (CR added) and reads its response. With
        echo on, the echoed line is lines[0]."""
        self.write(line + "\r")
        return self.lines_until_final(timeout)

    def send_pdu(self, hex_pdu, tpdu_len, timeout=10.0, length=None):
        """AT+CMGS=<len>, waits for "> ", sends the PDU and Ctrl-Z."""
        self.write("AT+CMGS=%d\r" % (tpdu_len if length is None else length))
        self.read_until(b"> ", timeout)
        self.write(hex_pdu + "\x1a")
        return self.lines_until_final(timeout)

    def sync(self, timeout=5.0):
        """Echo off and a clean OK (tolerates URCs and stale output)."""
        self.read_for(0.05)
        r = self.cmd("ATE0", timeout)
        if r.final != "OK":
            raise SimError("ATE0: %r" % r)
        return r
