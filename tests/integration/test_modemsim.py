"""Integration tests of smsgw-modemsim: the real binary on a real pty,
spoken to as a driver (or gammu) would.

Python stdlib only; python3-gammu and gammu(1) serve as oracles when
installed. Binaries come from $SMSGW_BUILD (default build/check).
"""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simmodem import AtPort, SimModem, SimError  # noqa: E402
from smsgwtest import check, run_tests, wait_for  # noqa: E402

# --- a small SMS codec for the test side (TS 23.040 / 23.038) -------------

GSM7 = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
            0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}
assert len(GSM7) == 128


def pack7(septets, fill=0):
    out, acc, nbits = bytearray(), 0, fill
    for s in septets:
        acc |= s << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits > 0:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack7(data, count, start_bit=0):
    out = []
    for k in range(count):
        pos = start_bit + 7 * k
        i, shift = pos // 8, pos % 8
        v = data[i] | ((data[i + 1] << 8) if i + 1 < len(data) else 0)
        out.append((v >> shift) & 0x7F)
    return out


def septets_text(septets):
    text, esc = "", False
    for s in septets:
        if esc:
            text += GSM7_EXT.get(s, "?")
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            text += GSM7[s]
    return text


def bcd(digits):
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16)
                 for i in range(0, len(digits), 2))


def submit_pdu(to, text, srr=False, concat=None, ucs2=False, mr=0):
    """SMS-SUBMIT hex (SMSC "00" prefix) and its TPDU length."""
    num = to.lstrip("+")
    first = 0x01 | (0x20 if srr else 0) | (0x40 if concat else 0)
    addr = bytes([len(num), 0x91 if to.startswith("+") else 0x81]) + bcd(num)
    udh = bytes([5, 0, 3] + list(concat)) if concat else b""
    if ucs2:
        ud = udh + text.encode("utf-16-be")
        udl, dcs = len(ud), 0x08
    else:
        septets = [GSM7.index(c) for c in text]
        fill = (7 - (len(udh) * 8) % 7) % 7 if udh else 0
        ud = udh + pack7(septets, fill)
        udl, dcs = (len(udh) * 8 + fill) // 7 + len(septets), 0x00
    tpdu = bytes([first, mr]) + addr + bytes([0, dcs, udl]) + ud
    return "00" + tpdu.hex().upper(), len(tpdu)


