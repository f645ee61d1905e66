"""Turns the measurements of bench.py into the console table and
bench/RESULTS.md. Every number printed comes from the dict R of this run."""
import time

MIB = 1024.0


def g(R, *path):
    """R[path...] or None when a section did not run or failed."""
    for p in path:
        if not isinstance(R, dict) or p not in R or R[p] is None:
            return None
        R = R[p]
    return R


def f(x, fmt="%.2f", unit=""):
    return "—" if x is None else (fmt % x) + unit


def verdict(ok):
    return "—" if ok is None else ("PASS" if ok else "MISS")


def _cmp(x, limit, le=True):
    if x is None:
        return None
    return x <= limit if le else x >= limit


def targets(R):
    """[(target, measured text, PASS/MISS/—)]"""
    rows = []
    cpu = g(R, "zero", "cpu_ms_per_msg")
    rows.append(("CPU per message <= 0.1 ms (1 modem, zero delay, "
                 "sms.send commit + send commit)", f(cpu, "%.3f", " ms"),
                 verdict(_cmp(cpu, 0.1))))

    ev, mn = g(R, "slow", "1", "event_period_s"), g(R, "slow", "1",
                                                    "min_period_s")
    add3 = (ev - mn) * 1e3 if ev is not None and mn is not None else None
    pz, mz = g(R, "zero", "period_after_accept_s"), g(R, "min_zero",
                                                      "period_s")
    add0 = (pz - mz) * 1e3 if pz is not None and mz is not None else None
    ok = None
    if add3 is not None or add0 is not None:
        ok = all(x <= 0.2 for x in (add3, add0) if x is not None)
    rows.append(("Added time per message beyond the network delay, net of "
                 "the simulator (minimal client) <= 0.2 ms",
                 "%s at 3 s; %s at zero delay" % (f(add3, "%.2f", " ms"),
                                                  f(add0, "%.2f", " ms")),
                 verdict(ok)))

    r16 = g(R, "slow", "16", "rate")
    share = r16 / (16.0 / 3) * 100 if r16 is not None else None
    rows.append(("16 modems at 3 s >= 97 % of 16/3 msgs/s",
                 "%s msgs/s = %s" % (f(r16, "%.3f"), f(share, "%.1f", " %")),
                 verdict(_cmp(share, 97.0, le=False))))

    ticks = g(R, "idle", "ticks")
    idle = g(R, "idle")
    txt = "—"
    if idle:
        txt = ("%d ticks, %.3f ms CPU in %.0f s (%d modem commands, "
               "%d wake-ups)" % (ticks, idle["cpu_ms"], idle["window_s"],
                                 idle["modem_commands"], idle["wakeups"]))
    rows.append(("Idle: 0 % CPU between health checks, no busy polling", txt,
                 verdict(None if ticks is None else
                         ticks == 0 and idle["wakeups"] <= idle["window_s"])))

    p99 = g(R, "latency", "idle_p99_ms")
    rows.append(("First byte of AT+CMGS after sms.send answered, idle modem, "
                 "p99 <= 5 ms", "median %s, p99 %s" % (
                     f(g(R, "latency", "idle_median_ms"), "%.2f", " ms"),
                     f(p99, "%.2f", " ms")), verdict(_cmp(p99, 5.0))))

    bp = g(R, "latency", "busy_p99_ms")
    ok = None
    if bp is not None and p99 is not None:
        ok = bp <= 5.0 and bp <= p99 + 1.0
    rows.append(("Same latency p99 while 100 claims hash: does not move "
                 "(<= idle p99 + 1 ms, <= 5 ms)",
                 "%s (clean: %s)" % (f(bp, "%.2f", " ms"),
                                     f(g(R, "latency", "clean_p99_ms"),
                                       "%.2f", " ms")), verdict(ok)))

    life = g(R, "scaling", "100000", "hwm_life_kb")
    run = g(R, "scaling", "100000", "hwm_run_kb")
    anon = g(R, "scaling", "100000", "rss_anon_kb")
    rows.append(("Peak RSS <= 4 MiB, one modem, 100k SMS in the store",
                 "VmHWM %s over the process life, %s while sending "
                 "(RssAnon at the end %s)" % (
                     f(life / MIB if life else None, "%.1f", " MiB"),
                     f(run / MIB if run else None, "%.1f", " MiB"),
                     f(anon / MIB if anon else None, "%.1f", " MiB")),
                 verdict(_cmp(max(life or 0, run or 0) or None, 4096))))

    z = g(R, "zero", "rate")
    best, who = None, None
    for peer in ("gammu", "smstools"):
        r = g(R, "peers", peer, "zero", "rate")
        if r is not None and (best is None or r > best):
            best, who = r, peer
    rows.append(("Zero-delay throughput >= the fastest peer",
                 "%s msgs/s vs %s %s" % (f(z, "%.0f"), who or "no peer",
                                         f(best, "%.1f")),
                 verdict(None if best is None or z is None else z >= best)))

    b = g(R, "invites", "bulk")
    ratio = None
    if b and b.get("first_batch_cpu_ms"):
        ratio = b["last_batch_cpu_ms"] / b["first_batch_cpu_ms"]
    rows.append(("Invite cost flat as the accounts invited today grow "
                 "(bulk: last 500 vs first 500 of 10k; CPU ratio <= 1.25)",
                 "%s -> %s ms CPU/invite (x%s)" % (
                     f(g(b, "first_batch_cpu_ms"), "%.3f"),
                     f(g(b, "last_batch_cpu_ms"), "%.3f"),
                     f(ratio, "%.1f")), verdict(_cmp(ratio, 1.25))))
    flat = growth_ratio(R)
    rows.append(("Per-message cost flat from 1k to 100k SMS/accounts "
                 "(100k/1k CPU <= 1.25)",
                 "worst ratio %s" % f(flat, "%.2f"),
                 verdict(_cmp(flat, 1.25))))
    return rows


