#!/usr/bin/python3
"""systemd integration: the unit, sysusers, tmpfiles and the udev rule.

1. systemd/smsgwd.service: generated from smsgwd.service.in exactly as
   `make install` does for PREFIX=/usr; passes `systemd-analyze verify`
   (on a copy whose ExecStart points at the built smsgwd, with MANPATH
   holding our man pages so Documentation= resolves) and rates an
   "Overall exposure level" of at most 1.0 in `systemd-analyze security`.
2. smsgw.sysusers and smsgw.tmpfiles applied with --root to an empty tree
   make the users, groups, memberships, directories and modes the unit
   relies on.
3. 60-smsgw.rules: parsed by the real udev (`udevadm test` in a private
   mount namespace, when root), and evaluated here against the modem
   table of drivers/transport.c: every known AT port gets its
   /dev/smsgw/ link, ModemManager's ignore flag, group dialout, 0660;
   other devices get nothing.
4. The daemon started the way the unit starts it, as far as that works
   without systemd as PID 1: the ExecStart arguments, cwd /, a clean
   environment without HOME, stdin /dev/null, the unit's UMask, its
   User (as nobody, with the supplementary groups) when we are root,
   NoNewPrivileges, an empty CapabilityBoundingSet, PrivateNetwork (a new
   network namespace, when root), MemoryDenyWriteExecute (PR_SET_MDWE),
   and the unit's SystemCallFilter / RestrictAddressFamilies /
   SystemCallErrorNumber as a seccomp filter built from
   `systemd-analyze syscall-filter`. It must send READY=1, STATUS=,
   WATCHDOG=1 pings, RELOADING=1 + READY=1 on SIGHUP and STOPPING=1 on
   SIGTERM to a NOTIFY_SOCKET bound here, bring a `device = sim` modem to
   ready, and serve the control socket. Not emulated: DevicePolicy
   (cgroup), ProtectSystem and friends (mount namespaces).

Tests needing systemd-analyze print SKIP when it is missing (Debian
packages: systemd, udev, man-db, groff-base).
"""
import ctypes
import errno
import fnmatch
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smsgwtest import SRC, Client, TestFailure, binary, check, run_tests, wait_for  # noqa: E402

UNIT_IN = os.path.join(SRC, "systemd", "smsgwd.service.in")
UNIT = os.path.join(SRC, "systemd", "smsgwd.service")
SYSUSERS = os.path.join(SRC, "systemd", "smsgw.sysusers")
TMPFILES = os.path.join(SRC, "systemd", "smsgw.tmpfiles")
RULES = os.path.join(SRC, "systemd", "60-smsgw.rules")
TRANSPORT_C = os.path.join(SRC, "drivers", "transport.c")
MAN_DIR = os.path.join(SRC, "docs", "man")
EXPOSURE_MAX = 1.0
ANALYZE = shutil.which("systemd-analyze")
IS_ROOT = os.geteuid() == 0


def skip(why):
    print("SKIP: %s" % why, flush=True)


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, universal_newlines=True, **kw)


def instantiate(template, sbindir, sysconfdir):
    """What `make install` does to smsgwd.service.in."""
    with open(template) as f:
        text = f.read()
    return text.replace("@SBINDIR@", sbindir).replace("@SYSCONFDIR@", sysconfdir)


def parse_unit(text):
    """{section: [(key, value), ...]} with line continuations joined."""
    sections, cur = {}, None
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], [])
            continue
        check(cur is not None and "=" in line, "unit: bad line %r" % line)
        key, value = line.split("=", 1)
        cur.append((key.strip(), value.strip()))
    return sections


def values(unit, key, section="Service"):
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit, key, section="Service"):
    vs = values(unit, key, section)
    check(len(vs) == 1, "unit: expected one %s=, got %r" % (key, vs))
    return vs[0]


def man_path(tmp):
    """A MANPATH tree holding docs/man/* in their section directories."""
    root = os.path.join(tmp, "man")
    for name in os.listdir(MAN_DIR):
        sect = name.rsplit(".", 1)[-1]
        os.makedirs(os.path.join(root, "man" + sect), exist_ok=True)
        shutil.copy(os.path.join(MAN_DIR, name), os.path.join(root, "man" + sect, name))
    return root


# --- 1. the unit ---------------------------------------------------------------

