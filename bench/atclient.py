"""The minimal client: speaks AT+CMGS straight to smsgw-modemsim, with no
store, no queue and no logging, so that the bench can tell the simulator's
own cost per message from what smsgwd adds.

It sends the very PDUs smsgwd sent in the same run (taken from the
simulator's sent log), one after the other, like a gateway with one modem.
"""
import os
import select
import termios
import time
import tty

from benchlib import BenchError


class AtClient:
    def __init__(self, path, timeout=10.0):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLIN)
        self.timeout_ms = int(timeout * 1000)
        self.buf = b""

    def close(self):
        os.close(self.fd)

    def until(self, token):
        for _ in range(100000):
            i = self.buf.find(token)
            if i >= 0:
                self.buf = self.buf[i + len(token):]
                return
            if not self.poll.poll(self.timeout_ms):
                raise BenchError("the simulator did not answer %r" % token)
            self.buf += os.read(self.fd, 4096)
        raise BenchError("read loop bound")

    def send(self, hex_pdu):
        smsc = int(hex_pdu[:2], 16)
        tpdu_len = len(hex_pdu) // 2 - 1 - smsc
        os.write(self.fd, b"AT+CMGS=%d\r" % tpdu_len)
        self.until(b"> ")
        os.write(self.fd, hex_pdu.encode() + b"\x1a")
        self.until(b"\r\nOK\r\n")

    def setup(self):
        os.write(self.fd, b"ATE0\r")
        self.until(b"OK\r\n")


def run(path, pdus):
    """Sends every PDU through the simulator at `path`; returns the
    monotonic time each +CMGS answer arrived."""
    c = AtClient(path, timeout=30.0)
    try:
        c.setup()
        done = []
        for p in pdus:
            c.send(p)
            done.append(time.monotonic())
        return done
    finally:
        c.close()