def growth_ratio(R):
    lo, hi = g(R, "scaling", "1000"), g(R, "scaling", "100000")
    if not lo or not hi:
        return None
    return max(hi[k] / lo[k] for k in ("send_cpu_ms", "invite_cpu_ms",
                                       "accept_cpu_ms") if lo.get(k))


def added_3s(R, period):
    mn = g(R, "slow", "1", "min_period_s")
    if period is None or mn is None:
        return None
    return (period - mn) * 1e3


def peer_rows(R):
    cols = ["smsgwd", "gammu-smsd", "smstools3"]
    src = [R, g(R, "peers", "gammu"), g(R, "peers", "smstools")]
    rows = []

    def row(label, scen, keys, fmt, scale=1.0):
        """keys: the key for smsgwd, then the one for the peers."""
        vals = []
        for i, data in enumerate(src):
            v = g(data, *(scen + (keys[0] if i == 0 else keys[1],)))
            vals.append(f(v * scale if v is not None else None, fmt))
        rows.append([label] + vals)
    row("zero delay, 1 modem: msgs/s", ("zero",), ("rate", "rate"), "%.1f")
    row("zero delay: CPU ms/msg", ("zero",),
        ("cpu_ms_per_msg", "cpu_ms_per_msg"), "%.3f")
    row("zero delay: peak RSS MiB (smsgwd: while sending; peers: VmHWM of "
        "all their processes)", ("zero",), ("hwm_run_kb", "hwm_kb"), "%.1f",
        1 / MIB)
    for k in ("1", "4", "16"):
        pl = "s" if k != "1" else ""
        row("3 s, %s modem%s: msgs/s" % (k, pl), ("slow", k),
            ("rate", "rate"), "%.3f")
        row("3 s, %s modem%s: CPU ms/msg" % (k, pl), ("slow", k),
            ("cpu_ms_per_msg", "cpu_ms_per_msg"), "%.3f")
    add = [f(added_3s(R, g(R, "slow", "1", "event_period_s")), "%.2f")]
    for p in ("gammu", "smstools"):
        add.append(f(added_3s(R, g(R, "peers", p, "slow", "1",
                                   "steady_period_s")), "%.1f"))
    rows.append(["3 s, 1 modem: added ms/msg beyond the delay"] + add)
    idle = [f(g(R, "idle", "cpu_pct"), "%.3f")]
    for p in ("gammu", "smstools"):
        idle.append(f(g(R, "peers", p, "zero", "idle_cpu_pct"), "%.1f"))
    rows.append(["idle CPU % of a core (zero-delay config)"] + idle)
    ratio = ["smsgwd vs peer at zero delay", ""]
    for p in ("gammu", "smstools"):
        zr, pr = g(R, "zero", "rate"), g(R, "peers", p, "zero", "rate")
        zc = g(R, "zero", "cpu_ms_per_msg")
        pc = g(R, "peers", p, "zero", "cpu_ms_per_msg")
        if None in (zr, pr, zc, pc):
            ratio.append("—")
        else:
            ratio.append("%.1fx the msgs/s; %.1fx less CPU/msg" %
                         (zr / pr, pc / zc))
    rows.append(ratio)
    return cols, rows


