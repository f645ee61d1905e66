#!/usr/bin/python3
"""A tiny fake GSM modem on a pty, for one bench measurement only: when did
the first byte of each AT+CMGS arrive (CLOCK_MONOTONIC, which every process
on the machine shares, so the bench can compare it with the moment its
client got the sms.send answer).

It answers the generic 27.005/27.007 commands smsgwd sends at start and in
its health checks, and every AT+CMGS at once (no network delay). One trace
line per sent SMS goes to --trace:

    <t_first_byte_of_AT+CMGS> <mr> <destination digits>

Python stdlib only; it runs until SIGTERM. Not a simulator: the real one is
drivers/sim (smsgw-modemsim), which has no sub-millisecond trace.
"""
import argparse
import os
import select
import signal
import sys
import time
import tty

# Answers by exact command; anything else gets a bare OK.
ANSWERS = {
    "ATI": ["fakemodem", "bench", "Revision: 1"],
    "AT+CGMI": ["fakemodem"],
    "AT+CGMM": ["bench"],
    "AT+CGMR": ["1"],
    "AT+CGSN": ["490154203237518"],
    "AT+CPIN?": ["+CPIN: READY"],
    "AT+CIMI": ["001010123456789"],
    "AT+CPMS=\"SM\",\"SM\",\"SM\"": ["+CPMS: 0,30,0,30,0,30"],
    "AT+CREG?": ["+CREG: 2,1,\"00A1\",\"1B2C\""],
    "AT+CEREG?": ["+CEREG: 2,1,\"00A1\",\"01A2B3C\",7"],
    "AT+CSQ": ["+CSQ: 20,99"],
    "AT+COPS?": ["+COPS: 0,0,\"FAKENET\""],
}
ERRORS = {"AT+CIND=?"}


def pdu_destination(hex_pdu):
    """The TP-DA digits of an SMS-SUBMIT PDU (SMSC prefix first)."""
    try:
        b = bytes.fromhex(hex_pdu)
        i = 1 + b[0]          # skip the SMSC address
        i += 2                # first octet, TP-MR
        ndigits = b[i]
        octets = b[i + 2:i + 2 + (ndigits + 1) // 2]
        digits = "".join("%d%d" % (o & 15, o >> 4) for o in octets)
        return digits[:ndigits]
    except (ValueError, IndexError):
        return "?"


class Fake:
    def __init__(self, link, trace):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        path = os.ttyname(self.slave)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(path, link)
        self.link = link
        self.trace = open(trace, "a", buffering=1)
        self.buf = b""
        self.pdu_mode = False
        self.cmgs_t = 0.0
        self.mr = 0
        print(path, flush=True)

    def out(self, text):
        os.write(self.master, text.encode())

    def command(self, line, t):
        if line.startswith("AT+CMGS="):
            self.pdu_mode = True
            self.cmgs_t = t
            self.out("\r\n> ")
            return
        if line in ERRORS:
            self.out("\r\nERROR\r\n")
            return
        body = "".join("\r\n%s\r\n" % l for l in ANSWERS.get(line, []))
        self.out(body + "\r\nOK\r\n")

    def pdu(self, hex_pdu):
        self.mr = (self.mr + 1) % 256
        self.out("\r\n+CMGS: %d\r\n\r\nOK\r\n" % self.mr)
        self.trace.write("%.6f %d %s\n" % (self.cmgs_t, self.mr,
                                           pdu_destination(hex_pdu)))

    def feed(self, data, t):
        self.buf += data
        while True:
            if self.pdu_mode:
                j = self.buf.find(b"\x1a")
                if j < 0:
                    return
                hex_pdu = self.buf[:j].decode("ascii", "replace").strip()
                self.buf = self.buf[j + 1:]
                self.pdu_mode = False
                self.pdu(hex_pdu)
                continue
            j = self.buf.find(b"\r")
            if j < 0:
                return
            line = self.buf[:j].decode("ascii", "replace").strip()
            self.buf = self.buf[j + 1:]
            if line:
                self.command(line, t)

    def run(self):
        poll = select.poll()
        poll.register(self.master, select.POLLIN)
        while True:
            poll.poll()
            t = time.monotonic()
            try:
                data = os.read(self.master, 65536)
            except OSError:
                time.sleep(0.01)  # the other side closed; it may reopen
                continue
            self.feed(data, t)


def like_hardware():
    """A real modem does not wait for a CPU: when allowed (root), run
    SCHED_FIFO so that busy cores (argon2id threads) do not delay the
    answers; otherwise as nice as we may."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return "fifo"
    except (OSError, AttributeError):
        try:
            os.nice(-10)
            return "nice"
        except OSError:
            return "normal"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--link", required=True)
    ap.add_argument("--trace", required=True)
    a = ap.parse_args()
    sys.stderr.write("fakemodem: scheduling %s\n" % like_hardware())
    fake = Fake(a.link, a.trace)

    def stop(*_):
        try:
            os.unlink(fake.link)
        except OSError:
            pass
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    fake.run()


if __name__ == "__main__":
    main()
