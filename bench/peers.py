"""gammu-smsd and smstools3 (smsd) driven through the same simulator as
smsgwd: their configs come from bench/peers/, messages go in through their
spool directories (files renamed into the outbox, as their docs ask), and
completion is read from the simulator's sent log.
"""
import os
import shutil
import signal
import subprocess
import time

import benchlib as bl

PEERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")


def _template(name):
    with open(os.path.join(PEERS_DIR, name)) as f:
        return f.read()


def available(peer):
    exe = {"gammu": "gammu-smsd", "smstools": "smsd"}[peer]
    return shutil.which(exe) or (os.path.exists("/usr/sbin/" + exe) and
                                 "/usr/sbin/" + exe)


def version(peer):
    pkg = {"gammu": "gammu-smsd", "smstools": "smstools"}[peer]
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


class Peer:
    """One peer daemon setup over k simulators (gammu: one gammu-smsd per
    modem, as its docs do for several modems; smstools: one smsd with k
    devices)."""

    def __init__(self, peer, sims, work, loopsleep=0, poll_faster=100):
        self.peer = peer
        self.sims = sims
        self.work = work
        self.procs = []
        self.cmds = []     # (argv, directory) per process
        self.spools = []   # (staging dir, outbox dir) per process
        if peer == "gammu":
            self._gammu(loopsleep)
        else:
            self._smstools(poll_faster)

    def _gammu(self, loopsleep):
        tpl = _template("gammu-smsdrc.in")
        for i, sim in enumerate(self.sims):
            d = os.path.join(self.work, "gammu%d" % i)
            for sub in ("in", "out", "sent", "err", "stage"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            rc = os.path.join(d, "smsdrc")
            with open(rc, "w") as f:
                f.write(tpl.format(device=sim.link, dir=d,
                                   loopsleep=loopsleep))
            self.spools.append((os.path.join(d, "stage"),
                                os.path.join(d, "out")))
            self.cmds.append((["gammu-smsd", "-c", rc], d))

    def _smstools(self, poll_faster):
        d = os.path.join(self.work, "smstools")
        for sub in ("outgoing", "checked", "failed", "sent", "stage"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        names = ["GSM%d" % (i + 1) for i in range(len(self.sims))]
        text = _template("smsd.conf.in").format(dir=d,
                                                devices=",".join(names))
        modem = _template("smsd-modem.in")
        for name, sim in zip(names, self.sims):
            text += modem.format(name=name, device=sim.link,
                                poll_faster=poll_faster)
        conf = os.path.join(d, "smsd.conf")
        with open(conf, "w") as f:
            f.write(text)
        self.spools.append((os.path.join(d, "stage"),
                            os.path.join(d, "outgoing")))
        exe = available("smstools")
        self.cmds = [([exe, "-c", conf, "-t"], d)]

    # --- process ------------------------------------------------------
    def start(self):
        for cmd, d in self.cmds:
            out = open(os.path.join(d, "stdout"), "wb")
            self.procs.append(subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True))
            out.close()

    def pids(self):
        out = []
        for p in self.procs:
            if p.poll() is None:
                out += bl.descendants(p.pid)
        return out

    def cpu_s(self):
        return bl.tree_cpu_ns(self.pids()) / 1e9

    def hwm_kb(self):
        return sum(bl.status_kb(p, "VmHWM") for p in self.pids())

    def wait_idle(self, timeout=90.0, quiet=1.5):
        """Waits until the peer has initialised every modem: each simulator
        has seen commands, and none for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        last, still = None, time.monotonic()
        for _ in range(int(timeout / 0.25) + 10):
            for p in self.procs:
                if p.poll() is not None:
                    raise bl.BenchError("%s exited with %s" %
                                        (self.peer, p.returncode))
            counts = [s.stats()["commands"] for s in self.sims]
            now = time.monotonic()
            if counts != last or min(counts) == 0:
                last, still = counts, now
            elif now - still >= quiet:
                return
            if now > deadline:
                break
            time.sleep(0.25)
        raise bl.BenchError("%s did not finish initialising its modems" %
                            self.peer)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    # --- spool --------------------------------------------------------
    def stage(self, n, prefix="+34611"):
        """Writes n messages into the staging dirs (round robin over the
        processes); returns the list of (staged path, outbox path)."""
        moves = []
        for i in range(n):
            stage, out = self.spools[i % len(self.spools)]
            number = "%s%06d" % (prefix, i)
            text = "bench message %d" % i
            if self.peer == "gammu":
                name = "OUTA_%s_%d.txt" % (number, i)
                body = text
            else:
                name = "bench%06d" % i
                body = "To: %s\n\n%s" % (number.lstrip("+"), text)
            path = os.path.join(stage, name)
            with open(path, "w") as f:
                f.write(body)
            moves.append((path, os.path.join(out, name)))
        return moves


def run(peer, sims, work, n, loopsleep=0, poll_faster=100, idle_s=5.0,
        timeout=600.0):
    """Starts the peer on sims, measures its idle CPU, then feeds n
    messages and measures until the last is in the sent logs."""
    p = Peer(peer, sims, work, loopsleep, poll_faster)
    tails = [bl.LogTail(s.log_path) for s in sims]
    for t in tails:
        t.poll()
    base = sum(t.n for t in tails)
    try:
        p.start()
        p.wait_idle()
        idle = None
        if idle_s > 0:
            c0 = p.cpu_s()
            time.sleep(idle_s)
            idle = (p.cpu_s() - c0) / idle_s
        moves = p.stage(n)
        c0 = p.cpu_s()
        t0 = time.monotonic()
        for src, dst in moves:
            os.rename(src, dst)
        t1 = bl.wait_lines(tails, base + n, timeout, keep=True,
                           interval=0.005)
        cpu = p.cpu_s() - c0
        hwm = p.hwm_kb()
        times = bl.sent_times(tails)[-n:]
    finally:
        p.stop()
    return {"n": n, "modems": len(sims), "seconds": t1 - t0,
            "rate": n / (t1 - t0), "cpu_ms_per_msg": cpu * 1000.0 / n,
            "idle_cpu_pct": idle * 100.0 if idle is not None else None, "hwm_kb": hwm,
            "steady_period_s": ((times[-1] - times[0]) / (len(times) - 1)
                                if len(times) > 1 else None)}