def test_unit_is_the_template_for_usr():
    with open(UNIT) as f:
        checked_in = f.read()
    check(checked_in == instantiate(UNIT_IN, "/usr/sbin", "/etc"),
          "systemd/smsgwd.service differs from smsgwd.service.in with "
          "@SBINDIR@=/usr/sbin @SYSCONFDIR@=/etc: regenerate it with sed")
    check(not re.search(r"@[A-Z]+@", checked_in), "an @PLACEHOLDER@ is left in the unit")


def test_unit_settings():
    unit = parse_unit(open(UNIT).read())
    want = {
        "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure",
        "ExecStart": "/usr/sbin/smsgwd -f -c /etc/smsgw/smsgwd.conf",
        "ExecReload": "/bin/kill -HUP $MAINPID", "User": "smsgw",
        "Group": "smsgw", "RuntimeDirectory": "smsgw",
        "StateDirectory": "smsgw", "ProtectSystem": "strict",
        "NoNewPrivileges": "yes", "PrivateNetwork": "yes",
        "RestrictAddressFamilies": "AF_UNIX", "MemoryDenyWriteExecute": "yes",
    }
    for key, value in want.items():
        check(one(unit, key) == value, "%s=%s expected, got %r" % (key, value, values(unit, key)))
    check(re.fullmatch(r"\d+s", one(unit, "WatchdogSec")), "WatchdogSec= in seconds")
    groups = one(unit, "SupplementaryGroups").split()
    check("dialout" in groups and "smsgw-admin" in groups,
          "SupplementaryGroups= needs dialout (ports) and smsgw-admin (socket chown)")
    check(int(one(unit, "UMask"), 8) & 0o007 == 0o007, "UMask= must deny others")
    mode = int(one(unit, "RuntimeDirectoryMode"), 8)
    check(mode & 0o001, "/run/smsgw must be traversable by smsgw-admin and "
          "smsgw-portal members (o+x)")
    check(one(unit, "CapabilityBoundingSet") == "", "no capabilities")
    allows = {v.split()[0] for v in values(unit, "DeviceAllow")}
    for dev in ("char-ttyUSB", "char-ttyACM", "/dev/ptmx", "char-pts"):
        check(dev in allows, "DeviceAllow= misses %s" % dev)


def test_unit_verify():
    if not ANALYZE:
        return skip("systemd-analyze not installed (Debian package systemd)")
    with tempfile.TemporaryDirectory(prefix="smsgw-unit-") as tmp:
        sbindir = os.path.dirname(os.path.realpath(binary("smsgwd")))
        check(os.access(os.path.join(sbindir, "smsgwd"), os.X_OK),
              "no built smsgwd in %s" % sbindir)
        path = os.path.join(tmp, "smsgwd.service")
        with open(path, "w") as f:
            f.write(instantiate(UNIT_IN, sbindir, "/etc"))
        env = dict(os.environ, MANPATH=man_path(tmp), SYSTEMD_LOG_LEVEL="notice")
        r = run([ANALYZE, "verify", path], env=env)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and out == "",
              "systemd-analyze verify (rc %d):\n%s" % (r.returncode, out))
        # The check sees a broken unit: a bad ExecStart path fails it.
        bad = os.path.join(tmp, "bad.service")
        with open(bad, "w") as f:
            f.write(instantiate(UNIT_IN, os.path.join(tmp, "nowhere"), "/etc"))
        r = run([ANALYZE, "verify", bad], env=env)
        check(r.returncode != 0, "verify accepted a unit with a missing binary")


def exposure(path):
    r = run([ANALYZE, "security", "--offline=true", "--no-pager", path])
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout + r.stderr)
    check(m, "no exposure level in:\n%s%s" % (r.stdout[-2000:], r.stderr))
    return float(m.group(1)), r.stdout


def test_unit_security():
    if not ANALYZE:
        return skip("systemd-analyze not installed (Debian package systemd)")
    level, out = exposure(UNIT)
    print("     exposure level of smsgwd.service: %.1f" % level, flush=True)
    check(level <= EXPOSURE_MAX, "exposure %.1f > %.1f:\n%s" % (
        level, EXPOSURE_MAX, "\n".join(l for l in out.splitlines() if "\u2717" in l)))
    # The parse is real: without the sandbox the same unit rates far worse.
    with tempfile.TemporaryDirectory(prefix="smsgw-unit-") as tmp:
        lax = os.path.join(tmp, "smsgwd.service")
        with open(UNIT) as f:
            text = f.read()
        keep = ("[", "Type=", "ExecStart=", "User=", "Group=", "Description=")
        with open(lax, "w") as f:
            f.write("\n".join(l for l in text.splitlines() if l.startswith(keep)) + "\n")
        worse, _ = exposure(lax)
        check(worse > level + 3, "a unit without the sandbox rated %.1f" % worse)


