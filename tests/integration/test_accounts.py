"""The phone-number account lifecycle end to end: the real smsgwd, its real
socket and SQLite file, and a simulated modem on a pty whose sent-SMS log
is what the people's phones would get.

invite -> claim (token read from the simulator's log) -> recovery code SMS
-> login -> recovery reset -> old code refused -> new code -> unclaim ->
claim again; every error code the account ops can give; the claim SMS
limit; the daily cap; roles (peers running as other uids); 100 clients
inviting at once; a restart between invite and claim.

Python stdlib only. Binaries from $SMSGW_BUILD (default build/check).
"""
import json
import os
import re
import shutil
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simmodem import SimModem  # noqa: E402
from smsgwtest import Client, Daemon, check, run_tests, wait_for  # noqa: E402

URL = "https://portal.it.example/claim/"
TOKEN_RE = re.compile(re.escape(URL) + r"([A-Za-z0-9_-]{24})(?![A-Za-z0-9_-])")
CODE_RE = re.compile(r"code is ([0-9A-Z]{5}-[0-9A-Z]{5})")
PORTAL_UID = PORTAL_GID = 65534   # nobody:nogroup, made the portal group
NONE_UID = NONE_GID = 65533       # nobody's neighbour: no role at all


class AccountsDaemon(Daemon):
    """A Daemon whose socket other uids can reach, with a portal group."""

    def __init__(self, sim, accounts="", **kw):
        self.accounts = accounts
        super().__init__(modems={"main": {"device": sim.link}}, **kw)
        os.chmod(self.dir, 0o755)

    def write_config(self):
        lines = [
            "[daemon]",
            "state_dir = %s" % self.state_dir,
            "socket = %s" % self.socket,
            "log_level = %s" % self.log_level,
            "admin_group =",
            "portal_group = nogroup",
            "socket_mode = 0666",
            "",
        ]
        for name, opts in self.modems.items():
            lines.append("[modem.%s]" % name)
            lines += ["%s = %s" % kv for kv in opts.items()]
            lines.append("")
        lines += [
            "[accounts]",
            "organization = IT Org",
            "claim_url = %s{token}" % URL,
            "password_hash = interactive",
            "hash_threads = 2",
            self.accounts,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def rw_db(self):
        """A writable connection, to age rows as time passing would."""
        return sqlite3.connect(os.path.join(self.state_dir, "smsgw.db"),
                               timeout=10)


class Env:
    """A simulator and a daemon on it, torn down together."""

    def __init__(self, accounts=""):
        self.sim = SimModem().start()
        self.d = AccountsDaemon(self.sim, accounts)
        self.d.start()
        self.c = self.d.client()

    def close(self, keep=False):
        try:
            self.c.close()
        finally:
            rc = self.d.stop()
            self.sim.cleanup()
        check(rc == 0, "smsgwd exited with %s:\n%s" % (rc, self.d.tail()))
        if not keep:
            shutil.rmtree(self.d.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        # a failed test keeps the daemon's directory (log, database)
        self.close(keep=exc_type is not None)

    def age(self, sql, *args):
        db = self.d.rw_db()
        try:
            db.execute(sql, args)
            db.commit()
        finally:
            db.close()

    # --- the phones' side ------------------------------------------------
    def sent_log(self):
        """The simulator's sent-SMS log, complete lines only (a line being
        written when we read is left for the next look)."""
        try:
            with open(self.sim.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in data.split("\n")[:-1] if l.strip()]

    def texts_to(self, phone):
        """Every SMS the simulator sent to phone, parts joined, in order."""
        msgs, parts = [], {}
        for e in self.sent_log():
            if e.get("to") != phone:
                continue
            udh = e.get("udh")
            if not udh:
                msgs.append(e["text"])
                continue
            key = udh["ref"]
            parts.setdefault(key, {})[udh["seq"]] = e["text"]
            if len(parts[key]) == udh["total"]:
                msgs.append("".join(parts[key][i]
                                    for i in sorted(parts[key])))
        return msgs

    def wait_texts(self, phone, n, timeout=30.0):
        return wait_for(lambda: len(self.texts_to(phone)) >= n and
                        self.texts_to(phone), timeout,
                        "%d SMS to %s (log: %r)" %
                        (n, phone, self.texts_to(phone)))

    def token(self, phone, n):
        """The claim token in the n-th SMS to phone."""
        text = self.wait_texts(phone, n)[n - 1]
        m = TOKEN_RE.search(text)
        check(m, "no claim link in %r" % text)
        return m.group(1)

    def code(self, phone, n):
        text = self.wait_texts(phone, n)[n - 1]
        m = CODE_RE.search(text)
        check(m, "no recovery code in %r" % text)
        return m.group(1)

    # --- shortcuts ---------------------------------------------------------
    def enable(self):
        self.c.ok("settings.set", {"phone_profiles": True})

    def login(self, phone, password):
        return self.c.request("account.login",
                              {"phone": phone, "password": password})


def check_account(a, **want):
    keys = {"id", "phone", "name", "state", "created_at", "claimed_at",
            "session_epoch", "claim_sms_sent_24h", "fields"}
    check(set(a) <= keys, "unexpected keys in %r" % a)
    check(not any(isinstance(v, str) and "argon2" in v for v in a.values()),
          "a hash in %r" % a)
    for k, v in want.items():
        check(a.get(k) == v, "account.%s: want %r, got %r" % (k, v, a))


def test_lifecycle():
    phone = "+34600111222"
    with Env() as e:
        c = e.c
        c.err("account.invite", {"phone": phone}, "phone_profiles_disabled")
        e.enable()
        r = c.ok("account.invite", {"phone": "0034 600 111-222", "name": "Ana"})
        check_account(r["account"], phone=phone, state="invited",
                      claim_sms_sent_24h=1, session_epoch=0)
        tok = e.token(phone, 1)
        check("Ana, you are invited" in e.texts_to(phone)[0], "invite text")
        # the SMS really went out through the modem
        wait_for(lambda: c.ok("sms.get", {"id": r["sms_id"]})["sms"]["status"]
                 in ("sent", "delivered"), 30, "the invite to be sent")
        c.err("account.claim", {"token": tok, "password": "short"},
              "weak_password")
        c.err("account.claim", {"token": tok, "password": "+34 600 111 222"},
              "weak_password")
        r = c.ok("account.claim", {"token": tok, "password": "first passphrase"})
        check_account(r["account"], state="active")
        code1 = e.code(phone, 2)
        c.err("account.claim", {"token": tok, "password": "other passphrase"},
              "invalid_token")
        r = c.ok("account.login", {"phone": phone, "password": "first passphrase"})
        check(r["session_epoch"] == 0 and r["account_id"] > 0, repr(r))

        r = c.ok("account.recovery_reset", {
            "phone": phone, "code": code1.lower().replace("-", " "),
            "new_password": "second passphrase", "logout_other_devices": True})
        check_account(r["account"], session_epoch=1)
        c.err("account.recovery_reset", {
            "phone": phone, "code": code1, "new_password": "third passphrase",
            "logout_other_devices": False}, "invalid_code")
        check(e.login(phone, "first passphrase")["error"]["code"] ==
              "invalid_password", "old password still works")
        code2 = c.ok("account.recovery_code",
                     {"phone": phone, "password": "second passphrase"})["code"]
        check(code2 != code1 and CODE_RE.search("code is " + code2), code2)
        c.ok("account.recovery_reset", {
            "phone": phone, "code": code2, "new_password": "third passphrase",
            "logout_other_devices": False})
        c.ok("account.login", {"phone": phone, "password": "third passphrase"})

        r = c.ok("account.unclaim", {"phone": phone})
        check_account(r["account"], state="invited", session_epoch=2,
                      claimed_at=None, claim_sms_sent_24h=2)
        tok2 = e.token(phone, 3)
        check("password was reset" in e.texts_to(phone)[2], "unclaimed text")
        check(e.login(phone, "third passphrase")["error"]["code"] ==
              "invalid_password", "password survived unclaim")
        r = c.ok("account.claim", {"token": tok2, "password": "fourth passphrase"})
        check_account(r["account"], state="active", session_epoch=2)
        e.code(phone, 4)
        c.ok("account.login", {"phone": phone, "password": "fourth passphrase"})

        # nothing secret in the database's readable columns or the audit
        db = e.d.db()
        try:
            row = db.execute("SELECT password_hash, recovery_code_hash,"
                             " claim_token_hash FROM accounts").fetchone()
            audit = json.dumps(db.execute("SELECT * FROM audit").fetchall())
        finally:
            db.close()
        check(row[0].startswith("$argon2id$") and row[1].startswith("$argon2id$")
              and row[2] is None, repr(row))
        log = e.d.tail(100000)
        listed = json.dumps(c.ok("sms.list", {"direction": "out"}))
        check("[redacted]" in listed, "sms.list: %s" % listed)
        for secret in (tok, tok2, code1, code2, code1.replace("-", ""),
                       "passphrase"):
            check(secret not in audit, "%s in the audit" % secret)
            check(secret not in log, "%s in the daemon's log" % secret)
            check(secret not in listed, "%s readable with sms.list" % secret)


def test_error_codes():
    with Env("login_attempts = 3\nrecovery_attempts = 2") as e:
        c = e.c
        e.enable()
        for bad, why in (("0600111222", "no country code"), ("+34 6OO", "letters"),
                         ("+3460011", "too short"), ("+999 123 456 789",
                                                     "unknown country")):
            err = c.err("account.invite", {"phone": bad}, "invalid_phone")
            check(why in err["message"], "%s: %r" % (bad, err))
        c.ok("account.invite", {"phone": "+34600111222", "name": "Ana"})
        c.err("account.invite", {"phone": "34600111222"}, "already_exists")
        c.err("account.get", {"phone": "+34600999999"}, "not_found")
        c.err("account.update", {"phone": "+34600111222",
                                 "new_phone": "+34600111333"}, "phone_immutable")
        c.err("account.invite", {"phone": "+34600111333", "colour": 1},
              "bad_request")
        c.err("account.frobnicate", {}, "unknown_op")
        c.err("account.unclaim", {"phone": "+34600111222"}, "wrong_state")
        c.err("account.claim", {"token": "A" * 24, "password": "a passphrase"},
              "invalid_token")
        tok = e.token("+34600111222", 1)
        e.age("UPDATE accounts SET claim_token_expires_at = 1000")
        c.err("account.claim", {"token": tok, "password": "a passphrase"},
              "token_expired")
        c.ok("account.resend_invite", {"phone": "+34600111222"})
        tok = e.token("+34600111222", 2)
        c.ok("account.claim", {"token": tok, "password": "a passphrase"})
        code = e.code("+34600111222", 3)
        bad_code = {"phone": "+34600111222", "code": "00000-00000",
                    "new_password": "new passphrase"}
        c.err("account.recovery_reset", bad_code, "invalid_code")
        c.err("account.recovery_reset", bad_code, "invalid_code")
        err = c.err("account.recovery_reset", dict(bad_code, code=code),
                    "recovery_locked")
        check("unlocks at" in err["message"], repr(err))
        # an unknown number fails exactly like a wrong password
        e1 = e.login("+34600111222", "wrong password")["error"]
        e2 = e.login("+34600999999", "wrong password")["error"]
        check(e1 == e2 and e1["code"] == "invalid_password", "%r %r" % (e1, e2))
        c.ok("account.deactivate", {"phone": "+34600111222"})
        c.err("account.login", {"phone": "+34600111222",
                                "password": "a passphrase"}, "wrong_state")
        c.err("account.deactivate", {"phone": "+34600111222"}, "wrong_state")
        c.ok("account.reactivate", {"phone": "+34600111222"})
        c.ok("account.login", {"phone": "+34600111222", "password": "a passphrase"})


def test_login_lock():
    """login_attempts wrong passwords per hour lock the number, known or
    not, with login_locked (added to DESIGN.md's error list)."""
    with Env("login_attempts = 3") as e:
        c = e.c
        e.enable()
        c.ok("account.invite", {"phone": "+34600111222"})
        tok = e.token("+34600111222", 1)
        c.ok("account.claim", {"token": tok, "password": "a passphrase"})
        for _ in range(3):
            c.err("account.login", {"phone": "+34600111222",
                                    "password": "wrong password"},
                  "invalid_password")
            c.err("account.login", {"phone": "+34600999999",
                                    "password": "wrong password"},
                  "invalid_password")
        for phone in ("+34600111222", "+34600999999"):
            err = c.err("account.login", {"phone": phone,
                                          "password": "a passphrase"},
                        "login_locked")
            check("try again at" in err["message"], repr(err))
        e.age("UPDATE account_failure SET at = at - 3600000")
        c.ok("account.login", {"phone": "+34600111222", "password": "a passphrase"})


def test_claim_sms_limit():
    with Env() as e:
        c = e.c
        e.enable()
        a, b = "+34600111222", "+34600111333"
        c.ok("account.invite", {"phone": a})
        for _ in range(4):
            c.ok("account.resend_invite", {"phone": a})
        err = c.err("account.resend_invite", {"phone": a}, "claim_sms_limit")
        check(re.search(r"next one can be sent at \d{4}-\d\d-\d\dT", err["message"]),
              repr(err))
        e.wait_texts(a, 5)
        check(c.ok("account.get", {"phone": a})["account"]["claim_sms_sent_24h"]
              == 5, "count")
        # unclaim SMS count too: invite (1) + 4 unclaims = 5, the 6th refused
        c.ok("account.invite", {"phone": b})
        for i in range(5):
            # SMS to b: claim links 1, 3, 5, 7, 9; recovery codes between
            tok = e.token(b, 2 * i + 1)
            c.ok("account.claim", {"token": tok, "password": "passphrase %d" % i})
            if i < 4:
                c.ok("account.unclaim", {"phone": b})
        c.err("account.unclaim", {"phone": b}, "claim_sms_limit")
        # 24 h later it is allowed again
        e.age("UPDATE account_claim_sms SET at = at - 90000000")
        c.ok("account.unclaim", {"phone": b})


def test_daily_cap():
    with Env("invites_per_day = 5\ninvites_per_day_verified = 8") as e:
        c = e.c
        e.enable()
        for i in range(5):
            c.ok("account.invite", {"phone": "+3460010000%d" % i})
        err = c.err("account.invite", {"phone": "+34600100005"},
                    "daily_invite_limit")
        check("can be invited at" in err["message"], repr(err))
        c.ok("settings.set", {"domain_verified": True})
        for i in range(5, 8):
            c.ok("account.invite", {"phone": "+3460010000%d" % i})
        c.err("account.invite", {"phone": "+34600100008"}, "daily_invite_limit")
        r = c.ok("account.invite_many", {"people": [
            {"phone": "+34600100009"}, {"phone": "+34600100000"}]})["results"]
        check([x["error"]["code"] for x in r] ==
              ["daily_invite_limit", "already_exists"], repr(r))


def as_uid(uid, gid, path, requests):
    """Runs requests [(op, args)] on the socket as uid/gid in a forked
    child; returns the responses."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            cl = Client(path, timeout=30)
            out = [cl.request(op, args) for op, args in requests]
            os.write(wfd, json.dumps(out).encode())
        except BaseException as ex:  # report anything to the parent
            os.write(wfd, json.dumps({"child_error": repr(ex)}).encode())
            status = 1
        finally:
            os._exit(status)
    os.close(wfd)
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    out = json.loads(data)
    check(isinstance(out, list), "child: %r" % out)
    return out


def test_roles():
    if os.getuid() != 0:
        print("skip test_roles: needs root to run peers as other uids")
        return
    with Env() as e:
        c = e.c
        e.enable()
        c.ok("account.invite", {"phone": "+34600111222"})
        tok = e.token("+34600111222", 1)
        none = as_uid(NONE_UID, NONE_GID, e.d.socket, [
            ("ping", None),
            ("account.invite", {"phone": "+34600111333"}),
            ("account.login", {"phone": "+34600111222", "password": "x"}),
            ("settings.get", None)])
        check(none[0]["ok"] is True, repr(none[0]))
        for r in none[1:]:
            check(r["error"]["code"] == "permission_denied", repr(r))
        portal = as_uid(PORTAL_UID, PORTAL_GID, e.d.socket, [
            ("account.invite", {"phone": "+34600111333"}),
            ("account.unclaim", {"phone": "+34600111222"}),
            ("settings.set", {"phone_profiles": False}),
            ("account.claim", {"token": tok, "password": "portal passphrase"}),
            ("account.login", {"phone": "+34600111222",
                               "password": "portal passphrase"})])
        for r in portal[:3]:
            check(r["error"]["code"] == "permission_denied", repr(r))
        check(portal[3]["ok"] and portal[3]["result"]["account"]["state"] ==
              "active", repr(portal[3]))
        check(portal[4]["ok"], repr(portal[4]))
        # the audit names the portal's uid
        db = e.d.db()
        try:
            uids = {r[0] for r in db.execute(
                "SELECT uid FROM audit WHERE op = 'account.claim'")}
        finally:
            db.close()
        check(uids == {PORTAL_UID}, repr(uids))


def test_concurrent_invites():
    """100 clients at once over 60 numbers with a cap of 50: exactly 50
    accounts, no number twice."""
    with Env("invites_per_day = 50") as e:
        e.enable()
        n = 100
        barrier = threading.Barrier(n)
        results = [None] * n
        clients = [e.d.client() for _ in range(n)]

        def worker(i):
            barrier.wait(30)
            results[i] = clients[i].request(
                "account.invite", {"phone": "+346002%05d" % (i % 60)}, 60)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for cl in clients:
            cl.close()
        check(all(results), "a client got no answer")
        okd = [r["result"]["account"]["phone"] for r in results if r["ok"]]
        codes = {r["error"]["code"] for r in results if not r["ok"]}
        check(len(okd) == 50, "%d invites succeeded, the cap is 50" % len(okd))
        check(len(set(okd)) == 50, "a number was invited twice")
        check(codes <= {"already_exists", "daily_invite_limit"}, repr(codes))
        db = e.d.db()
        try:
            rows = db.execute("SELECT COUNT(*), COUNT(DISTINCT phone)"
                              " FROM accounts").fetchone()
            sms = db.execute("SELECT COUNT(*) FROM sms WHERE kind = 'invite'"
                             ).fetchone()[0]
        finally:
            db.close()
        check(rows == (50, 50), repr(rows))
        check(sms == 50, "%d invite SMS for 50 accounts" % sms)


def test_busy():
    """More password checks at once than the hasher queues: the excess is
    answered `unavailable` at once, the rest normally."""
    with Env() as e:
        clients = [e.d.client() for _ in range(2)]
        sent = []
        for k, cl in enumerate(clients):
            for i in range(60):
                rid = cl.send("account.login", {"phone": "+346010%d%04d" % (k, i),
                                                "password": "a passphrase"})
                sent.append((cl, rid))
        answers = [cl.response(rid, timeout=120) for cl, rid in sent]
        for cl in clients:
            cl.close()
        codes = [a["error"]["code"] for a in answers]
        busy = [a for a in answers if a["error"]["code"] == "unavailable"]
        check(set(codes) == {"invalid_password", "unavailable"}, repr(set(codes)))
        check(all(a["error"]["message"] == "busy, try again" for a in busy),
              repr(busy[:3]))
        check(codes.count("invalid_password") >= 64, "%d checked" %
              codes.count("invalid_password"))


def test_restart_between_invite_and_claim():
    with Env() as e:
        e.enable()
        e.c.ok("account.invite", {"phone": "+34600111222", "name": "Ana"})
        tok = e.token("+34600111222", 1)
        e.c.close()
        check(e.d.stop() == 0, "smsgwd did not stop cleanly:\n" + e.d.tail())
        e.d.start()
        e.c = e.d.client()
        check(e.c.ok("settings.get")["phone_profiles"] is True, "setting lost")
        r = e.c.ok("account.claim", {"token": tok, "password": "a passphrase"})
        check_account(r["account"], state="active", name="Ana")
        e.code("+34600111222", 2)
        e.c.ok("account.login", {"phone": "+34600111222",
                                 "password": "a passphrase"})


if __name__ == "__main__":
    run_tests([
        test_lifecycle,
        test_error_codes,
        test_login_lock,
        test_claim_sms_limit,
        test_daily_cap,
        test_roles,
        test_concurrent_invites,
        test_busy,
        test_restart_between_invite_and_claim,
    ])
