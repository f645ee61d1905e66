#!/bin/sh
# make bench: smsgwd against the simulator, side by side with gammu-smsd and
# smstools3 on the same simulator; prints a table, writes bench/RESULTS.md.
# Arguments (section names) run only those sections and write no RESULTS.md.
set -eu
cd "$(dirname "$0")/.."

PEER_PKGS="gammu-smsd smstools"

have_peers() {
	command -v gammu-smsd >/dev/null 2>&1 &&
		{ command -v smsd >/dev/null 2>&1 || [ -x /usr/sbin/smsd ]; }
}

# The peers come from Debian. Their packages would start a system smsd on
# /dev/ttyS0: a temporary policy-rc.d (the Debian way) keeps every service
# down during the install, and is removed afterwards.
install_peers() {
	policy=/usr/sbin/policy-rc.d
	made=no
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made=yes
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y $PEER_PKGS >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
		  apt-get install -y $PEER_PKGS >/dev/null 2>&1; } ||
		echo "bench: apt-get install $PEER_PKGS failed; peers are skipped"
	if [ "$made" = yes ]; then rm -f "$policy"; fi
}

if ! have_peers; then
	if [ "$(id -u)" = 0 ]; then
		echo "bench: installing the peers from Debian: $PEER_PKGS"
		install_peers
	else
		echo "bench: not root, so the peers are not installed and are" \
		     "skipped (as root: apt-get install -y $PEER_PKGS)"
	fi
fi

exec /usr/bin/python3 -B bench/bench.py "$@"
