"""The reliability suite: the real smsgwd, killed, starved and abused.

- kill -9 at random points during sends, claims and inbound sweeps: every
  accepted SMS is sent, every SMS that reached the modem is received, the
  database passes integrity_check, at most one duplicate part per kill;
- modem faults (unplug/replug, a hung modem, error storms, garbage on the
  line, no network): the gateway recovers by itself;
- disk full and a read-only state directory: `unavailable`, nothing
  acknowledged lost, service back when space is;
- hostile control clients: oversized lines, invalid UTF-8, deep nesting,
  1,000 connections, running out of descriptors, slow readers, other uids.

`make check` runs the short version; SMSGW_SOAK=1 (`make soak`) the long
one (more rounds, more traffic). SMSGW_RELIAB_SEED=N replays a run. The
counts printed (kills, duplicates, retries, resets) are for the reader;
the checks are on outcomes, never on timings.

Python stdlib only; every wait has a timeout, every loop a bound.
"""
import json
import os
import random
import re
import resource
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliab import (ACCOUNTS, CLAIM_URL, NOBODY, OUTBOX_FAST, SOAK, Env,  # noqa: E402
                    SmallFs, TestFailure, as_uid, check, log, ping_latency,
                    raise_nofile, raw_connect, read_lines, sqlite_ok, wait_for)
from smsgwtest import Client, run_tests  # noqa: E402

SEED = int(os.environ.get("SMSGW_RELIAB_SEED") or time.time_ns() % 1000000)
TOKEN_RE = re.compile(re.escape(CLAIM_URL) + r"([A-Za-z0-9_-]{24})(?![A-Za-z0-9_-])")
MANY_INVITES = """invites_per_day = 100000
invites_per_day_verified = 100000
"""


def soak(short, long):
    return long if SOAK else short


# --- kill -9 -------------------------------------------------------------------

class KillBook:
    """What the clients were told, so the end state can be checked."""

    def __init__(self):
        self.accepted = {}      # sms_id -> (to, text) of sms.send answered ok
        self.account_sms = {}   # sms_id -> what (invite/claim) answered ok
        self.invited = set()    # phones whose invite was answered ok
        self.claimed = set()    # phones whose claim was answered ok
        self.claim_tried = {}   # phone -> token tried (answer lost or ok)
        self.injected = []      # (sender, text) handed to the modem
        self.kills = 0
        self.claims_tried = 0
        self.sweep_kills = 0
        self.n_send = self.n_phone = self.n_in = 0
        self.lock = threading.Lock()


def kill_after(d, delay):
    """SIGKILLs the daemon after delay s from a timer thread."""
    pid = d.proc.pid

    def fire():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    t = threading.Timer(delay, fire)
    t.start()
    return t


def inject_some(env, book, rng, n):
    sim = env.sims["m0"]
    for _ in range(n):
        book.n_in += 1
        k = book.n_in
        sender = "+3460300%04d" % k
        if rng.random() < 0.3:
            text = ("in-%d long: " % k) + "abcdefghij" * rng.randint(17, 40)
            sim.inject(sender, text, ref=k % 250 + 1)
        else:
            text = "in-%d short" % k
            sim.inject(sender, text)
        book.injected.append((sender, text))


def round_send(env, book, rng):
    c = env.client()
    texts = {}
    rids = []
    for _ in range(soak(20, 30)):
        book.n_send += 1
        k = book.n_send
        to = "+3460100%04d" % k
        text = "out-%d" % k
        if k % 6 == 0:
            text += " long " + "0123456789" * rng.randint(16, 40)
        rid = c.send("sms.send", {"to": to, "text": text})
        texts[rid] = (to, text)
        rids.append(rid)
    inject_some(env, book, rng, 2)
    for rid in rids:
        r = c.response(rid, timeout=30)
        check(r.get("ok") or r["error"]["code"] == "unavailable",
              "sms.send refused: %r" % r)
        if r.get("ok"):
            book.accepted[r["result"]["sms_id"]] = texts[rid]


def tokens_seen(env):
    """phone -> the newest claim token the phone got."""
    out = {}
    for to, text in env.sent_messages():
        m = TOKEN_RE.search(text)
        if m:
            out[to] = m.group(1)
    return out


def round_claim(env, book, rng):
    c = env.client()
    tokens = tokens_seen(env)
    todo = [(p, t) for p, t in sorted(tokens.items())
            if p not in book.claimed and book.claim_tried.get(p) != t]
    rng.shuffle(todo)
    todo = todo[:3]
    book.claims_tried += len(todo)
    errors = []

    def claim(phone, token):
        try:
            cl = Client(env.d.socket, timeout=30)
            try:
                with book.lock:
                    book.claim_tried[phone] = token
                r = cl.request("account.claim", {
                    "token": token, "password": "reliable pass %s" % phone})
            finally:
                cl.close()
        except (OSError, TestFailure, ValueError):
            return  # killed: the answer is lost
        if r.get("ok"):
            with book.lock:
                book.claimed.add(phone)
                book.account_sms[r["result"]["sms_id"]] = "claim " + phone
        elif r["error"]["code"] not in ("invalid_token", "unavailable"):
            errors.append(r)
    threads = [threading.Thread(target=claim, args=pt) for pt in todo]
    for t in threads:
        t.start()
    for _ in range(2):
        book.n_phone += 1
        phone = "+3460200%04d" % book.n_phone
        r = c.request("account.invite", {"phone": phone, "name": "W%d" % book.n_phone})
        if r.get("ok"):
            book.invited.add(phone)
            book.account_sms[r["result"]["sms_id"]] = "invite " + phone
        else:
            check(r["error"]["code"] == "unavailable", "invite: %r" % r)
    for t in threads:
        t.join(60)
    check(not errors, "claims refused: %r" % errors)
    return len(todo)