# --- 2. sysusers and tmpfiles ------------------------------------------------------

def read_db(path):
    with open(path) as f:
        return {l.split(":")[0]: l.rstrip("\n").split(":") for l in f if l.strip()}


def test_sysusers_and_tmpfiles():
    tool_u, tool_t = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if not tool_u or not tool_t:
        return skip("systemd-sysusers/systemd-tmpfiles not installed (package systemd)")
    if not IS_ROOT:
        return skip("--root trees with foreign owners need root")
    with tempfile.TemporaryDirectory(prefix="smsgw-root-") as root:
        os.makedirs(os.path.join(root, "etc", "smsgw"))
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(root, "etc", "group"), "w") as f:
            f.write("root:x:0:\ndialout:x:20:\n")  # as on Debian
        conf = os.path.join(root, "etc", "smsgw", "smsgwd.conf")
        shutil.copy(os.path.join(SRC, "config", "smsgwd.conf"), conf)
        os.chmod(conf, 0o644)  # what a careless copy leaves; tmpfiles fixes it
        r = run([tool_u, "--root=" + root, SYSUSERS])
        check(r.returncode == 0, "systemd-sysusers: %s" % r.stderr)
        users, groups = read_db(os.path.join(root, "etc", "passwd")), \
            read_db(os.path.join(root, "etc", "group"))
        check("smsgw" in users, "no user smsgw")
        u = users["smsgw"]
        check(int(u[2]) < 1000 and u[5] == "/var/lib/smsgw" and "nologin" in u[6],
              "smsgw must be a system user with home /var/lib/smsgw: %r" % u)
        for g in ("smsgw", "smsgw-admin", "smsgw-portal"):
            check(g in groups, "no group %s" % g)
        check(groups["dialout"][2] == "20", "dialout must be kept, not re-made")
        for g in ("dialout", "smsgw-admin"):
            check("smsgw" in groups[g][3].split(","), "smsgw not in %s: %r" % (g, groups[g]))
        check("smsgw" not in groups["smsgw-portal"][3].split(","), "smsgw in smsgw-portal")
        r = run([tool_t, "--root=" + root, "--create", TMPFILES])
        check(r.returncode == 0, "systemd-tmpfiles: %s" % r.stderr)
        uid, gid = int(u[2]), int(groups["smsgw"][2])
        for path, mode, owner, group in (
                ("var/lib/smsgw", 0o750, uid, gid),
                ("etc/smsgw", 0o750, 0, gid),
                ("etc/smsgw/smsgwd.conf", 0o640, 0, gid)):
            st = os.lstat(os.path.join(root, path))
            check((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, owner, group),
                  "%s: mode %o uid %d gid %d" % (path, stat.S_IMODE(st.st_mode),
                                                 st.st_uid, st.st_gid))


# --- 3. the udev rule ----------------------------------------------------------------

def transport_table():
    """(vid, pid, iface) of drivers/transport.c's at_ports[]."""
    with open(TRANSPORT_C) as f:
        src = f.read()
    body = re.search(r"at_ports\[\] = \{(.*?)\n\};", src, re.S).group(1)
    rows = [(int(a, 16), int(b, 16), int(c)) for a, b, c in
            re.findall(r"\{\s*0x([0-9a-fA-F]{4}),\s*0x([0-9a-fA-F]{4}),\s*(\d+),", body)]
    check(len(rows) >= 10, "cannot read at_ports[] from transport.c")
    return rows


RULE_RE = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def parse_rules(path):
    rules, labels = [], set()
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pos, items = 0, []
        while pos < len(line):
            m = RULE_RE.match(line, pos)
            check(m, "%s:%d: cannot parse at %r" % (path, n, line[pos:]))
            items.append(m.groups())
            pos = m.end()
        for key, _, op, value in items:
            if key == "LABEL":
                labels.add(value)
        rules.append((n, items))
    for n, items in rules:
        for key, _, op, value in items:
            check(key != "GOTO" or value in labels, "line %d: GOTO %s has no LABEL" % (n, value))
    return rules


