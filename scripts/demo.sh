#!/bin/sh
# make demo: smsgwd on the simulated modem (config/demo.conf, state in ./var),
# a short tour of what an admin and a worker see, then the daemon keeps
# running in the foreground until Ctrl-C (on a terminal) so you can try
# smsgwctl yourself. Without a terminal it stops after the tour.
set -u
cd "$(dirname "$0")/.."
B=${B:-build/release}
CONF=config/demo.conf
SOCK=./var/control.sock
SMSLOG=./var/sim-demo.sms.log
CTL="$B/smsgwctl -s $SOCK"

for bin in smsgwd smsgwctl smsgw-pdu smsgw-modemsim; do
	[ -x "$B/$bin" ] || { echo "demo: $B/$bin is not built (run make)" >&2; exit 1; }
done
mkdir -p var

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

"$B/smsgwd" -c "$CONF" --check-config >/dev/null || exit 1
"$B/smsgwd" -f -c "$CONF" 2>var/smsgwd.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM

# Bounded wait for the socket and a ready modem.
i=0
until $CTL ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "demo: smsgwd did not start:"; tail var/smsgwd.log; exit 1; }
	sleep 0.1
done
i=0
until $CTL --json modems 2>/dev/null | grep -q '"state": *"ready"'; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "demo: the simulated modem is not ready"; exit 1; }
	sleep 0.1
done

say "smsgwd is running on a simulated modem (log: var/smsgwd.log)"
run $CTL modems

say "An admin turns on phone profiles and invites a worker"
run $CTL settings set phone_profiles true
run $CTL invite "+34 600 111 222" --name Ana

say "The SMS Ana gets (what the simulated modem sent, from $SMSLOG)"
i=0
until [ -s "$SMSLOG" ]; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
sed 's/.*"text":"\([^"]*\)".*/  \1/' "$SMSLOG"

say "Outbound SMS and their status"
sleep 1
run $CTL sms

say "Try it yourself"
cat <<EOF
  $CTL accounts
  $CTL send +34600111222 "Turno de noche: 22:00"
  $CTL claim TOKEN            # the token is the end of the link above
  $CTL watch                  # live events
  tail -f $SMSLOG             # every SMS a worker would get
EOF
if [ -t 0 ]; then
	echo "smsgwd keeps running; Ctrl-C stops it."
	wait $pid
fi
