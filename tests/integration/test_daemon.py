"""The gateway core through its real parts: smsgwd, its control socket, its
SQLite file, and simulated modems on ptys (tests/integration/simmodem.py).

Every wait has a timeout, every loop a bound.
"""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smsgwtest import Daemon, check, run_tests, wait_for, binary  # noqa: E402
from simmodem import SimModem  # noqa: E402

ACCOUNTS = """[accounts]
organization = Test Plant
claim_url = https://portal.test/claim/{token}
"""

OUTBOX_FAST = """[outbox]
retry_backoff = 1s
retry_backoff_max = 2s
send_attempts = 5
"""


def new_sim(d, name, args=()):
    workdir = os.path.join(d.dir, "sim-" + name)
    os.makedirs(workdir, exist_ok=True)
    return SimModem(list(args), name=name, workdir=workdir).start()


def sims_and_daemon(n, sim_args=(), extra=OUTBOX_FAST, names=None):
    """n simulators and a daemon configured for them (not started)."""
    d = Daemon(extra=ACCOUNTS + extra)
    sims = {}
    for i in range(n):
        name = names[i] if names else "m%d" % i
        sims[name] = new_sim(d, name, sim_args)
    d.modems = {name: {"device": s.link, "command_timeout": "2s",
                       "health_timeouts": 2}
                for name, s in sims.items()}
    d.write_config()
    return d, sims


def stop_all(d, sims):
    try:
        rc = d.stop()
    finally:
        for s in sims.values():
            s.cleanup()
    check(rc == 0, "smsgwd exited %s on SIGTERM:\n%s" % (rc, d.tail()))


def wait_ready(c, n, timeout=20):
    def ready():
        mods = c.ok("modem.list")["modems"]
        return sum(1 for m in mods if m["state"] == "ready") >= n
    wait_for(ready, timeout, "%d modems ready" % n, interval=0.05)


def sent_texts(sims):
    out = []
    for s in sims.values():
        out.extend(e["text"] for e in s.sent_log())
    return out


def sms_status(c, sms_id):
    return c.ok("sms.get", {"id": sms_id})["sms"]["status"]


# --- tests -------------------------------------------------------------------