def udev_match(pattern, value):
    return any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def udev_eval(rules, dev):
    """Runs the rules on dev (a dict: ACTION, SUBSYSTEM, KERNEL, DEVTYPE,
    attrs, env, builtins) the way udev does for the keys these rules use.
    Returns (env, group, mode, symlinks)."""
    env, out = dict(dev["env"]), {"GROUP": None, "MODE": None, "SYMLINK": []}
    skip_to = None
    for _, items in rules:
        if skip_to:
            if any(k == "LABEL" and v == skip_to for k, _, _, v in items):
                skip_to = None
            continue
        matched = True
        for key, attr, op, value in items:
            if op not in ("==", "!="):
                continue
            have = {"ACTION": dev["ACTION"], "SUBSYSTEM": dev["SUBSYSTEM"],
                    "KERNEL": dev["KERNEL"],
                    "SUBSYSTEMS": "|".join(dev.get("parents", []))}.get(key)
            if key == "ENV":
                have = env.get(attr, "")
            elif key == "ATTR":
                have = dev["attrs"].get(attr, "")
            check(have is not None, "the evaluator does not know %s" % key)
            if key == "SUBSYSTEMS":
                hit = any(udev_match(value, s) for s in dev.get("parents", []))
            else:
                hit = udev_match(value, have)
            if hit != (op == "=="):
                matched = False
                break
        if not matched:
            continue
        for key, attr, op, value in items:
            value = re.sub(r"\$env\{([^}]*)\}", lambda m: env.get(m.group(1), ""), value)
            if key == "ENV" and op == "=":
                env[attr] = value
            elif key in ("GROUP", "MODE") and op == "=":
                out[key] = value
            elif key == "SYMLINK" and op == "+=":
                out["SYMLINK"] += value.split()
            elif key == "IMPORT" and attr == "builtin":
                env.update(dev["builtins"].get(value, {}))
            elif key == "GOTO":
                skip_to = value
            elif key == "LABEL" or op in ("==", "!="):
                pass
            else:
                raise TestFailure("the evaluator does not know %s%s" % (key, op))
    return env, out["GROUP"], out["MODE"], out["SYMLINK"]


def tty(vid, pid, iface, serial="86042105123456", action="add", kernel="ttyUSB3"):
    usb = {"ID_VENDOR_ID": "%04x" % vid, "ID_MODEL_ID": "%04x" % pid,
           "ID_USB_INTERFACE_NUM": "%02x" % iface, "ID_SERIAL_SHORT": serial}
    return {"ACTION": action, "SUBSYSTEM": "tty", "KERNEL": kernel, "attrs": {},
            "env": {}, "parents": ["usb-serial", "usb"],
            "builtins": {"usb_id": usb, "path_id": {
                "ID_PATH": "pci-0000:00:14.0-usb-0:2:1.%d" % iface,
                "ID_PATH_TAG": "pci-0000_00_14_0-usb-0_2_1_%d" % iface}}}


def test_udev_rule_semantics():
    rules = parse_rules(RULES)
    names = {0x2c7c: "quectel", 0x1e0e: "simcom", 0x12d1: "huawei"}
    table = transport_table()
    for vid, pid, iface in table:
        check(vid in names, "transport.c knows vendor %04x, the rule does not" % vid)
        env, group, mode, links = udev_eval(rules, tty(vid, pid, iface))
        what = "%04x:%04x if%02d" % (vid, pid, iface)
        check(env.get("ID_MM_DEVICE_IGNORE") == "1", "%s: ModemManager not told to ignore" % what)
        check((group, mode) == ("dialout", "0660"), "%s: group %s mode %s" % (what, group, mode))
        want = "smsgw/%s-86042105123456-if%02x" % (names[vid], iface)
        check(links == [want], "%s: links %r, want %r" % (what, links, want))
        # No serial number: the link names the USB path instead.
        env, _, _, links = udev_eval(rules, tty(vid, pid, iface, serial=""))
        check(links == ["smsgw/%s-pci-0000_00_14_0-usb-0_2_1_%d-if%02x" % (names[vid], iface, iface)],
              "%s without serial: %r" % (what, links))
        # The USB device node is marked too (all its interfaces).
        dev = {"ACTION": "add", "SUBSYSTEM": "usb", "KERNEL": "1-2", "env": {"DEVTYPE": "usb_device"},
               "attrs": {"idVendor": "%04x" % vid, "idProduct": "%04x" % pid}, "builtins": {}}
        env, _, _, links = udev_eval(rules, dev)
        check(env.get("ID_MM_DEVICE_IGNORE") == "1" and not links, "%s: usb_device not ignored" % what)
    for dev, why in ((tty(0x0403, 0x6001, 0), "an FTDI adapter"),
                     (tty(0x2c7c, 0x0125, 2, action="remove"), "a remove event"),
                     (dict(tty(0x2c7c, 0x0125, 2), KERNEL="ttyS0", parents=[]), "a built-in UART"),
                     (dict(tty(0x2c7c, 0x0125, 2), SUBSYSTEM="net", KERNEL="wwan0"), "a net device")):
        env, group, mode, links = udev_eval(rules, dev)
        check(not links and group is None and "ID_MM_DEVICE_IGNORE" not in env,
              "%s was touched: %r %r %r" % (why, links, group, env))