def text_table(header, rows):
    w = [max(len(str(r[i])) for r in [header] + rows)
         for i in range(len(header))]
    line = "  ".join("%-*s" % (w[i], header[i]) for i in range(len(header)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join("%-*s" % (w[i], r[i]) for i in range(len(r))))
    return "\n".join(out)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def render(R, full=True):
    T = targets(R)
    cols, P = peer_rows(R)
    text = text_table(["target", "measured", "result"], T) + "\n\n" + \
        text_table(["side by side"] + cols, P)
    if R.get("errors"):
        text += "\n\nFAILED sections: " + "; ".join(
            "%s: %s" % (k, v.split("\n")[0]) for k, v in R["errors"].items())
    return text, markdown(R, T, cols, P)


def markdown(R, T, cols, P):
    m = R["machine"]
    out = []
    A = out.append
    A("# smsgw benchmark results\n")
    A("Written by `make bench` (`bench/run.sh`, `bench/bench.py`) from the "
      "measurements of one run; do not edit by hand, run it again. Raw "
      "numbers of the run: `build/release/bench.json`.\n")
    A("Run: %s, %.0f s. Machine: %s, %d cores, Linux %s, Python %s; load "
      "average %s at the start, %s at the end (the machine is shared: "
      "other work running at the same time shows up here). fdatasync of "
      "a 4 KiB page on the disk the stores live on: median %.2f ms, p99 "
      "%.2f ms (every durable commit pays one).\n" % (
          time.strftime("%Y-%m-%d %H:%M %Z"), m.get("total_s", 0), m["cpu"],
          m["cores"], m["kernel"], m["python"], m["load_start"],
          m.get("load_end", "?"), R["fsync"]["median_ms"],
          R["fsync"]["p99_ms"]))
    if R.get("errors"):
        A("**Sections that failed in this run:**\n")
        for k, v in R["errors"].items():
            A("- %s: `%s` (the full message is in bench.json)" %
              (k, v.split("\n")[0].rstrip(":")))
        A("")
    lost = R.get("ready_lost") or []
    if lost:
        A("**READY=1 never reached the bench's NOTIFY_SOCKET in %d start%s "
          "of smsgwd** (it came up and answered ping all the same): "
          "smsgwd sends a STATUS= datagram per modem state change, some "
          "before READY=1, without waiting for room, and a Unix datagram "
          "socket queues at most `net.unix.max_dgram_qlen` (%s here) "
          "unread messages, so when the reader is late READY=1 is "
          "dropped. Modems configured in those starts: %s.\n" % (
              len(lost), "s" if len(lost) > 1 else "",
              R["machine"].get("max_dgram_qlen", "?"),
              ", ".join(str(n) for n in lost)))
    A("## Targets\n")
    A(md_table(["target", "measured", "result"], T) + "\n")
    A("## Side by side with gammu-smsd and smstools3\n")
    vers = []
    for p, name in (("gammu", "gammu-smsd"), ("smstools", "smstools3")):
        P_ = g(R, "peers", p) or {}
        state = P_.get("skipped") or P_.get("error")
        vers.append("%s %s%s" % (name, P_.get("version", "?"),
                                 " (**%s**)" % state if state else ""))
    A("Same simulator (`smsgw-modemsim`), same messages (one-part GSM 7-bit "
      "texts, no status reports), same machine, same run. Peers: %s. "
      "smsgwd runs %d SMS at zero delay and %d per modem at 3 s; "
      "gammu-smsd %s and smstools3 %s at zero delay, %d per modem at "
      "3 s.\n" % ("; ".join(vers), g(R, "zero", "n") or 0,
                  R["params"]["slow_rounds"],
                  g(R, "peers", "gammu", "zero", "n") or 0,
                  g(R, "peers", "smstools", "zero", "n") or 0,
                  R["params"]["peer_rounds"]))
    A(md_table([""] + cols, P) + "\n")
    A(DETAIL_NOTES_PEERS)
    A("## smsgwd throughput\n")
    rows = []
    for label, key in (("zero delay, 1 modem", ("zero",)),
                       ("zero delay, 1 modem, status reports on",
                        ("zero_reports",)),
                       ("3 s, 1 modem", ("slow", "1")),
                       ("3 s, 4 modems", ("slow", "4")),
                       ("3 s, 16 modems", ("slow", "16"))):
        r = g(R, *key)
        if not r:
            rows.append([label] + ["—"] * 6)
            continue
        rows.append([label, "%d" % r["n"], f(r["rate"], "%.2f"),
                     f(r["accept_rate"], "%.0f"),
                     f(r["cpu_ms_per_msg"], "%.3f"),
                     f(r["sim_cpu_ms_per_msg"], "%.3f"),
                     f(r.get("hwm_run_kb", 0) / MIB, "%.1f")])
    A(md_table(["scenario", "SMS", "msgs/s (first sms.send to last +CMGS)",
                "sms.send accepted/s", "smsgwd CPU ms/msg",
                "simulator CPU ms/msg", "peak RSS MiB while sending"],
               rows) + "\n")
    zr = g(R, "zero_runs")
    if zr:
        A("Zero delay, 1 modem ran %d times; the table shows the run with "
          "the median CPU per message. All runs (msgs/s, CPU ms/msg): %s.\n"
          % (len(zr), ", ".join("%.0f, %.3f" % (r["rate"],
                                                r["cpu_ms_per_msg"])
                                for r in zr)))
    mz = g(R, "min_zero")
    s1 = g(R, "slow", "1")
    if mz:
        A("Minimal client (bench/atclient.py: AT+CMGS straight to the "
          "simulator, same PDUs): %.3f ms per message at zero delay, the "
          "simulator spending %.3f ms CPU of it. smsgwd at zero delay, once "
          "every sms.send was accepted: %s ms per message. At 3 s: minimal "
          "client %s s per message, smsgwd %s s (from sms.sent events).\n" % (
              mz["period_s"] * 1e3, mz["sim_cpu_ms_per_msg"],
              f((g(R, "zero", "period_after_accept_s") or 0) * 1e3
                if g(R, "zero", "period_after_accept_s") else None, "%.3f"),
              f(g(s1, "min_period_s"), "%.4f"),
              f(g(s1, "event_period_s"), "%.4f")))
    A("## Latency: sms.send answered -> first byte of AT+CMGS\n")
    L = g(R, "latency")
    if L:
        A(md_table(["modem", "samples", "median", "p99", "max"], [
            ["idle", L["idle_n"], f(L["idle_median_ms"], "%.2f", " ms"),
             f(L["idle_p99_ms"], "%.2f", " ms"),
             f(L["idle_max_ms"], "%.2f", " ms")],
            ["while %d claims hash (all probes)" % g(R, "claims", "n"),
             L["busy_n"], f(L["busy_median_ms"], "%.2f", " ms"),
             f(L["busy_p99_ms"], "%.2f", " ms"), ""],
            ["while claims hash, probes not queued behind a recovery SMS",
             L["clean_n"], "", f(L["clean_p99_ms"], "%.2f", " ms"), ""]]) +
          "\n")
        A("smsgwd's event-loop thread waited on the run queue %s ms per "
          "second while the claims hashed (%s ms per second during the idle "
          "probes): both cores run argon2id (`hash_threads = 2`).\n" % (
              f(L.get("loop_runq_busy_ms_per_s"), "%.1f"),
              f(L.get("loop_runq_idle_ms_per_s"), "%.2f")))
        A(DETAIL_NOTES_LATENCY)
    A("## Control plane\n")
    rows = []
    for name in ("single", "pipelined", "bulk"):
        r = g(R, "invites", name)
        if r:
            rows.append(["account.invite" if name != "bulk" else
                         "account.invite_many (500 per request)",
                         name, r["n"], f(r["rate"], "%.0f"),
                         f(r["cpu_ms_per_invite"], "%.3f")])
    for key, label in (("claims", "account.claim, argon2id interactive"),
                       ("claims_with_probes",
                        "account.claim, with latency probes")):
        r = g(R, key)
        if r:
            rows.append([label, "pipelined (32 waiting)", r["n"],
                         f(r["rate"], "%.1f"),
                         f(r["cpu_ms_per_claim"], "%.1f")])
    A(md_table(["op", "how", "n", "per second", "smsgwd CPU ms each"], rows)
      + "\n")
    A("Every invite commits the account, its audit entry and its claim SMS "
      "in one transaction before it is answered (the modem was absent, so "
      "nothing was sent meanwhile). Claims hash on the daemon's "
      "`hash_threads = 2` threads.\n")
    A("## Growth: 1k, 10k, 100k SMS and accounts in the store\n")
    rows = []
    for size in ("1000", "10000", "100000"):
        r = g(R, "scaling", size)
        if not r:
            continue
        rows.append(["%sk" % (int(size) // 1000), f(r["start_ms"], "%.0f"),
                     f(r["invite_rate"], "%.0f"),
                     f(r["invite_cpu_ms"], "%.3f"),
                     f(r["accept_rate"], "%.0f"),
                     f(r["accept_cpu_ms"], "%.3f"),
                     f(r["send_rate"], "%.0f"), f(r["send_cpu_ms"], "%.3f"),
                     f(r["hwm_life_kb"] / MIB, "%.1f"),
                     f(r["hwm_run_kb"] / MIB, "%.1f"),
                     f(r["rss_anon_kb"] / MIB, "%.1f"),
                     f(r.get("db_mb"), "%.0f")])
    A(md_table(["store", "start to READY ms", "invites/s",
                "CPU ms/invite", "sms.send/s", "CPU ms/accept",
                "backlog sent/s", "CPU ms/sent SMS", "VmHWM life MiB",
                "VmHWM sending MiB", "RssAnon MiB", "smsgw.db MB"], rows) +
      "\n")
    A("Each size: N invited accounts (each with its sent invite SMS, "
      "claim-SMS record and audit entry, a month old) and N queued "
      "sms.send SMS (the outbox backlog), cloned with Python's sqlite3 "
      "from rows smsgwd itself wrote, while it was stopped. Then, after "
      "%d invites and %d sms.send to warm up, %d invites and %d sms.send "
      "(modem absent; one request at a time, so each is one commit), and "
      "%d SMS of the backlog (after 200 to "
      "warm up) through one zero-delay modem, each in %d batches: the "
      "table shows the median batch's CPU per operation (all batches are "
      "in bench.json). The start-up time is the first start on the filled "
      "store.\n" % (
          R["params"]["scale_warmup"], R["params"]["scale_warmup"],
          R["params"]["scale_ops"], R["params"]["scale_accepts"],
          R["params"]["scale_window"], R["params"]["scale_batches"]))
    A("## Start-up and idle\n")
    I = g(R, "idle")
    if I:
        A(md_table(["what", "measured"], [
            ["exec to READY=1, new store", f(I["start_fresh_ms"], "%.1f",
                                             " ms")],
            ["exec to READY=1, existing store (median of 5; max)",
             "%s; %s" % (f(I["start_ms_median"], "%.1f", " ms"),
                         f(I["start_ms_max"], "%.1f", " ms"))],
            ["RSS, idle, one modem ready (VmRSS; anonymous part)",
             "%s; %s" % (f(I["rss_kb"] / MIB, "%.2f", " MiB"),
                         f(I["rss_anon_kb"] / MIB, "%.2f", " MiB"))],
            ["VmHWM since start", f(I["hwm_kb"] / MIB, "%.1f", " MiB")],
            ["threads", I["threads"]],
            ["CPU in %.0f s idle (schedstat; utime+stime ticks)" %
             I["window_s"], "%s; %d ticks" % (f(I["cpu_ms"], "%.3f", " ms"),
                                              I["ticks"])],
            ["wake-ups (context switches) in the window", I["wakeups"]],
            ["AT commands the modem saw in the window", I["modem_commands"]],
        ]) + "\n")
    A(METHOD)
    return "\n".join(out) + "\n"


DETAIL_NOTES_PEERS = """\
"added ms/msg beyond the delay": the mean time between two sends on one
modem at 3 s, minus the minimal client's on the same simulator in the same
run (which leaves what the gateway adds, net of the simulator's own cost).
For smsgwd it comes from `sms.sent` events stamped by the client, for the
peers from the simulator's sent log (millisecond stamps). Peak RSS sums the
peer's processes (smstools3 runs a main process and one per modem; gammu-smsd
one process per modem). Peers' "msgs/s" include their spool polling delay
before the first send (smsgwd's include accepting and committing every
sms.send).

Peer knobs (full files in `bench/peers/`): **gammu-smsd** (FILES backend,
`connection = at`, device = the simulator's pty): `LoopSleep = 0` at zero
delay, `1` at 3 s (its manual: no sleep happens while a send takes longer
than a loop round, and 0 busy-loops), `CommTimeout = 0`,
`StatusFrequency = 0`, `CheckSecurity = 0`, `CheckBattery = 0`,
`CheckSignal = 0`, `CheckNetwork = 0`, `ReceiveFrequency = 3600`,
`DeliveryReport = no`; one gammu-smsd per modem, as its manual does for
several modems; messages are renamed into its outbox as
`OUTA_<number>_<serial>.txt`. **smstools3**: `delaytime = 1`,
`delaytime_mainprocess = 1`, `sleeptime_mainprocess = 1` (whole seconds
only), `trust_outgoing = yes`, `errorsleeptime = 1`, `blocktime = 1`,
`receive_before_send = no`, `status_interval = 0`, `executable_check = no`;
per modem `incoming = no`, `check_network = 0`,
`detect_unexpected_input = no`, `detect_message_routing = no`,
`status_signal_quality = no`, `report = no`, `keep_open = yes`,
`send_delay = 0`, and `poll_faster = 1000` at zero delay (its read loop
then sleeps 0.1 ms instead of 20 ms between polls of the modem), `100` at
3 s (1 ms sleeps: 1000 would poll 30,000 times per 3 s send); one smsd with
one `[GSMn]` section per modem; messages are renamed into its outgoing
directory as `To:` files.
"""

DETAIL_NOTES_LATENCY = """\
Measured with `bench/fakemodem.py`, a Python fake modem on a pty that
answers at once and stamps, with CLOCK_MONOTONIC, the read that brings the
first byte of each AT+CMGS (the simulator's own trace has millisecond
stamps only). The client stamps the moment it has read the sms.send answer;
the difference can be slightly negative when smsgwd writes AT+CMGS before
the client has read its answer. Probes are spaced 10-30 ms apart so the
modem is idle for each. While the claims hash, smsgwd also sends each
claim's recovery SMS on the same modem, and account SMS go first: a probe
that arrives while one is on the wire waits for it, so the table also
shows the probes no other AT+CMGS came near.
"""

METHOD = """\
## How it was measured

- Every process runs here, on this machine, in this run: smsgwd
  (`build/release`), the simulators, the peers, the clients.
- CPU: the daemon's on-CPU time, summed over its threads from
  `/proc/PID/task/*/schedstat` (utime + stime without the 10 ms tick
  rounding; `/proc/PID/stat` ticks are shown for idle), before and after.
  Per message = that difference / messages, so it includes accepting
  sms.send and every durable commit (SQLite WAL, `synchronous = FULL`).
- Peak RSS: `VmHWM` from `/proc/PID/status`. "Over the process life" is
  read just before the run; "while sending" resets it
  (`/proc/PID/clear_refs` = 5) at that moment and reads it at the end.
  It counts the shared libraries' resident pages too (`RssFile`), which is
  why the anonymous part (`RssAnon`) is shown beside it. A claim or login
  hashes with argon2id, which with `password_hash = interactive` touches
  64 MiB per hashing thread, so the sections without accounts keep clear
  of it.
- Throughput: msgs/s = SMS / (first sms.send sent -> the simulator's sent
  log holds them all); sms.send is pipelined (128 in flight) on one
  connection.
- Start-up: from exec to the `READY=1` datagram on `NOTIFY_SOCKET` (a
  Python datagram socket).
- Idle: one modem ready, `health_interval = 15s`, a 10 s window that the
  simulator's command counter shows held no health check.
- Claim tokens come from the invite SMS the simulator logged (the
  `claim_url` link); claims then run against the same store.
"""
