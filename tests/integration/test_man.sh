#!/bin/sh
# The man pages (docs/man): they render without a single warning, and they
# cover what the code has. Coverage is read from the code, so a new option,
# config key, op, error code or state that is not documented fails here:
#   smsgwd.8        every long and short option (daemon/smsgwd.c and its
#                   --help), every control op (the ctl_op tables), event,
#                   error code (daemon/ctl.c) and modem state (drivers/modem.c)
#   smsgwctl.1      every command of daemon/ctlcmd.c's table, each command's
#                   options, the global options, and `smsgwctl help`
#   smsgwd.conf.5   every key of config/config.c's tables, in its section,
#                   and every value of its enum tables
#   smsgw-modemsim.1  every option of optdefs[] and --help, every control op
#   smsgw-pdu.1     every encode option and the usage text
# and every page with an EXIT STATUS section lists 0, 1 and 2.
# Needs man (man-db) and groff (groff-base).
set -u
SRC=${SMSGW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SMSGW_BUILD:-$SRC/build/check}
MAN=$SRC/docs/man
TMP=$(mktemp -d "${TMPDIR:-/tmp}/smsgw-man.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
pass=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
fail() { fails=$((fails + 1)); echo "FAIL $1"; }
PAGES="smsgwd.8 smsgwctl.1 smsgwd.conf.5 smsgw-modemsim.1 smsgw-pdu.1"

for tool in man groff; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed (Debian packages man-db, groff-base)"
		echo "0 passed, 0 failed"
		exit 0
	fi
done

# --- rendering -------------------------------------------------------------------
for page in $PAGES; do
	f=$MAN/$page
	if [ ! -f "$f" ]; then
		fail "$page: missing"
		continue
	fi
	: >"$TMP/err"
	for width in 80 120; do
		MANWIDTH=$width man --warnings -l "$f" >"$TMP/out" 2>>"$TMP/err"
	done
	LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$f" 2>>"$TMP/err"
	LC_ALL=C groff -man -ww -z -Tascii "$f" 2>>"$TMP/err"
	name=$(echo "${page%.*}" | tr a-z A-Z | sed 's/-/\\\\-/g')
	sect=${page##*.}
	if [ -s "$TMP/err" ]; then
		fail "$page: warnings"
		sed 's/^/    /' "$TMP/err"
	elif LC_ALL=C grep -q '[^ -~	]' "$f"; then
		fail "$page: not plain ASCII: $(LC_ALL=C grep -n '[^ -~	]' "$f" | head -3)"
	elif ! grep -q "^\.TH $name $sect " "$f"; then
		fail "$page: .TH does not say $name $sect"
	elif ! grep -q "^NAME" "$TMP/out" || [ "$(wc -l <"$TMP/out")" -lt 20 ]; then
		fail "$page: renders to nothing useful"
	else
		ok "$page renders without warnings"
	fi
done

# The page's source with man escapes undone: "\-\-foo" -> "--foo".
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(->/->/g' "$MAN/$1"; }
# Lines of section $2 (".SH NAME" up to the next .SH) of page $1.
section() { plain "$1" | awk -v s="$2" '/^\.SH /{on = (substr($0, 5) == s)} on'; }
# Does the text on stdin mention $1 as a whole word (options: "--x" in "--x-y" is not)?
has_opt() { grep -Eq -- "(^|[^a-z-])$1([^a-z-]|\$)"; }

missing() { # what, page, items...
	what=$1 page=$2
	shift 2
	miss=""
	n=0
	for item in "$@"; do
		n=$((n + 1))
		printf '%s\n' "$item" | grep -q . || continue
		has_opt "$item" <"$TMP/text" || miss="$miss $item"
	done
	if [ "$n" -eq 0 ]; then
		fail "$page: found no $what in the code (parser out of date?)"
	elif [ -n "$miss" ]; then
		fail "$page: undocumented $what:$miss"
	else
		ok "$page documents all $n $what"
	fi
}

# --- smsgwd.8 -----------------------------------------------------------------------
plain smsgwd.8 >"$TMP/text"
longs=$(sed -n '/longopts\[\] = {/,/};/p' "$SRC/daemon/smsgwd.c" |
	sed -n 's/.*{ "\([a-z-]*\)",.*/--\1/p')
shorts=$(sed -n 's/.*getopt_long(argc, argv, "\([^"]*\)".*/\1/p' "$SRC/daemon/smsgwd.c" |
	tr -d ':' | sed 's/./-& /g')
helps=$("$BUILD/smsgwd" --help 2>&1 | grep -Eo -- '(^|[ ,])--?[a-zA-Z][a-z-]*' | tr -d ' ,' | sort -u)
missing "smsgwd options" smsgwd.8 $longs $shorts $helps
section smsgwd.8 "CONTROL PROTOCOL" >"$TMP/text"
ops=$(cat "$SRC"/daemon/*.c | sed -n 's/^[	 ]*{ "\([a-z_]*\(\.[a-z_]*\)\{0,1\}\)", op_[a-z_]*,.*/\1/p' | sort -u)
missing "control ops" smsgwd.8 $ops
codes=$(sed -n 's/^[	 ]*\[CTL_ERR_[A-Z_]*\] = "\([a-z_]*\)",/\1/p' "$SRC/daemon/ctl.c")
missing "error codes" smsgwd.8 $codes
events=$(cat "$SRC"/daemon/*.c | tr -d '\n' |
	grep -o 'ctl_broadcast_event([^,]*,[^"]*"[a-z._]*"' | sed 's/.*"\([a-z._]*\)"/\1/' | sort -u)
missing "events" smsgwd.8 $events
states=$(sed -n 's/^[	 ]*\[MODEM_[A-Z_]*\] = "\([a-z_]*\)",/\1/p' "$SRC/drivers/modem.c")
missing "modem states and registrations" smsgwd.8 $states

# --- smsgwctl.1 --------------------------------------------------------------------
section smsgwctl.1 COMMANDS | sed -n '/^\.TP/{n;p;}' |
	sed -e 's/^\.[A-Z]* //' -e 's/"//g' >"$TMP/entries"
table=$(sed -n '/^static const struct cmd cmds\[\] = {/,/^};/p' "$SRC/daemon/ctlcmd.c")
cmds=$(printf '%s\n' "$table" | sed -n 's/^	{ "\([a-z -]*\)", ".*/\1/p')
miss=""
n=0
IFS='
'
for c in $cmds; do
	n=$((n + 1))
	grep -Eq "^$c( |\$)" "$TMP/entries" || miss="$miss '$c'"
done
unset IFS
if [ "$n" -lt 10 ]; then
	fail "smsgwctl.1: read only $n commands from ctlcmd.c"
elif [ -n "$miss" ]; then
	fail "smsgwctl.1: commands without an entry:$miss"
else
	ok "smsgwctl.1 has an entry for each of the $n commands"
fi
plain smsgwctl.1 >"$TMP/text"
cmdopts=$(printf '%s\n' "$table" | grep -o '"--[a-z-]*=\{0,1\}"' | tr -d '"=' | sort -u)
gopts=$(sed -n '/^} gopts\[\] = {/,/^};/p' "$SRC/daemon/ctlcmd.c" |
	grep -o '"--\{0,1\}[a-z-]*"' | tr -d '"' | sort -u)
helpopts=$("$BUILD/smsgwctl" help 2>&1 | grep -Eo -- '(^|[ [|,])--?[a-z][a-z-]*' | tr -d ' [|,' | sort -u)
missing "smsgwctl options" smsgwctl.1 $cmdopts $gopts $helpopts

# --- smsgwd.conf.5 --------------------------------------------------------------------
miss=""
n=0
for sect in daemon modem outbox accounts templates; do
	case $sect in
	modem) title="[modem.NAME]" ;;
	templates) title="[templates.LANG]" ;;
	*) title="[$sect]" ;;
	esac
	arr=$(sed -n "s/^static const struct key_def \([a-z]*\)_keys\[\] = {/\1/p" "$SRC/config/config.c" |
		grep -x "$(echo "$sect" | sed 's/templates/template/')")
	keys=$(sed -n "/^static const struct key_def ${arr}_keys\[\] = {/,/^};/p" "$SRC/config/config.c" |
		sed -n 's/^[	 ]*KEY("\([a-z_]*\)",.*/\1/p')
	[ -n "$keys" ] || miss="$miss (no keys read for [$sect])"
	section smsgwd.conf.5 "$title" >"$TMP/sect"
	for k in $keys; do
		n=$((n + 1))
		grep -q "^\.BI $k \" = \"" "$TMP/sect" || miss="$miss $title$k"
	done
done
if [ -n "$miss" ]; then
	fail "smsgwd.conf.5: keys without an entry in their section:$miss"
else
	ok "smsgwd.conf.5 has an entry for each of the $n keys, in its section"
fi
plain smsgwd.conf.5 >"$TMP/text"
enums=$(for t in log_levels bauds drivers flows storages pwhashes; do
	sed -n "/^static const struct enum_def $t\[\] = {/,/^};/p" "$SRC/config/config.c" |
		grep -o '{ "[A-Za-z0-9]*",' | sed 's/{ "\(.*\)",/\1/'
done | sort -u)
missing "config values" smsgwd.conf.5 $enums

# --- smsgw-modemsim.1 ----------------------------------------------------------------
plain smsgw-modemsim.1 >"$TMP/text"
simopts=$(sed -n '/^} optdefs\[\] = {/,/^};/p' "$SRC/drivers/sim/modemsim.c" |
	sed -n 's/^	{ "\([a-z-]*\)", ARG_.*/--\1/p')
simhelp=$("$BUILD/smsgw-modemsim" --help 2>&1 | grep -Eo -- '(^|[ ,])--?[a-z][a-z-]*' | tr -d ' ,' | sort -u)
missing "simulator options" smsgw-modemsim.1 $simopts $simhelp
section smsgw-modemsim.1 "CONTROL SOCKET" >"$TMP/text"
simops=$(sed -n '/^} ops\[\] = {/,/^};/p' "$SRC/drivers/sim/simctl.c" | grep -o '{ "[a-z]*", op_' |
	sed 's/{ "\([a-z]*\)".*/\1/')
missing "simulator control ops" smsgw-modemsim.1 $simops

# --- smsgw-pdu.1 ----------------------------------------------------------------------
plain smsgw-pdu.1 >"$TMP/text"
pduopts=$(sed -n '/encode_opts\[\] = {/,/^};/p' "$SRC/at/tool/smsgw-pdu.c" |
	sed -n 's/^	{ "\([a-z0-9-]*\)", .*/--\1/p')
pduhelp=$("$BUILD/smsgw-pdu" 2>&1 | grep -Eo -- '--[a-z][a-z0-9-]*' | sort -u)
missing "smsgw-pdu options" smsgw-pdu.1 $pduopts $pduhelp decode encode

# --- exit statuses ---------------------------------------------------------------------
for page in smsgwd.8 smsgwctl.1 smsgw-modemsim.1 smsgw-pdu.1; do
	section "$page" "EXIT STATUS" | grep -x '\.B [0-9]*' | sed 's/\.B //' | tr '\n' ' ' >"$TMP/codes"
	if [ "$(cat "$TMP/codes")" = "0 1 2 " ]; then
		ok "$page: exit statuses 0, 1, 2"
	else
		fail "$page: EXIT STATUS lists [$(cat "$TMP/codes")]"
	fi
done

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