def run_kill_round(env, book, rng, mode):
    if mode == "sweep":
        # Arrives while the daemon is down: found by the sweep at start,
        # and the daemon dies somewhere in the middle of it.
        inject_some(env, book, rng, rng.randint(3, 6))
        book.sweep_kills += 1
        env.d.start(wait=False)
        killer = kill_after(env.d, rng.uniform(0.05, soak(0.8, 1.2)))
    else:
        env.start()
        env.wait_ready()
        check(env.integrity() == "ok", "integrity_check after a kill")
        killer = kill_after(env.d, rng.uniform(0.0, 0.8))
    try:
        if mode == "send":
            round_send(env, book, rng)
        elif mode == "claim":
            round_claim(env, book, rng)
            round_send(env, book, rng)
    except (OSError, TestFailure, ValueError) as e:
        if env.d.proc.poll() is None and killer.is_alive():
            killer.cancel()
            raise TestFailure("round failed with the daemon alive: %r" % e)
    killer.join(10)
    env.drop_client()
    env.d.proc.wait(20)
    rc = env.d.proc.returncode
    check(rc == -signal.SIGKILL, "smsgwd died by itself (%s):\n%s" %
          (rc, env.d.tail()))
    env.d.proc = None
    book.kills += 1


def test_kill9_rounds():
    rounds = soak(8, 50)
    rng = random.Random(SEED)
    book = KillBook()
    modes = ["send", "claim", "sweep"]
    env = Env(1, ["--send-delay", "0.05", "--report-delay", "0.2"],
              extra=ACCOUNTS + MANY_INVITES + OUTBOX_FAST)
    try:
        env.start()
        env.client().ok("settings.set", {"phone_profiles": True})
        env.kill9()
        for i in range(rounds):
            run_kill_round(env, book, rng, modes[i % 3] if i < 3
                           else rng.choice(modes))
        # The last start: everything must come out.
        env.start()
        env.wait_ready()
        c = env.client()
        ids = list(book.accepted) + list(book.account_sms)
        env.wait_all_sent(ids, soak(120, 600))
        sent = env.sent_messages()
        sent_set = set(sent)
        missing = [v for v in book.accepted.values() if v not in sent_set]
        check(not missing, "accepted but never on the air: %r" % missing[:5])
        got = set((to) for to, text in sent if "invited" in text)
        check(book.invited <= got, "invites lost: %r" % (book.invited - got))
        recov = set(to for to, text in sent if "recovery code" in text)
        check(book.claimed <= recov,
              "recovery SMS lost: %r" % (book.claimed - recov))
        for phone in book.claimed:
            a = c.ok("account.get", {"phone": phone})["account"]
            check(a["state"] == "active", "claimed but %r" % a)
        texts = [t for _, t in book.injected]
        try:
            wait_for(lambda: set(texts) <= set(m["text"] for m in env.inbox()),
                     60, "every injected SMS in the inbox", interval=0.2)
        except TestFailure:
            have = set(m["text"] for m in env.inbox())
            raise TestFailure("inbound lost: %r; left on the modem: %r; "
                              "dir %s" % ([t[:20] for t in texts if t not in have],
                                          env.sims["m0"].storage(), env.d.dir))
        inbox = env.inbox()
        in_texts = [m["text"] for m in inbox]
        in_dups = sum(in_texts.count(t) - 1 for t in set(texts))
        check(not any(m.get("incomplete") for m in inbox
                      if m["text"] in set(texts)), "a set kept incomplete")
        wait_for(lambda: env.sims["m0"].storage() == [], 30,
                 "modem storage emptied")
        dups = env.duplicate_parts()
        check(env.integrity() == "ok", "integrity_check at the end")
        log("seed %d: %d rounds, %d kills; %d SMS accepted (%d account SMS), "
            "%d invites, %d claims ok of %d tried; %d inbound injected, "
            "%d inbound duplicates (%d kills in sweeps); %d duplicate parts "
            "sent (limit %d); %d retries",
            SEED, rounds, book.kills, len(book.accepted),
            len(book.account_sms), len(book.invited), len(book.claimed),
            book.claims_tried, len(texts), in_dups, book.sweep_kills,
            dups, book.kills, env.retries())
        check(dups <= book.kills, "%d duplicate parts for %d kills" %
              (dups, book.kills))
    finally:
        env.close(check_rc=sys.exc_info()[0] is None)


if __name__ == "__main__":
    print("reliability: seed %d%s" % (SEED, " (soak)" if SOAK else ""),
          flush=True)
    run_tests([
        test_kill9_rounds,
    ])