def read_addr(b, i):
    ndig, ton = b[i], b[i + 1]
    nbytes = (ndig + 1) // 2
    raw = b[i + 2:i + 2 + nbytes]
    if ton & 0x70 == 0x50:
        text = septets_text(unpack7(raw, ndig * 4 // 7))
    else:
        digits = "".join("%X%X" % (x & 0xF, x >> 4) for x in raw)[:ndig]
        text = ("+" if ton & 0x70 == 0x10 else "") + digits
    return text, i + 2 + nbytes


def decode_pdu(hex_pdu):
    """DELIVER or STATUS-REPORT (SMSC prefix first) -> dict."""
    b = bytes.fromhex(hex_pdu)
    i = 1 + b[0]
    first = b[i]
    i += 1
    if first & 3 == 2:
        mr = b[i]
        to, i = read_addr(b, i + 1)
        return {"type": "status", "mr": mr, "to": to, "status": b[i + 14],
                "tpdu_len": len(b) - 1 - b[0]}
    check(first & 3 == 0, "not a DELIVER: %s" % hex_pdu)
    sender, i = read_addr(b, i)
    dcs = b[i + 1]
    udl = b[i + 9]
    ud = b[i + 10:]
    concat, hdr = None, 0
    if first & 0x40:
        hdr = ud[0] + 1
        if ud[1] == 0 and ud[2] == 3:
            concat = (ud[3], ud[4], ud[5])
    if dcs & 0x0C == 0x08:
        text = ud[hdr:].decode("utf-16-be")
    else:
        fill = (7 - (hdr * 8) % 7) % 7 if hdr else 0
        skip = (hdr * 8 + fill) // 7
        text = septets_text(unpack7(ud, udl - skip, hdr * 8 + fill))
    return {"type": "deliver", "from": sender, "text": text,
            "concat": concat, "tpdu_len": len(b) - 1 - b[0]}


def gammu_module():
    try:
        import gammu  # noqa: F401
        return gammu
    except ImportError:
        return None


# --- fixtures --------------------------------------------------------------

@contextlib.contextmanager
def simulator(*args):
    """A started simulator; on a clean exit of the block it must also exit
    cleanly on SIGTERM (status 0: no sanitizer report, no leak)."""
    sim = SimModem(list(args)).start()
    try:
        yield sim
        rc = sim.stop()
        check(rc == 0, "simulator exited %s:\n%s" % (rc, sim.stderr()[-3000:]))
        check(not os.path.lexists(sim.link), "link left behind on exit")
        check(not os.path.exists(sim.control_path), "socket left behind")
    finally:
        sim.cleanup()


def port_of(sim):
    p = AtPort(sim.link)
    p.sync()
    return p


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


# --- tests -------------------------------------------------------------------

def test_echo_and_basic_commands():
    with simulator() as sim, AtPort(sim.link) as p:
        r = p.cmd("AT")
        check(r.final == "OK" and r.raw.startswith(b"AT\r"),
              "echo is on after boot: %r" % r.raw)
        r = p.cmd("ati")
        check(r.lines == ["ati", "smsgw", "modemsim", "Revision: 1.0.0"],
              "ATI (lower case, echoed as typed): %r" % r.lines)
        r = p.cmd("ATE0")
        check(r.raw == b"ATE0\r\r\nOK\r\n", "ATE0 itself is echoed: %r" % r.raw)
        r = p.cmd("AT+CGMI")
        check(r.raw == b"\r\nsmsgw\r\n\r\nOK\r\n", "no echo after ATE0: %r" % r.raw)
        for cmd, want in [("AT+CGMM", "modemsim"), ("AT+CGMR", "1.0.0"),
                          ("AT+CGSN", "490154203237518"),
                          ("AT+CIMI", "001010123456789"),
                          ("AT+CSQ", "+CSQ: 20,99"),
                          ("AT+COPS?", '+COPS: 0,0,"SIMNET"'),
                          ("AT+CPIN?", "+CPIN: READY"),
                          ("AT+CFUN?", "+CFUN: 1"),
                          ("AT+CSCA?", '+CSCA: "+15550100000",145'),
                          ("AT+CPMS?", '+CPMS: "SM",0,30,"SM",0,30,"SM",0,30')]:
            r = p.cmd(cmd)
            check(r.final == "OK" and r.lines == [want], "%s: %r" % (cmd, r))
        check(p.cmd("AT+NOSUCH").final == "ERROR", "unknown command -> ERROR")
        check(p.cmd("AT+CREG=2").final == "OK", "CREG=2")
        r = p.cmd("AT+CREG?")
        check(r.lines == ['+CREG: 2,1,"00A1","1B2C"'], "CREG? with n=2: %r" % r)
        r = p.cmd("AT+CMGF=0;+CNMI=2,1,0,1,0;+CNMI?")
        check(r.lines == ["+CNMI: 2,1,0,1,0"] and r.final == "OK",
              "several commands on one line: %r" % r)
        r = p.cmd("AT+CMGF=1;+NOSUCH;+CMGF=0")
        check(r.final == "ERROR", "an error ends the line: %r" % r)
        check(p.cmd("AT+CMGF?").lines == ["+CMGF: 1"],
              "commands after the failing one did not run")
        p.write("A/")
        r = p.lines_until_final()
        check(r.lines == ["+CMGF: 1"], "A/ repeats the last line: %r" % r)
        r = p.cmd("AT+COPS=3,2;+COPS?")
        check(r.lines == ['+COPS: 0,2,"00101"'], "numeric operator: %r" % r)
        r = p.cmd("AT+CEREG=2;+CEREG?;+CGREG=1;+CGREG?")
        check(r.lines == ['+CEREG: 2,1,"00A1","01A2B3C",7', "+CGREG: 1,1"],
              "CEREG / CGREG: %r" % r)
        r = p.cmd("AT+CMMS=1;+CMMS?;+CSMS=1")
        check(r.lines == ["+CMMS: 1", "+CSMS: 1,1,1"], "CMMS, CSMS: %r" % r)
        r = p.cmd('AT+CSCS="UCS2";+CSCS?;+CSCA?')
        check(r.lines == ['+CSCS: "UCS2"', '+CSCA: "002B0031003500350035003000'
                          '3100300030003000300030",145'],
              "strings follow +CSCS: %r" % r)
        r = p.cmd('AT+CSCS="HEX";+CSCA="2B3334363030303030303030";+CSCA?')
        check(r.lines == ['+CSCA: "2B3334363030303030303030",145'],
              "HEX in both directions: %r" % r)
        r = p.cmd('AT+CSCS="IRA";+CSCA?')
        check(r.lines == ['+CSCA: "+34600000000",145'], "SMSC set: %r" % r)
        for reset in ("ATZ", "AT&F"):
            p.cmd("ATE0;+CMEE=2")
            r = p.cmd(reset)
            check(r.raw == b"\r\nOK\r\n", "%s answered without echo" % reset)
            r = p.cmd("AT+CMEE?")
            check(r.lines == ["AT+CMEE?", "+CMEE: 0"],
                  "%s restores echo and CMEE: %r" % (reset, r))


def test_cmee_modes():
    with simulator() as sim:
        p = port_of(sim)
        check(p.cmd("AT+CMGR=99").final == "ERROR", "CMEE=0: plain ERROR")
        check(p.cmd("AT+CPIN=\"1111\"").final == "ERROR", "CMEE=0: CME too")
        p.cmd("AT+CMEE=1")
        check(p.cmd("AT+CMGR=99").final == "+CMS ERROR: 321", "CMEE=1 CMS")
        check(p.cmd("AT+CPIN=\"1111\"").final == "+CME ERROR: 3", "CMEE=1 CME")
        p.cmd("AT+CMEE=2")
        r = p.cmd("AT+CMGR=99")
        check(r.final == "+CMS ERROR: invalid memory index", "CMEE=2: %r" % r)
        r = p.cmd("AT+CPIN=\"1111\"")
        check(r.final == "+CME ERROR: operation not allowed", "CMEE=2: %r" % r)
        check(p.cmd("AT+CMEE?").lines == ["+CMEE: 2"], "CMEE? reads back")
        check(p.cmd("AT+CMEE=3").final == "+CME ERROR: incorrect parameters",
              "CMEE=3 is out of range")
        p.close()


def test_cmgs_lengths_mr_and_log():
    with simulator() as sim:
        p = port_of(sim)
        p.cmd("AT+CMEE=1")
        mrs = []
        for i in range(3):
            pdu, n = submit_pdu("+34600111222", "hello %d" % i)
            r = p.send_pdu(pdu, n)
            check(r.final == "OK" and r.lines[-1].startswith("+CMGS: "),
                  "send %d: %r" % (i, r))
            mrs.append(int(r.lines[-1].split(": ")[1]))
        check(mrs == [mrs[0], mrs[0] + 1, mrs[0] + 2],
              "message references increment: %r" % mrs)
        pdu, n = submit_pdu("+34600111222", "length mismatch")
        r = p.send_pdu(pdu, n, length=n + 1)
        check(r.final == "+CMS ERROR: 304", "TPDU length mismatch: %r" % r)
        r = p.send_pdu("00110G", 2, length=7)
        check(r.final == "+CMS ERROR: 304", "bad hex: %r" % r)
        r = p.send_pdu(pdu[:-4], n - 2)
        check(r.final == "+CMS ERROR: 304", "truncated user data: %r" % r)
        # A DELIVER is not something a phone can send.
        deliver = "000400" + "0B914306101122F2" + "0000" + "00" * 7 + "00"
        r = p.send_pdu(deliver, len(deliver) // 2 - 1)
        check(r.final == "+CMS ERROR: 304", "DELIVER refused: %r" % r)
        p.write("AT+CMGS=%d\r" % n)
        p.read_until(b"> ")
        p.write(pdu[:10] + "\x1b")
        check(p.lines_until_final().final == "OK", "ESC cancels with OK")
        check(p.cmd("AT+CMGS=5").final == "+CMS ERROR: 304",
              "a length below any SUBMIT is refused before the prompt")
        p.cmd("AT+CMGF=1")
        check(p.cmd("AT+CMGS=20").final == "+CMS ERROR: 302",
              "text mode sending is not supported")
        log = sim.wait_sent(3)
        time.sleep(0.1)
        log = sim.sent_log()
        check(len(log) == 3, "only the 3 good sends are logged: %r" % log)
        for i, e in enumerate(log):
            check(e["to"] == "+34600111222" and e["text"] == "hello %d" % i and
                  e["mr"] == mrs[i] and e["encoding"] == "gsm7" and
                  e["udh"] is None and e["modem"] == "sim" and
                  e["pdu"] == submit_pdu("+34600111222", "hello %d" % i)[0],
                  "log entry %d: %r" % (i, e))
            check(e["time"].endswith("Z") and "T" in e["time"], "ISO time")
        st = sim.stats()
        check(st["sent"] == 3 and st["send_errors"] == 4,
              "stats count sends and errors: %r" % st)
        p.close()


def test_mr_wraps_mod_256():
    with simulator() as sim:
        p = port_of(sim)
        pdu, n = submit_pdu("+34600111222", "x")
        last = None
        for i in range(257):
            r = p.send_pdu(pdu, n)
            mr = int(r.lines[-1].split(": ")[1])
            check(last is None or mr == (last + 1) % 256,
                  "mr %d follows %r" % (mr, last))
            last = mr
        check(len(sim.wait_sent(257)) == 257, "257 lines logged")
        p.close()


def test_multipart_log_decoded():
    with simulator() as sim:
        p = port_of(sim)
        parts = [("Hello from part one, ", False), ("and part two ünïcode", True)]
        for seq, (text, ucs2) in enumerate(parts, 1):
            pdu, n = submit_pdu("+34600111222", text, concat=(42, 2, seq),
                                ucs2=ucs2)
            check(p.send_pdu(pdu, n).final == "OK", "part %d sent" % seq)
        log = sim.wait_sent(2)
        for seq, (text, ucs2) in enumerate(parts, 1):
            e = log[seq - 1]
            check(e["text"] == text, "part %d text: %r" % (seq, e))
            check(e["udh"] == {"ref": 42, "total": 2, "seq": seq},
                  "part %d udh: %r" % (seq, e["udh"]))
            check(e["encoding"] == ("ucs2" if ucs2 else "gsm7"), "encoding")
        p.close()


def test_status_reports():
    with simulator("--report-delay", "0.1", "--undeliverable",
                   "+34600555555") as sim:
        p = port_of(sim)
        p.cmd("AT+CNMI=2,1,0,1,0")
        pdu, n = submit_pdu("+34600111222", "report me", srr=True)
        r = p.send_pdu(pdu, n)
        mr = int(r.lines[-1].split(": ")[1])
        p.read_until(b"+CDS: ", 5)
        head = p.read_until(b"\r\n")
        hexline = p.read_until(b"\r\n").strip().decode()
        rep = decode_pdu(hexline)
        check(rep["type"] == "status" and rep["mr"] == mr and
              rep["status"] == 0 and rep["to"] == "+34600111222",
              "status report: %r" % rep)
        check(int(head.strip()) == rep["tpdu_len"], "+CDS length is the TPDU")
        check(p.cmd("AT+CNMA").final == "OK", "+CDS acknowledged")
        check(p.cmd("AT+CMEE=1;+CNMA").final == "+CMS ERROR: 340",
              "nothing left to acknowledge")
        # Undeliverable recipient, reports stored (ds=2): +CDSI and CMGR.
        p.cmd("AT+CNMI=2,1,0,2,0")
        pdu, n = submit_pdu("+34600555555", "nobody home", srr=True)
        mr = int(p.send_pdu(pdu, n).lines[-1].split(": ")[1])
        p.read_until(b'+CDSI: "SM",', 5)
        idx = int(p.read_until(b"\r\n").strip())
        r = p.cmd("AT+CMGR=%d" % idx)
        rep = decode_pdu(r.lines[1])
        check(rep["status"] == 0x41 and rep["mr"] == mr,
              "permanent failure report: %r" % rep)
        # Without SRR there is no report.
        pdu, n = submit_pdu("+34600111222", "no report")
        p.send_pdu(pdu, n)
        extra = p.read_for(0.4)
        check(b"+CDS" not in extra, "no report without SRR: %r" % extra)
        check(sim.stats()["reports"] == 2, "stats count reports")
        p.close()


def test_inbound_stored_cmti_cmgr_cmgd():
    with simulator() as sim:
        p = port_of(sim)
        p.cmd("AT+CMEE=1")
        check(sim.inject("+34600111222", "Hola, qué tal?") == 1, "one part")
        p.read_until(b'+CMTI: "SM",1\r\n', 5)
        r = p.cmd("AT+CMGR=1")
        check(r.lines[0].startswith("+CMGR: 0,,"), "unread first: %r" % r)
        sms = decode_pdu(r.lines[1])
        check(sms["from"] == "+34600111222" and sms["text"] == "Hola, qué tal?",
              "decoded inbound: %r" % sms)
        check(int(r.lines[0].split(",")[-1]) == sms["tpdu_len"],
              "+CMGR length is the TPDU length")
        g = gammu_module()
        if g:
            d = g.DecodePDU(bytes.fromhex(r.lines[1]))
            check(d["Number"] == "+34600111222" and d["Text"] == "Hola, qué tal?",
                  "python-gammu agrees: %r" % d)
        check(p.cmd("AT+CMGR=1").lines[0].startswith("+CMGR: 1,,"),
              "read after the first CMGR")
        check(p.cmd("AT+CMGD=1").final == "OK", "deleted")
        check(p.cmd("AT+CMGR=1").final == "+CMS ERROR: 321", "slot empty")
        check(p.cmd("AT+CMGD=31").final == "+CMS ERROR: 321", "out of range")
        # Multipart inbound: one +CMTI per part, concat UDH in each.
        text = "x" * 150 + " and the rest of a long message"
        n = sim.inject("+34600111333", text)
        check(n == 2, "long text is 2 parts: %d" % n)
        p.read_until(b'+CMTI: "SM",1\r\n', 5)
        p.read_until(b'+CMTI: "SM",2\r\n', 5)
        got = [decode_pdu(p.cmd("AT+CMGR=%d" % i).lines[1]) for i in (1, 2)]
        check(got[0]["concat"][1:] == (2, 1) and got[1]["concat"][1:] == (2, 2)
              and got[0]["concat"][0] == got[1]["concat"][0],
              "concat UDH: %r" % got)
        check(got[0]["text"] + got[1]["text"] == text, "parts join up")
        check(sim.stats()["received"] == 3, "stats count inbound parts")
        p.close()


def test_cmgl_listing_and_noise():
    with simulator("--noise") as sim:
        p = port_of(sim)
        p.cmd("AT+CNMI=2,0,0,0,0")  # stored silently
        for i in range(3):
            sim.inject("+3460011100%d" % i, "message %d" % i)
        wait_for(lambda: sim.stats()["stored"] == 3, 5, "3 stored")
        check(p.cmd("AT+CMGR=2").final == "OK", "read one")
        r = p.cmd("AT+CMGL=4")
        entries = []
        noise = []
        lines = r.lines
        i = 0
        while i < len(lines):
            if lines[i].startswith("+CMGL: "):
                entries.append((lines[i], lines[i + 1]))
                i += 2
            else:
                noise.append(lines[i])
                i += 1
        check(len(entries) == 3 and r.final == "OK", "3 entries: %r" % r)
        check(len(noise) >= 2, "--noise put URCs between entries: %r" % lines)
        check(all(not n.startswith("+CMGL") for n in noise), "noise is noise")
        stats = [int(h.split(",")[1]) for h, _ in entries]
        check(stats == [0, 1, 0], "stat per entry: %r" % stats)
        for k, (h, pdu) in enumerate(entries):
            sms = decode_pdu(pdu)
            check(h.startswith("+CMGL: %d," % (k + 1)) and
                  sms["text"] == "message %d" % k, "entry %d: %r" % (k, h))
        r = p.cmd("AT+CMGL=0")
        check(not any(l.startswith("+CMGL") for l in r.lines),
              "listing marked everything read: %r" % r)
        check(p.cmd("AT+CMGD=1,4").final == "OK" and sim.stats()["stored"] == 0,
              "CMGD flag 4 empties the storage")
        p.close()


def test_storage_full_network_retries():
    with simulator("--storage-size", "2") as sim:
        p = port_of(sim)
        for i in range(3):
            sim.inject("+34600111222", "fill %d" % i)
        p.read_until(b'+CMTI: "SM",2\r\n', 5)
        st = sim.stats()
        check(st["stored"] == 2 and st["waiting"] == 1 and
              st["storage_full"] >= 1, "third waits in the network: %r" % st)
        r = p.cmd("AT+CPMS?")
        check(r.lines == ['+CPMS: "SM",2,2,"SM",2,2,"SM",2,2'], "full: %r" % r)
        store = sim.storage()
        check([m["index"] for m in store] == [1, 2] and
              decode_pdu(store[0]["pdu"])["text"] == "fill 0",
              "control storage op: %r" % store)
        check(p.cmd("AT+CMGD=1").final == "OK", "make room")
        p.read_until(b'+CMTI: "SM",1\r\n', 5)
        check(decode_pdu(p.cmd("AT+CMGR=1").lines[1])["text"] == "fill 2",
              "the network retried into the freed slot")
        p.close()


def test_direct_delivery_cnma():
    with simulator("--cnma-timeout", "1.5") as sim:
        p = port_of(sim)
        p.cmd("AT+CNMI=2,2,0,0,0")
        sim.inject("+34600111222", "direct one")
        sim.inject("+34600111222", "direct two")
        p.read_until(b"+CMT: ,", 5)
        n = int(p.read_until(b"\r\n").strip())
        sms = decode_pdu(p.read_until(b"\r\n").strip().decode())
        check(sms["text"] == "direct one" and sms["tpdu_len"] == n, "+CMT")
        more = p.read_for(0.2)
        check(b"+CMT" not in more, "the next waits for +CNMA: %r" % more)
        check(p.cmd("AT+CNMA").final == "OK", "acknowledged")
        p.read_until(b"+CMT: ,", 5)
        p.read_until(b"\r\n")
        sms = decode_pdu(p.read_until(b"\r\n").strip().decode())
        check(sms["text"] == "direct two", "second after the ack")
        # No ack: the TA turns routing off and the SMS lands in storage.
        wait_for(lambda: sim.stats()["cnma_timeouts"] == 1, 5, "CNMA timeout")
        check(p.cmd("AT+CNMI?").lines == ["+CNMI: 2,0,0,0,0"],
              "routing disabled after the missing +CNMA")
        wait_for(lambda: sim.stats()["stored"] == 1, 5, "stored instead")
        p.close()


def test_pin_flow():
    with simulator("--pin", "1234", "--puk", "87654321", "--boot-urcs") as sim:
        p = port_of(sim)
        p.cmd("AT+CMEE=1")
        check(p.cmd("AT+CPIN?").lines == ["+CPIN: SIM PIN"], "PIN wanted")
        check(p.cmd("AT+CIMI").final == "+CME ERROR: 11", "CIMI needs the SIM")
        pdu, n = submit_pdu("+34600111222", "too early")
        check(p.cmd("AT+CMGS=%d" % n).final == "+CMS ERROR: 311",
              "CMGS needs the SIM")
        check(p.cmd("AT+CREG?").lines == ["+CREG: 0,0"], "not registered")
        check(p.cmd('AT+CPIN="0000"').final == "+CME ERROR: 16", "wrong PIN")
        check(p.cmd('AT+CPIN="1234"').final == "OK", "right PIN")
        p.read_until(b"\r\n+CPIN: READY\r\n", 5)  # the URC after the OK
        check(p.cmd("AT+CPIN?").lines == ["+CPIN: READY"], "ready")
        check(p.cmd("AT+CREG?").lines == ["+CREG: 0,1"], "registered")
        # A reset asks for the PIN again; 3 wrong tries block the SIM.
        check(p.cmd("AT+CFUN=1,1").final == "OK", "reset")
        p.read_until(b"+CPIN: SIM PIN\r\n", 5)
        p.sync()
        p.cmd("AT+CMEE=1")
        for _ in range(3):
            check(p.cmd('AT+CPIN="9999"').final == "+CME ERROR: 16", "wrong")
        p.read_until(b"\r\n+CPIN: SIM PUK\r\n", 5)  # URC: SIM blocked
        check(p.cmd("AT+CPIN?").lines == ["+CPIN: SIM PUK"], "PUK now")
        check(p.cmd("AT+CIMI").final == "+CME ERROR: 12", "PUK required")
        check(p.cmd('AT+CPIN="1234"').final == "+CME ERROR: 50",
              "the PIN alone no longer works (PUK and new PIN wanted)")
        check(p.cmd('AT+CPIN="11111111","4321"').final == "+CME ERROR: 16",
              "wrong PUK")
        check(p.cmd('AT+CPIN="87654321","4321"').final == "OK", "PUK + new PIN")
        p.read_until(b"\r\n+CPIN: READY\r\n", 5)
        check(p.cmd("AT+CPIN?").lines == ["+CPIN: READY"], "ready again")
        p.close()
    with simulator("--pin", "1234", "-v") as sim:
        p = port_of(sim)
        p.cmd('AT+CPIN="1234"')
        p.close()
        sim.stop()
        check("1234" not in sim.stderr() and "<redacted>" in sim.stderr(),
              "the PIN never reaches the trace")


def test_hang_after():
    with simulator("--hang-after", "3") as sim:
        p = AtPort(sim.link)
        for i in range(3):
            check(p.cmd("AT").final == "OK", "command %d answered" % (i + 1))
        p.write("AT\r")
        check(p.read_for(0.5) == b"", "4th command: silence, not even echo")
        p.write("AT+CFUN=1,1\r")
        check(p.read_for(0.8) == b"", "a reset does not help a hung modem")
        sim.inject("+34600111222", "while hung")
        check(p.read_for(0.3) == b"", "no URC while hung")
        st = sim.stats()
        check(st["hung"] and st["bytes_in"] == 4 * len("AT\r") +
              len("AT+CFUN=1,1\r"),
              "still reading: %r" % st)
        sim.ok("unhang")
        p.read_until(b'+CMTI: "SM",1', 5)
        check(p.cmd("AT").final == "OK", "answers after unhang")
        sim.ok("hang")
        p.write("AT\r")
        check(p.read_for(0.3) == b"", "control hang")
        sim.ok("unhang")
        p.read_for(0.1)
        check(p.cmd("AT").final == "OK", "unhang again")
        p.close()


def test_unplug_replug_at_link():
    with simulator("--unplug-after", "2", "--replug-after", "0.3") as sim:
        p = AtPort(sim.link)
        check(p.cmd("AT").final == "OK" and p.cmd("AT").final == "OK", "2 OK")
        p.write("AT\r")
        try:
            got = p.read_for(1.0)
            closed = False
        except OSError:
            closed = True
        check(closed, "the pty went away on the 3rd command (read %r)" %
              (None if closed else got))
        p.close()
        wait_for(lambda: len(sim.pty_lines()) == 2, 5, "replug")
        check(os.readlink(sim.link) == sim.pty_lines()[1],
              "the new pty is at the link and printed on stdout")
        p = AtPort(sim.link)
        check(p.cmd("AT").raw.startswith(b"AT\r"), "fresh boot: echo on")
        check(p.cmd("AT").final == "OK", "no second unplug")
        check(sim.stats()["boots"] == 2, "booted twice")
        p.close()
        # The same through the control socket, with an inbound SMS that
        # arrives while unplugged and is delivered after the replug.
        sim.ok("unplug")
        wait_for(lambda: not os.path.lexists(sim.link), 5, "link removed")
        check(sim.control("unplug")["ok"] is False, "already unplugged")
        sim.inject("+34600111222", "while away")
        check(sim.stats()["waiting"] == 1, "held by the network")
        r = sim.ok("replug")
        check(r["pty"] == os.readlink(sim.link), "replug reports the pty")
        wait_for(lambda: sim.stats()["stored"] == 1, 5, "delivered after replug")


def test_client_reopen_and_idle_cpu():
    with simulator() as sim:
        for i in range(3):
            p = AtPort(sim.link)
            check(p.cmd("AT").final == "OK", "open #%d answers" % i)
            p.close()
        t0 = cpu_ticks(sim.proc.pid)
        time.sleep(1.5)
        used = cpu_ticks(sim.proc.pid) - t0
        check(used <= 2, "idle with no client open: %d ticks in 1.5 s" % used)
        p = AtPort(sim.link)
        t0 = cpu_ticks(sim.proc.pid)
        time.sleep(1.0)
        used = cpu_ticks(sim.proc.pid) - t0
        check(used <= 2, "idle with a client open: %d ticks" % used)
        check(p.cmd("AT").final == "OK", "still answers")
        p.close()


def test_permanent_and_transient_failures():
    with simulator("--permanent-fail", "+34600999999") as sim:
        p = port_of(sim)
        p.cmd("AT+CMEE=1")
        pdu, n = submit_pdu("+34600999999", "rejected")
        check(p.send_pdu(pdu, n).final == "+CMS ERROR: 21", "permanent")
        pdu, n = submit_pdu("+34600111222", "fine")
        check(p.send_pdu(pdu, n).final == "OK", "others still go")
        log = sim.wait_sent(1)
        check([e["to"] for e in log] == ["+34600111222"], "only the good one")
        check(sim.stats()["failed_permanent"] == 1, "counted")
        sim.ok("set", fail_rate=1)
        r = p.send_pdu(pdu, n)
        check(r.final in ("+CMS ERROR: 332", "+CMS ERROR: 38"),
              "fail_rate 1 always fails transiently: %r" % r)
        sim.ok("set", fail_rate=0, permanent_fail=[])
        pdu, n = submit_pdu("+34600999999", "now fine")
        check(p.send_pdu(pdu, n).final == "OK", "list replaced by set")
        p.close()
    with simulator("--fail-rate", "0.5", "--seed", "7") as sim:
        p = port_of(sim)
        pdu, n = submit_pdu("+34600111222", "dice")
        finals = [p.send_pdu(pdu, n).final for _ in range(40)]
        ok = finals.count("OK")
        check(5 < ok < 35, "about half fail: %r" % finals)
        check(set(finals) <= {"OK", "ERROR"}, "CMEE=0 hides the codes")
        check(sim.stats()["failed_transient"] == 40 - ok, "counted")
        p.close()


def test_send_delay_and_busy_input():
    with simulator("--send-delay", "0.4") as sim:
        p = port_of(sim)
        pdu, n = submit_pdu("+34600111222", "slow network")
        p.write("AT+CMGS=%d\r" % n)
        p.read_until(b"> ")
        t0 = time.monotonic()
        p.write(pdu + "\x1a" + "AT+CSQ\r")  # typed while the modem is busy
        r = p.lines_until_final(5)
        took = time.monotonic() - t0
        check(r.final == "OK" and r.lines[-1].startswith("+CMGS:"), "%r" % r)
        check(0.35 <= took < 2.0, "answered after the delay: %.2fs" % took)
        r = p.lines_until_final(5)
        check(r.lines == ["+CSQ: 20,99"], "input held meanwhile: %r" % r)
        p.close()


def test_no_network_then_registration():
    with simulator("--no-network", "0.8") as sim:
        p = port_of(sim)
        p.cmd("AT+CMEE=1;+CREG=1")
        check(p.cmd("AT+CREG?").lines == ["+CREG: 1,2"], "searching")
        check(p.cmd("AT+COPS?").lines == ["+COPS: 0"], "no operator yet")
        pdu, n = submit_pdu("+34600111222", "no net")
        check(p.send_pdu(pdu, n).final == "+CMS ERROR: 331", "no service")
        p.read_until(b"\r\n+CREG: 1\r\n", 5)
        check(p.cmd("AT+CREG?").lines == ["+CREG: 1,1"], "registered")
        sim.ok("network", registered=False)
        p.read_until(b"\r\n+CREG: 2\r\n", 5)
        sim.ok("network", registered=True)
        p.read_until(b"\r\n+CREG: 1\r\n", 5)
        check(p.send_pdu(pdu, n).final == "OK", "sends once registered")
        p.close()


def test_cfun_reset():
    with simulator("--boot-urcs", "--vendor", "simcom", "--reset-time",
                   "0.3") as sim:
        p = AtPort(sim.link)
        boot = p.read_until(b"SMS Ready\r\n", 5)
        for urc in (b"RDY", b"+CFUN: 1", b"+CPIN: READY", b"Call Ready"):
            check(urc in boot, "SIM800 boot burst has %r: %r" % (urc, boot))
        p.sync()
        p.cmd("AT+CMEE=2")
        check(p.cmd("ATI").lines == ["SIM800 R14.18"], "SIMCom ATI")
        r = p.cmd("AT+CFUN=1,1")
        check(r.final == "OK", "reset acknowledged")
        p.write("AT\r")
        check(p.read_for(0.15) == b"", "silent while rebooting")
        boot = p.read_until(b"SMS Ready\r\n", 5)
        check(b"RDY" in boot, "boot URCs again")
        r = p.cmd("AT")
        check(r.raw.startswith(b"AT\r"), "echo back on after reset: %r" % r.raw)
        check(p.cmd("AT+CMEE?").lines == ["AT+CMEE?", "+CMEE: 0"],
              "CMEE back to 0")
        check(sim.stats()["resets"] == 1, "counted")
        p.close()


def test_vendors():
    want = {"generic": ("smsgw", "modemsim"), "simcom": ("SIMCOM_Ltd",
            "SIMCOM_SIM800L"), "quectel": ("Quectel", "EC25"),
            "huawei": ("huawei", "E3372")}
    for vendor, (cgmi, cgmm) in want.items():
        with simulator("--vendor", vendor) as sim:
            p = port_of(sim)
            check(p.cmd("AT+CGMI").lines == [cgmi], "%s CGMI" % vendor)
            check(p.cmd("AT+CGMM").lines == [cgmm], "%s CGMM" % vendor)
            curc = p.cmd("AT^CURC=0").final
            check(curc == ("OK" if vendor == "huawei" else "ERROR"),
                  "^CURC only on Huawei (%s: %s)" % (vendor, curc))
            p.close()
    with simulator("--vendor", "huawei", "--rssi-interval", "0.2") as sim:
        p = port_of(sim)
        check(b"^RSSI: " in p.read_for(0.5), "periodic ^RSSI")
        r = p.cmd("ATI")
        check("IMEI: 490154203237518" in r.lines, "Huawei ATI: %r" % r)
        p.cmd("AT^CURC=0")
        p.read_for(0.05)
        check(b"^RSSI" not in p.read_for(0.5), "^CURC=0 silences it")
        p.close()
    with simulator("--vendor", "huawei", "--noise") as sim:
        p = port_of(sim)
        r = p.cmd("AT+CSQ")
        check(r.lines[0] == "+CSQ: 20,99" and len(r.lines) == 2 and
              r.lines[1].startswith("^"), "Huawei noise before OK: %r" % r)
        p.close()


def test_inbound_file():
    d = tempfile.mkdtemp(prefix="smsgw-inb-")
    path = os.path.join(d, "inbound.jsonl")
    with open(path, "w") as f:
        f.write('# a comment\n')
        f.write('{"at": 0.3, "from": "+34600111222", "text": "second"}\n')
        f.write('{"at": 0.1, "from": "+34600111333", "text": "first"}\n')
    try:
        with simulator("--inbound", path) as sim:
            p = AtPort(sim.link)
            p.read_until(b'+CMTI: "SM",2\r\n', 5)
            p.sync()
            got = [decode_pdu(p.cmd("AT+CMGR=%d" % i).lines[1])
                   for i in (1, 2)]
            check([(g["from"], g["text"]) for g in got] ==
                  [("+34600111333", "first"), ("+34600111222", "second")],
                  "delivered in time order: %r" % got)
            p.close()
        with open(path, "a") as f:
            f.write('{"at": "soon"}\n')
        sim = SimModem(["--inbound", path])
        with check_raises(SimError):
            sim.start()
        check("inbound.jsonl:4:" in sim.stderr(), "file:line in the error: %r"
              % sim.stderr())
        sim.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def check_raises(exc):
    try:
        yield
    except exc:
        return
    raise AssertionError("%s not raised" % exc.__name__)


def test_link_safety_and_control_errors():
    d = tempfile.mkdtemp(prefix="smsgw-link-")
    try:
        link = os.path.join(d, "modem")
        os.symlink("/dev/pts/does-not-exist", link)
        sim = SimModem(["--link", link])  # later --link wins
        sim.start()
        check(os.readlink(link) == sim.pty, "stale link replaced")
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(sim.control_path)
        c.sendall(b'not json\n{"op": "nope", "id": 9}\n{"op": "inject"}\n')
        buf = b""
        for _ in range(100):
            if buf.count(b"\n") >= 3:
                break
            buf += c.recv(4096)
        r = [json.loads(l) for l in buf.split(b"\n")[:3]]
        check(r[0]["ok"] is False and r[1] == {"id": 9, "ok": False,
              "error": "unknown op"} and r[2]["ok"] is False,
              "errors answered per line: %r" % r)
        c.close()
        check(sim.stop() == 0, "clean exit")
        check(not os.path.lexists(link), "link removed on exit")
        sim.cleanup()
        with open(link, "w") as f:
            f.write("precious")
        sim = SimModem(["--link", link])
        with check_raises(SimError):
            sim.start()
        check(open(link).read() == "precious", "a regular file is not replaced")
        sim.cleanup()
        rc = subprocess.run([sim.binary, "--fail-rate", "2"],
                            capture_output=True, timeout=10).returncode
        check(rc == 2, "bad option value -> exit 2")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def gammu_rc(sim):
    path = os.path.join(sim.dir, "gammurc")
    with open(path, "w") as f:
        f.write("[gammu]\ndevice = %s\nconnection = at\n" % sim.link)
    return path


def test_gammu_identify_and_sendsms():
    gammu = shutil.which("gammu")
    if not gammu:
        print("skip: gammu not installed")
        return
    with simulator() as sim:
        rc = gammu_rc(sim)
        r = subprocess.run([gammu, "-c", rc, "--identify"],
                           capture_output=True, timeout=120, text=True)
        check(r.returncode == 0, "gammu --identify: %s%s" % (r.stdout, r.stderr))
        check("490154203237518" in r.stdout and "001010123456789" in r.stdout
              and "smsgw" in r.stdout, "identity: %s" % r.stdout)
        r = subprocess.run([gammu, "-c", rc, "sendsms", "TEXT", "+34600111222",
                            "-text", "hi from gammu"],
                           capture_output=True, timeout=120, text=True)
        check(r.returncode == 0, "gammu sendsms: %s%s" % (r.stdout, r.stderr))
        log = sim.wait_sent(1)
        check(log[0]["to"] == "+34600111222" and
              log[0]["text"] == "hi from gammu", "what gammu sent: %r" % log)
        check(log[0]["pdu"].startswith("07915155100000F0"),
              "gammu read our SMSC through AT+CSCS=\"HEX\": %r" % log[0])
        check("reference=%d" % log[0]["mr"] in r.stdout, "gammu got the mr")


if __name__ == "__main__":
    run_tests([
        test_echo_and_basic_commands,
        test_cmee_modes,
        test_cmgs_lengths_mr_and_log,
        test_mr_wraps_mod_256,
        test_multipart_log_decoded,
        test_status_reports,
        test_inbound_stored_cmti_cmgr_cmgd,
        test_cmgl_listing_and_noise,
        test_storage_full_network_retries,
        test_direct_delivery_cnma,
        test_pin_flow,
        test_hang_after,
        test_unplug_replug_at_link,
        test_client_reopen_and_idle_cpu,
        test_permanent_and_transient_failures,
        test_send_delay_and_busy_input,
        test_no_network_then_registration,
        test_cfun_reset,
        test_vendors,
        test_inbound_file,
        test_link_safety_and_control_errors,
        test_gammu_identify_and_sendsms,
    ])