def test_udev_rule_parses_in_udev():
    udevadm = shutil.which("udevadm")
    if not udevadm:
        return skip("udevadm not installed (Debian package udev)")
    r = run([udevadm, "verify", "--help"])
    if r.returncode == 0:  # systemd >= 254
        r = run([udevadm, "verify", RULES])
        check(r.returncode == 0, "udevadm verify:\n%s%s" % (r.stdout, r.stderr))
        return
    if not IS_ROOT or not shutil.which("unshare"):
        return skip("udevadm has no verify and a private mount namespace needs root")
    # `udevadm test` loads every rules file; in a private mount namespace
    # with a tmpfs over /run and our rule as the only one in
    # /etc/udev/rules.d, on a device without a /dev node (a module), it
    # changes nothing outside the namespace.
    module = sorted(os.listdir("/sys/module"))[0]
    with tempfile.TemporaryDirectory(prefix="smsgw-udev-") as tmp:
        for name, text in (("60-smsgw.rules", open(RULES).read()),
                           ("61-broken.rules", 'KERNEL=="x", NOSUCHKEY="1"\n')):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        script = ("mount --make-rprivate / && mount -t tmpfs tmpfs /run && "
                  "mount --bind %s /etc/udev/rules.d && "
                  "exec %s test --action=add /sys/module/%s" % (tmp, udevadm, module))
        r = run(["unshare", "-m", "sh", "-c", script])
        out = r.stdout + r.stderr
        check("60-smsgw.rules" in out, "udev did not read the rule:\n%s" % out[-3000:])
        check("61-broken.rules:1" in out, "udev's parser messages not seen:\n%s" % out[-3000:])
        bad = [l for l in out.splitlines() if "60-smsgw.rules:" in l]
        check(not bad, "udev complains about 60-smsgw.rules:\n%s" % "\n".join(bad))


# --- 4. the daemon in the unit's environment ------------------------------------------

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_MDWE, PR_SET_SECCOMP = 38, 24, 65, 22
SECCOMP_MODE_FILTER, CLONE_NEWNET = 2, 0x40000000
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7fff0000, 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
ERRNOS = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38, "EAFNOSUPPORT": 97}


class sock_fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def syscall_numbers():
    """name -> number on x86_64, from the kernel headers."""
    for path in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"):
        if os.path.exists(path):
            with open(path) as f:
                return {m.group(1): int(m.group(2)) for m in
                        re.finditer(r"#define __NR_(\w+)\s+(\d+)", f.read())}
    return None


def expand_group(name, cache):
    """Syscall names of a systemd-analyze group, nested groups included."""
    if name in cache:
        return cache[name]
    r = run([ANALYZE, "syscall-filter", name])
    check(r.returncode == 0, "systemd-analyze syscall-filter %s: %s" % (name, r.stderr))
    names = set()
    for line in r.stdout.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            names |= expand_group(line, cache)
        else:
            names.add(line)
    cache[name] = names
    return names


def unit_syscalls(unit):
    """The allowed syscall names, from the unit's SystemCallFilter= lines in
    order (the first decides allow or deny list; later ones add/remove)."""
    cache, allowed = {}, None
    for line in values(unit, "SystemCallFilter"):
        deny = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= expand_group(word, cache) if word.startswith("@") else {word}
        check(allowed is not None or not deny, "a deny-list-first filter is not emulated")
        allowed = (allowed - names) if deny else ((allowed or set()) | names)
    return allowed or set()


