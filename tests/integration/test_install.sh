#!/bin/sh
# `make install` / `make uninstall` into a DESTDIR:
#  - PREFIX=/usr installs exactly the expected files with the expected
#    modes; the unit is systemd/smsgwd.service byte for byte;
#  - PREFIX=/usr/local puts everything under /usr/local and the unit's
#    ExecStart= names /usr/local/sbin/smsgwd;
#  - a second install keeps an edited config; uninstall removes every file
#    but the config;
#  - the installed man pages are found by name through MANPATH;
#  - the installed bash completion completes commands (every one that
#    `smsgwctl help` lists), options, --state values and --file names.
# Uses the binaries already built in $SMSGW_BUILD (MODE=check when that is
# build/check), so `all` has nothing to do. SMSGW_MAKEFILE selects another
# Makefile (to try an install recipe before it lands).
set -u
SRC=${SMSGW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SMSGW_BUILD:-$SRC/build/check}
MAKEFILE=${SMSGW_MAKEFILE:-$SRC/Makefile}
case $BUILD in
"$SRC"/*) B=${BUILD#"$SRC"/} ;;
*) B=$BUILD ;;
esac
case $B in
build/check) MODE=check ;;
*) MODE=release ;;
esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/smsgw-install.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
pass=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
fail() { fails=$((fails + 1)); echo "FAIL $1"; }

mk() { # DESTDIR PREFIX TARGET
	make -s -f "$MAKEFILE" -C "$SRC" MODE="$MODE" B="$B" \
		DESTDIR="$1" PREFIX="$2" "$3" >"$TMP/make.log" 2>&1 ||
		{ cat "$TMP/make.log"; return 1; }
}

# mode path, one a line, of everything under a tree (files and links).
tree() {
	(cd "$1" && find . ! -type d | sort | while read -r f; do
		printf '%s %s\n' "$(stat -c %a "$f")" "${f#.}"
	done)
}

expected() { # PREFIX
	p=$1
	cat <<EOF | sort -k2
644 $p/lib/systemd/system/smsgwd.service
644 $p/lib/sysusers.d/smsgw.conf
644 $p/lib/tmpfiles.d/smsgw.conf
644 $p/lib/udev/rules.d/60-smsgw.rules
644 $p/share/bash-completion/completions/smsgwctl
644 $p/share/doc/smsgw/smsgwd.conf
644 $p/share/man/man1/smsgw-modemsim.1
644 $p/share/man/man1/smsgw-pdu.1
644 $p/share/man/man1/smsgwctl.1
644 $p/share/man/man5/smsgwd.conf.5
644 $p/share/man/man8/smsgwd.8
640 /etc/smsgw/smsgwd.conf
755 $p/bin/smsgw-modemsim
755 $p/bin/smsgw-pdu
755 $p/bin/smsgwctl
755 $p/sbin/smsgwd
EOF
}

# --- PREFIX=/usr ---------------------------------------------------------------
D=$TMP/usr-root
if mk "$D" /usr install; then
	tree "$D" >"$TMP/got"
	expected /usr >"$TMP/want"
	if diff -u "$TMP/want" "$TMP/got" >"$TMP/diff"; then
		ok "install PREFIX=/usr: the expected files and modes"
	else
		fail "install PREFIX=/usr: files differ (- expected, + installed)"
		cat "$TMP/diff"
	fi
	if cmp -s "$D/usr/lib/systemd/system/smsgwd.service" "$SRC/systemd/smsgwd.service"; then
		ok "installed unit is systemd/smsgwd.service"
	else
		fail "installed unit differs from systemd/smsgwd.service"
	fi
	if cmp -s "$D/usr/sbin/smsgwd" "$BUILD/smsgwd"; then
		ok "installed smsgwd is the built one"
	else
		fail "installed smsgwd is not $BUILD/smsgwd"
	fi
else
	fail "make install DESTDIR=... PREFIX=/usr"
fi

# --- the config survives a second install; uninstall --------------------------
if [ -f "$D/etc/smsgw/smsgwd.conf" ]; then
	echo "; edited by the admin" >>"$D/etc/smsgw/smsgwd.conf"
	cp "$D/etc/smsgw/smsgwd.conf" "$TMP/edited"
	if mk "$D" /usr install && cmp -s "$TMP/edited" "$D/etc/smsgw/smsgwd.conf"; then
		ok "a second install keeps the edited config"
	else
		fail "a second install replaced the edited config"
	fi
	if mk "$D" /usr uninstall; then
		left=$(tree "$D")
		if [ "$left" = "640 /etc/smsgw/smsgwd.conf" ]; then
			ok "uninstall removes everything but the config"
		else
			fail "uninstall left: $left"
		fi
	else
		fail "make uninstall"
	fi
fi

# --- PREFIX=/usr/local ------------------------------------------------------------
L=$TMP/local-root
if mk "$L" /usr/local install; then
	tree "$L" >"$TMP/got"
	expected /usr/local >"$TMP/want"
	if diff -u "$TMP/want" "$TMP/got" >"$TMP/diff"; then
		ok "install PREFIX=/usr/local: the expected files and modes"
	else
		fail "install PREFIX=/usr/local: files differ"
		cat "$TMP/diff"
	fi
	unit=$L/usr/local/lib/systemd/system/smsgwd.service
	if grep -qx 'ExecStart=/usr/local/sbin/smsgwd -f -c /etc/smsgw/smsgwd.conf' "$unit" 2>/dev/null &&
		! grep -q '@[A-Z]*@' "$unit"; then
		ok "PREFIX=/usr/local unit runs /usr/local/sbin/smsgwd"
	else
		fail "PREFIX=/usr/local unit: $(grep ExecStart= "$unit" 2>&1)"
	fi
else
	fail "make install DESTDIR=... PREFIX=/usr/local"
fi

# --- man pages by name ----------------------------------------------------------------
M=$L/usr/local/share/man
if ! command -v man >/dev/null 2>&1; then
	echo "SKIP: man pages by name (man not installed: Debian package man-db)"
elif [ ! -d "$M" ]; then
	fail "no man pages installed in $M"
else
	bad=""
	for page in smsgwd.8 smsgwctl.1 smsgwd.conf.5 smsgw-modemsim.1 smsgw-pdu.1; do
		name=${page%.*}
		sect=${page##*.}
		out=$(MANPATH=$M MANWIDTH=80 man "$sect" "$name" 2>&1 | head -n 8)
		case $out in *NAME*"$name"*) ;; *) bad="$bad $page" ;; esac
	done
	if [ -z "$bad" ]; then
		ok "man finds every installed page by name"
	else
		fail "man cannot show:$bad"
	fi
fi

# --- bash completion --------------------------------------------------------------
C=$L/usr/local/share/bash-completion/completions/smsgwctl
if ! command -v bash >/dev/null 2>&1; then
	echo "SKIP: bash completion (bash not installed)"
elif [ ! -f "$C" ]; then
	fail "no bash completion installed at $C"
else
	mkdir -p "$TMP/files" && : >"$TMP/files/people.csv" && : >"$TMP/files/other.txt"
	cmds=$("$BUILD/smsgwctl" help | sed -n '/^commands:/,/^$/p' |
		sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' | sort -u | tr '\n' ' ')
	got=$(bash -c '
		. "$1"
		t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
		      _smsgwctl 2>/dev/null; printf "%s\n" "${COMPREPLY[*]}"; }
		t smsgwctl ""
		t smsgwctl -
		t smsgwctl accounts --state ""
		t smsgwctl accounts --state = de
		t smsgwctl invite --file "$2/pe"
		t smsgwctl invite -
		t smsgwctl settings set ""
		t smsgwctl sms ""
		t smsgwctl -s /x --json rec
	' sh "$C" "$TMP/files")
	line() { printf '%s\n' "$got" | sed -n "${1}p"; }
	all=$(line 1 | tr ' ' '\n' | sort -u | tr '\n' ' ')
	r=""
	[ -n "$cmds" ] && [ "$all" = "$cmds" ] || r="$r commands [$all] vs help [$cmds];"
	[ "$(line 2)" = "-s --socket --json -t --timeout -h --help --version" ] || r="$r globals [$(line 2)];"
	[ "$(line 3)" = "invited active deactivated" ] || r="$r --state [$(line 3)];"
	[ "$(line 4)" = "deactivated" ] || r="$r --state=de [$(line 4)];"
	[ "$(line 5)" = "$TMP/files/people.csv" ] || r="$r --file [$(line 5)];"
	[ "$(line 6)" = "--name --file" ] || r="$r invite - [$(line 6)];"
	[ "$(line 7)" = "phone_profiles domain_verified" ] || r="$r settings set [$(line 7)];"
	[ "$(line 8)" = "show" ] || r="$r sms [$(line 8)];"
	[ "$(line 9)" = "recover recovery-code" ] || r="$r rec [$(line 9)];"
	if [ -z "$r" ]; then
		ok "installed bash completion"
	else
		fail "bash completion:$r"
	fi
fi

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