def test_check_config_and_refusals():
    d = Daemon(extra=ACCOUNTS, modems={"a": {"device": "/dev/null-nope"}})
    r = subprocess.run([binary("smsgwd"), "-c", d.conf, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "check-config failed: %s" % r.stderr)
    check("[modem.a]" in r.stdout and "organization = Test Plant" in r.stdout,
          "effective config not printed:\n%s" % r.stdout)
    with open(d.conf, "a") as f:
        f.write("[outbox]\nretry_bakoff = 3s\n")
    r = subprocess.run([binary("smsgwd"), "-c", d.conf, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1, "a typo must fail --check-config")
    check("retry_bakoff" in r.stderr and d.conf in r.stderr,
          "error names file and key: %r" % r.stderr)
    # A corrupt database is refused at start and left as it was.
    d2 = Daemon(extra=ACCOUNTS, modems={"a": {"device": "/dev/null-nope"}})
    db = os.path.join(d2.state_dir, "smsgw.db")
    junk = os.urandom(8192)
    with open(db, "wb") as f:
        f.write(junk)
    d2.start(wait=False)
    rc = d2.proc.wait(30)
    check(rc != 0, "smsgwd started on a corrupt database")
    with open(db, "rb") as f:
        check(f.read() == junk, "corrupt database was modified")
    check("smsgw.db" in d2.tail(), "refusal names the file: %s" % d2.tail())


def test_500_sms_two_modems():
    d, sims = sims_and_daemon(2)
    d.start()
    try:
        c = d.client()
        wait_ready(c, 2)
        texts = ["msg %03d ñandú €%d" % (i, i) for i in range(500)]
        ids = []
        # Pipelined: send all, then collect every answer.
        rids = [c.send("sms.send", {"to": "+3460011%04d" % i, "text": t})
                for i, t in enumerate(texts)]
        for rid in rids:
            r = c.response(rid, timeout=60)
            check(r.get("ok"), "sms.send refused: %r" % r)
            ids.append(r["result"]["sms_id"])
        check(len(set(ids)) == 500, "500 distinct ids")
        wait_for(lambda: len(sent_texts(sims)) >= 500, 120,
                 "500 SMS through the simulators", interval=0.1)
        got = sent_texts(sims)
        check(sorted(got) == sorted(texts),
              "every SMS exactly once, decoded right (%d sent)" % len(got))
        per = [len(s.sent_log()) for s in sims.values()]
        check(all(n > 0 for n in per), "both modems used: %r" % per)
        to = {e["to"] for s in sims.values() for e in s.sent_log()}
        check(len(to) == 500, "each to its own recipient")
        # Status reports: every part reported delivered, in the database.
        def all_delivered():
            con = d.db()
            try:
                return con.execute("SELECT count(*) FROM sms WHERE direction='out'"
                                   " AND status='delivered'").fetchone()[0] == 500
            finally:
                con.close()
        wait_for(all_delivered, 60, "500 status reports", interval=0.2)
        check(sms_status(c, ids[0]) == "delivered", "sms.get shows delivered")
        mods = {m["name"]: m for m in c.ok("modem.list")["modems"]}
        check(sum(m["sent"] for m in mods.values()) == 500, "modem.list counts")
    finally:
        stop_all(d, sims)


def test_multipart_and_events():
    d, sims = sims_and_daemon(1)
    d.start()
    try:
        c = d.client()
        wait_ready(c, 1)
        w = d.client()
        w.ok("events.subscribe")
        text = "Parte larga: " + "áéíóú ç ñ " * 40
        r = c.ok("sms.send", {"to": "+34 600 111 222", "text": text})
        check(r["parts"] >= 2, "long text is multipart: %r" % r)
        w.wait_event("sms.queued", lambda e: e["id"] == r["sms_id"])
        w.wait_event("sms.sent", lambda e: e["id"] == r["sms_id"])
        w.wait_event("sms.delivered", lambda e: e["id"] == r["sms_id"], timeout=30)
        log = sims["m0"].sent_log()
        check(len(log) == r["parts"], "one log line per part")
        refs = {e["udh"]["ref"] for e in log}
        check(len(refs) == 1, "one concatenation reference")
        check("".join(e["text"] for e in sorted(log, key=lambda e: e["udh"]["seq"]))
              == text, "parts join to the text")
        sms = c.ok("sms.get", {"id": r["sms_id"]})["sms"]
        check([p["seq"] for p in sms["parts"]] == list(range(1, r["parts"] + 1)),
              "per-part status")
        check(all(p["status"] == "delivered" for p in sms["parts"]), "all parts delivered")
        c.err("sms.send", {"to": "0600 111 222", "text": "x"}, "invalid_phone")
        c.err("sms.get", {"id": 999999}, "not_found")
        c.err("sms.send", {"to": "+34600111222"}, "bad_request")
        audit = c.ok("audit.list")["entries"]
        check(any(e["op"] == "sms.send" for e in audit), "sms.send audited")
    finally:
        stop_all(d, sims)


def test_group_commit_answers_after_commit():
    """Pipelined sms.send share a commit; another module's write in the same
    read flushes it first; every answered SMS survives a kill -9 at once."""
    d, sims = sims_and_daemon(1, ["--send-delay", "5"])
    d.start()
    try:
        c = d.client()
        lines = []
        for i in range(3):
            lines.append({"id": "a%d" % i, "op": "sms.send",
                          "args": {"to": "+3460015000%d" % i, "text": "gc %d" % i}})
        lines.append({"id": "set", "op": "settings.set",
                      "args": {"domain_verified": True}})
        for i in range(3, 6):
            lines.append({"id": "a%d" % i, "op": "sms.send",
                          "args": {"to": "+3460015000%d" % i, "text": "gc %d" % i}})
        c.send_raw("".join(json.dumps(l) + "\n" for l in lines).encode())
        got = {}
        for _ in range(len(lines)):
            r = c.read_line()
            got[r["id"]] = r
        check(all(r.get("ok") for r in got.values()), "all answered ok: %r" % got)
        d.kill9()
        con = sqlite3.connect(os.path.join(d.state_dir, "smsgw.db"))
        try:
            texts = {t for (t,) in con.execute("SELECT text FROM sms WHERE direction='out'")}
            setting = con.execute("SELECT value FROM settings WHERE key='domain_verified'").fetchone()
        finally:
            con.close()
        check(texts == {"gc %d" % i for i in range(6)}, "all six durable: %r" % texts)
        check(setting is not None, "the setting is durable")
    finally:
        d.kill9()
        for s in sims.values():
            s.cleanup()


def test_ready_not_lost_behind_status():
    """12 modems change state at start; a service manager that reads its
    small datagram queue late still gets READY=1."""
    d, sims = sims_and_daemon(12)
    path = os.path.join(d.dir, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    d.env = {"NOTIFY_SOCKET": path}
    try:
        d.start()
        c = d.client()
        wait_ready(c, 12, timeout=60)
        time.sleep(0.5)  # let every STATUS= the daemon wants to send pile up
        ns.setblocking(False)
        msgs = []
        for _ in range(1000):
            try:
                msgs.append(ns.recv(4096).decode())
            except BlockingIOError:
                break
        check(any("READY=1" in m for m in msgs), "READY=1 delivered: %r" % msgs)
        first = next(i for i, m in enumerate(msgs) if "READY=1" in m)
        check(not any(m.startswith("STATUS=") for m in msgs[:first]),
              "no STATUS= before READY=1: %r" % msgs[:first + 1])
    finally:
        ns.close()
        stop_all(d, sims)


def test_transient_retried_permanent_failed():
    d, sims = sims_and_daemon(1, ["--fail-rate", "0.5", "--seed", "7",
                                  "--permanent-fail", "+34600999999"])
    d.start()
    try:
        c = d.client()
        wait_ready(c, 1)
        ok_ids = [c.ok("sms.send", {"to": "+3460012%04d" % i,
                                    "text": "retry %d" % i})["sms_id"]
                  for i in range(10)]
        bad = c.ok("sms.send", {"to": "+34600999999", "text": "never"})["sms_id"]
        wait_for(lambda: sms_status(c, bad) == "failed", 30, "permanent failure")
        sms = c.ok("sms.get", {"id": bad})["sms"]
        check("21" in (sms.get("error") or ""), "reason kept: %r" % sms)

        def done():
            return all(sms_status(c, i) in ("sent", "delivered", "failed")
                       for i in ok_ids)
        wait_for(done, 90, "retries to finish", interval=0.2)
        statuses = [sms_status(c, i) for i in ok_ids]
        stats = sims["m0"].stats()
        check(stats["failed_transient"] > 0, "the simulator failed some: %r" % stats)
        check(statuses.count("failed") <= 1,
              "transient errors are retried: %r" % statuses)
    finally:
        stop_all(d, sims)


def test_unplugged_modem_queue_moves():
    d, sims = sims_and_daemon(2, ["--send-delay", "0.05"])
    d.start()
    try:
        c = d.client()
        wait_ready(c, 2)
        ids = [c.ok("sms.send", {"to": "+3460013%04d" % i,
                                 "text": "move %d" % i})["sms_id"]
               for i in range(60)]
        wait_for(lambda: len(sims["m1"].sent_log()) >= 3, 20, "m1 sending")
        sims["m1"].ok("unplug")
        wait_for(lambda: all(sms_status(c, i) in ("sent", "delivered")
                             for i in ids), 90, "all 60 sent on m0", interval=0.2)
        texts = sent_texts(sims)
        for i in range(60):
            check(("move %d" % i) in texts, "move %d sent" % i)
        check(len(texts) <= 61, "at most the part on the wire twice: %d" % len(texts))
        mods = {m["name"]: m["state"] for m in c.ok("modem.list")["modems"]}
        check(mods["m1"] == "gone", "unplugged modem is gone: %r" % mods)
        sims["m1"].ok("replug")
        wait_ready(c, 2, timeout=30)
    finally:
        stop_all(d, sims)


def test_kill9_nothing_lost():
    d, sims = sims_and_daemon(1, ["--send-delay", "0.02"])
    rng = random.Random(5)
    accepted = {}
    kills = 0
    try:
        for rnd in range(4):
            d.start()
            c = d.client()
            for i in range(40):
                n = rnd * 40 + i
                text = "kill-%03d" % n
                r = c.request("sms.send", {"to": "+3460014%04d" % n, "text": text})
                check(r.get("ok"), "refused: %r" % r)
                accepted[text] = r["result"]["sms_id"]
            time.sleep(rng.uniform(0.05, 0.6))
            if rnd < 3:
                d.kill9()
                kills += 1
        c = d.client()
        wait_for(lambda: all(sms_status(c, i) in ("sent", "delivered")
                             for i in accepted.values()), 120,
                 "every accepted SMS sent", interval=0.2)
        texts = sent_texts(sims)
        missing = [t for t in accepted if t not in texts]
        check(not missing, "lost after kill -9: %r" % missing[:5])
        dup = len(texts) - len(set(texts))
        check(dup <= kills, "duplicates %d > kills %d" % (dup, kills))
        con = d.db()
        try:
            check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok",
                  "integrity_check")
        finally:
            con.close()
    finally:
        stop_all(d, sims)


def test_inbound_sweep_and_multipart_across_restart():
    d, sims = sims_and_daemon(1)
    sim = sims["m0"]
    try:
        # Arrives while the daemon is down: found by the sweep at start.
        sim.inject("+34600555111", "llegó mientras dormías")
        d.start()
        c = d.client()
        wait_ready(c, 1)

        def inbox():
            return c.ok("sms.list", {"direction": "in"})["sms"]
        wait_for(lambda: any(m["text"] == "llegó mientras dormías" for m in inbox()),
                 20, "swept SMS")
        wait_for(lambda: sim.storage() == [], 20, "deleted from the modem after commit")
        # A 3-part SMS: part 1 now, a restart, parts 2 and 3 after.
        long_text = "Tres partes: " + "0123456789" * 40
        sim.inject("+34600555222", long_text, ref=77, only=[1])
        wait_for(lambda: sim.storage() == [], 20, "part 1 taken")
        check(not any(m["text"] == long_text for m in inbox()), "not complete yet")
        d.kill9()
        d.start()
        c = d.client()
        wait_ready(c, 1)
        sim.inject("+34600555222", long_text, ref=77, only=[2, 3])
        wait_for(lambda: any(m["text"] == long_text for m in inbox()), 20,
                 "reassembled across a restart")
        full = [m for m in inbox() if m["text"] == long_text]
        check(len(full) == 1 and not full[0].get("incomplete"), "once, complete")
    finally:
        stop_all(d, sims)


def test_hostile_clients():
    d, sims = sims_and_daemon(1)
    d.start()
    try:
        c = d.client()
        # 10 MB without a newline.
        flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        flood.connect(d.socket)
        flood.settimeout(0.5)
        chunk = b"x" * 65536
        sent = 0
        try:
            for _ in range(160):
                flood.sendall(chunk)
                sent += len(chunk)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
        check(c.ok("ping")["version"], "served while flooded")
        # A subscriber that never reads, while events flow.
        lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lazy.connect(d.socket)
        lazy.sendall(b'{"id":1,"op":"events.subscribe"}\n')
        # 200 clients at once.
        many = []
        for i in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(d.socket)
            s.sendall(b'{"id":%d,"op":"ping"}\n' % i)
            many.append(s)
        for i, s in enumerate(many):
            buf = b""
            for _ in range(100):
                if b"\n" in buf:
                    break
                buf += s.recv(4096)
            check(b'"ok": true' in buf or b'"ok":true' in buf, "client %d answered" % i)
            s.close()
        c.err("no.such.op", {}, "unknown_op")
        c.send_raw(b"[1,2,3]\n")
        r = c.read_line()
        check(r["error"]["code"] == "bad_request", "non-object refused: %r" % r)
        c.send_raw(b"x" * (70 * 1024) + b"\n")
        r = c.read_line()
        check(r["error"]["code"] == "request_too_large", "too large: %r" % r)
        check(c.ok("ping")["version"], "connection still usable")
        flood.close()
        lazy.close()
    finally:
        stop_all(d, sims)


def test_reload_adds_and_removes_modems():
    d, sims = sims_and_daemon(1)
    d.start()
    extra = new_sim(d, "late")
    try:
        c = d.client()
        wait_ready(c, 1)
        d.modems["late"] = {"device": extra.link}
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(c.ok("modem.list")["modems"]) == 2, 10, "modem added")
        wait_ready(c, 2)
        r = c.ok("sms.send", {"to": "+34600777000", "text": "after reload"})
        wait_for(lambda: sms_status(c, r["sms_id"]) in ("sent", "delivered"), 20,
                 "send after reload")
        del d.modems["m0"]
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: [m["name"] for m in c.ok("modem.list")["modems"]] == ["late"],
                 10, "modem removed")
        # A broken config is refused and the running one kept.
        with open(d.conf, "a") as f:
            f.write("[bogus]\n")
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        check(d.proc.poll() is None, "daemon survives a bad reload")
        check(c.ok("ping")["version"], "still serving")
        check("keeping the running config" in d.tail(200), "bad reload logged")
    finally:
        extra.cleanup()
        stop_all(d, sims)


if __name__ == "__main__":
    run_tests([
        test_check_config_and_refusals,
        test_500_sms_two_modems,
        test_multipart_and_events,
        test_transient_retried_permanent_failed,
        test_group_commit_answers_after_commit,
        test_ready_not_lost_behind_status,
        test_unplugged_modem_queue_moves,
        test_kill9_nothing_lost,
        test_inbound_sweep_and_multipart_across_restart,
        test_hostile_clients,
        test_reload_adds_and_removes_modems,
    ])