def seccomp_program(unit):
    """BPF: native arch only; socket() only for the unit's address
    families; the unit's syscalls; everything else the unit's errno."""
    numbers = syscall_numbers()
    if numbers is None or os.uname().machine != "x86_64":
        return None
    allowed = sorted(numbers[n] for n in unit_syscalls(unit) if n in numbers)
    err = ERRNOS[one(unit, "SystemCallErrorNumber")]
    families = [socket.AF_UNIX] if one(unit, "RestrictAddressFamilies") == "AF_UNIX" else None
    check(families, "only RestrictAddressFamilies=AF_UNIX is emulated")
    deny = (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | err)
    allow = (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)
    prog = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64), deny,
            (BPF_LD_W_ABS, 0, 0, 0),
            (BPF_JGE_K, 0, 1, 0x40000000), deny,  # x32 ABI
            (BPF_JEQ_K, 0, 4, numbers["socket"]),
            (BPF_LD_W_ABS, 0, 0, 16),  # args[0], the family
            (BPF_JEQ_K, 0, 1, families[0]), allow,
            (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | ERRNOS["EAFNOSUPPORT"])]
    for nr in allowed:
        if nr != numbers["socket"]:
            prog += [(BPF_JEQ_K, 0, 1, nr), allow]
    prog.append(deny)
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog), len(prog)


def prctl(*args):
    if libc.prctl(*[ctypes.c_ulong(a) for a in args]) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "prctl%r: %s" % (args, os.strerror(e)))


class UnitSandbox:
    """preexec_fn doing in the child what the unit asks of systemd."""

    def __init__(self, unit, env, user):
        self.unit, self.env, self.user = unit, env, user
        prog = seccomp_program(unit) if ANALYZE else None
        self.bpf = ctypes.create_string_buffer(prog[0]) if prog else None
        self.fprog = sock_fprog(prog[1], ctypes.addressof(self.bpf)) if prog else None
        self.applied = ["UMask", "NoNewPrivileges", "clean environment"]
        if user:
            self.applied += ["User", "SupplementaryGroups", "CapabilityBoundingSet"]
        # What this kernel and container allow; each is tried in a child.
        self.netns = bool(user) and one(unit, "PrivateNetwork") == "yes" and \
            self.works(lambda: libc.unshare(CLONE_NEWNET) == 0)
        self.mdwe = one(unit, "MemoryDenyWriteExecute") == "yes" and \
            self.works(lambda: libc.prctl(PR_SET_MDWE, 1, 0, 0, 0) == 0)
        if self.netns:
            self.applied.append("PrivateNetwork")
        if self.mdwe:
            self.applied.append("MemoryDenyWriteExecute")
        if self.fprog:
            self.applied += ["SystemCallFilter", "RestrictAddressFamilies",
                             "SystemCallErrorNumber"]

    @staticmethod
    def works(fn):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if fn() else 1)
        return os.waitpid(pid, 0)[1] == 0

    def __call__(self):
        os.environ.clear()
        os.environ.update(self.env)
        os.environ["WATCHDOG_PID"] = str(os.getpid())
        if self.netns and libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        if self.user:
            for cap in range(64):
                if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
                    raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")
            uid, gid, groups = self.user
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
        os.umask(int(one(self.unit, "UMask"), 8))
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if self.mdwe:
            prctl(PR_SET_MDWE, 1, 0, 0, 0)
        if self.fprog:
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self.fprog), 0, 0)


class Notify:
    """The service manager's end of sd_notify: a datagram socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # as /run/systemd/notify: any service may send
        self.msgs = []

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            for i, m in enumerate(self.msgs):
                if pred(m):
                    return self.msgs.pop(i)
            left = deadline - time.monotonic()
            check(left > 0, "no %s from smsgwd within %.0fs (got %r)" % (what, timeout, self.msgs))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.msgs.append(dict(l.split("=", 1) for l in data.decode().splitlines() if "=" in l))
        raise TestFailure("notify loop bound")

    def drain(self):
        """Takes in what is queued without waiting; returns every message."""
        self.sock.setblocking(False)
        for _ in range(10000):
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.msgs.append(dict(l.split("=", 1) for l in data.decode().splitlines() if "=" in l))
        self.sock.setblocking(True)
        return self.msgs


ACL_GROUP = 0x08


def acl_groups(path):
    """{gid: perm} of the named-group entries of path's POSIX access ACL
    (the system.posix_acl_access xattr: a version, then tag/perm/id)."""
    try:
        raw = os.getxattr(path, "system.posix_acl_access", follow_symlinks=False)
    except OSError:
        return {}
    check(struct.unpack_from("<I", raw)[0] == 2, "unknown ACL xattr version")
    entries = (struct.unpack_from("<HHI", raw, off) for off in range(4, len(raw), 8))
    return {ident: perm for tag, perm, ident in entries if tag == ACL_GROUP}


def peer_try(path, uid, gid, groups):
    """Connects to the control socket as another user (a forked child);
    returns "refused: ERRNO" or the answers to ping and settings.get."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = ""
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            try:
                c = Client(path, timeout=10)
            except OSError as e:
                out = "refused: %s" % errno.errorcode.get(e.errno, e.errno)
            else:
                out = json.dumps([c.request("ping"), c.request("settings.get")])
        finally:
            os.write(wfd, out.encode())
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return data.decode()


class UnitRun:
    """smsgwd started as the unit starts it, in a private tree standing in
    for /etc/smsgw, /var/lib/smsgw and /run/smsgw."""

    def __init__(self, unit):
        self.unit = unit
        argv = one(unit, "ExecStart").split()
        check(argv[1:] == ["-f", "-c", "/etc/smsgw/smsgwd.conf"], "ExecStart args %r" % argv)
        self.tmp = tempfile.mkdtemp(prefix="smsgw-unit-")
        os.chmod(self.tmp, 0o755)
        self.user, self.admin_group, self.portal_group = None, "", ""
        if IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            # SupplementaryGroups=dialout smsgw-admin: dialout stands in for
            # both (the socket gets it by chown, through the membership);
            # users stands in for smsgw-portal (the socket's ACL names it).
            self.user = (nobody.pw_uid, nobody.pw_gid, [grp.getgrnam("dialout").gr_gid])
            self.admin_group, self.portal_group = "dialout", "users"
        uid, gid = (self.user[0], self.user[1]) if self.user else (os.getuid(), os.getgid())
        self.state = os.path.join(self.tmp, "lib", "smsgw")
        run_dir = os.path.join(self.tmp, "run", "smsgw")
        etc = os.path.join(self.tmp, "etc", "smsgw")
        for path, owner, mode in ((self.state, uid, one(unit, "StateDirectoryMode")),
                                  (run_dir, uid, one(unit, "RuntimeDirectoryMode")),
                                  (etc, os.getuid(), "0750")):
            os.makedirs(path)
            os.chown(path, owner, gid)
            os.chmod(path, int(mode, 8))
        self.conf = os.path.join(etc, "smsgwd.conf")
        self.socket = os.path.join(run_dir, "control.sock")
        with open(self.conf, "w") as f:
            f.write("[daemon]\nstate_dir = %s\nsocket = %s\nadmin_group = %s\n"
                    "portal_group = %s\nlog_level = info\n\n[modem.sim]\ndevice = sim\n\n"
                    "[accounts]\norganization = Unit Test\n"
                    "claim_url = https://portal.example/claim/{token}\n"
                    % (self.state, self.socket, self.admin_group, self.portal_group))
        os.chown(self.conf, os.getuid(), gid)
        os.chmod(self.conf, 0o640)
        self.notify = Notify(os.path.join(self.tmp, "notify"))
        self.log_path = os.path.join(self.tmp, "journal")
        self.proc = None

    def start(self):
        log = open(self.log_path, "wb")
        st = os.fstat(log.fileno())
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
            "NOTIFY_SOCKET": self.notify.sock.getsockname(),
            "WATCHDOG_USEC": "2000000",
            "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino),
        }
        # The sanitizer build's runtime options (not part of the unit). LSan
        # stops the world with ptrace at exit, which the filter forbids as
        # it should; the leak check runs in the other integration tests.
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        self.sandbox = UnitSandbox(self.unit, env, self.user)
        self.proc = subprocess.Popen([binary("smsgwd"), "-f", "-c", self.conf], cwd="/",
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=None, preexec_fn=self.sandbox)
        log.close()
        return self

    def journal(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.notify.sock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_daemon_in_unit_environment():
    r = UnitRun(parse_unit(open(UNIT).read())).start()
    print("     emulated: %s" % ", ".join(r.sandbox.applied), flush=True)
    proc, notify = r.proc, r.notify
    try:
        ready = notify.wait(lambda m: "READY" in m, 60, "READY=1")
        check(ready["READY"] == "1" and ready.get("MAINPID") == str(proc.pid),
              "READY message %r (pid %d)" % (ready, proc.pid))
        status = notify.wait(lambda m: "STATUS" in m, 10, "STATUS=")
        check(re.match(r"\d+ of 1 modems ready", status["STATUS"]), "STATUS=%r" % status)
        t0 = time.monotonic()
        for _ in range(3):  # every WATCHDOG_USEC / 2 = 1 s
            notify.wait(lambda m: m.get("WATCHDOG") == "1", 5, "WATCHDOG=1")
        check(time.monotonic() - t0 < 4.5, "3 watchdog pings took %.1fs" % (time.monotonic() - t0))

        st = os.stat(r.socket)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
              "socket mode %o" % stat.S_IMODE(st.st_mode))
        if r.admin_group:
            check(st.st_gid == grp.getgrnam(r.admin_group).gr_gid,
                  "socket group %d: the chown to admin_group failed" % st.st_gid)
        if r.portal_group:
            # The portal's group reaches the socket through its ACL entry,
            # and gets the portal role; a user in neither group is refused.
            portal = grp.getgrnam(r.portal_group).gr_gid
            check(acl_groups(r.socket).get(portal) == 6,
                  "no rw ACL entry for %s on the socket: %r" % (r.portal_group, acl_groups(r.socket)))
            other = pwd.getpwnam("daemon")
            got = peer_try(r.socket, other.pw_uid, other.pw_gid, [portal])
            check(got.startswith("["), "a portal member could not connect: %s" % got)
            ping, settings = json.loads(got)
            check(ping.get("ok") is True and settings.get("error", {}).get("code") ==
                  "permission_denied", "portal member: %s" % got)
            got = peer_try(r.socket, other.pw_uid, other.pw_gid, [])
            check(got == "refused: EACCES", "a user in no group: %s" % got)
        c = Client(r.socket, timeout=10)
        try:
            check(c.ok("ping").get("version"), "ping has no version")

            def sim_ready():
                mods = c.ok("modem.list")["modems"]
                return mods and mods[0]["state"] == "ready" and mods[0]
            wait_for(sim_ready, 60, "the device = sim modem to be ready")
        finally:
            c.close()
        names = os.listdir(r.state)
        check("smsgw.db" in names, "no smsgw.db in the state directory")
        for name in names:
            st = os.lstat(os.path.join(r.state, name))
            check(stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077,
                  "%s is mode %o under UMask=0077" % (name, stat.S_IMODE(st.st_mode)))
        lines = [l for l in r.journal().splitlines() if l.strip() and not l.startswith("==")]
        check(lines and all(re.match(r"<[0-7]>", l) for l in lines),
              "with JOURNAL_STREAM every line needs a <N> prefix:\n%s" % "\n".join(lines[:10]))

        proc.send_signal(signal.SIGHUP)
        notify.wait(lambda m: m.get("RELOADING") == "1", 10, "RELOADING=1")
        notify.wait(lambda m: m.get("READY") == "1", 10, "READY=1 after the reload")
        proc.send_signal(signal.SIGTERM)
        notify.wait(lambda m: m.get("STOPPING") == "1", 10, "STOPPING=1")
        rc = proc.wait(30)
        check(rc == 0, "smsgwd exited %d on SIGTERM" % rc)
        check(not os.path.exists(r.socket), "the control socket was left behind")
    except Exception:
        print(r.journal()[-4000:], flush=True)
        raise
    finally:
        if os.environ.get("SMSGW_TEST_VERBOSE"):
            print(r.journal(), flush=True)
        r.close()


def test_filter_emulation_bites():
    """Without the unit's SystemCallFilter=@chown the socket's chown is
    refused and the daemon does not start: the emulation above is real,
    and that line of the unit is needed."""
    if not ANALYZE or not IS_ROOT or seccomp_program(parse_unit(open(UNIT).read())) is None:
        return skip("needs systemd-analyze, root and x86_64")
    unit = parse_unit(open(UNIT).read())
    unit["Service"] = [(k, v) for k, v in unit["Service"]
                       if not (k == "SystemCallFilter" and v == "@chown")]
    r = UnitRun(unit).start()
    try:
        rc = r.proc.wait(60)
        check(rc == 1, "smsgwd without @chown exited %r" % rc)
        check(re.search(r"chown: Operation not permitted", r.journal()),
              "no chown refusal in:\n%s" % r.journal()[-2000:])
        check(not any("READY" in m for m in r.notify.drain()), "READY=1 sent anyway")
    finally:
        r.close()


if __name__ == "__main__":
    run_tests([
        test_unit_is_the_template_for_usr,
        test_unit_settings,
        test_unit_verify,
        test_unit_security,
        test_sysusers_and_tmpfiles,
        test_udev_rule_semantics,
        test_udev_rule_parses_in_udev,
        test_daemon_in_unit_environment,
        test_filter_emulation_bites,
    ])
