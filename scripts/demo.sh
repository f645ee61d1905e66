#!/bin/sh
# make demo: runs what exists of smsgw on the simulated modem and says what
# does not exist yet. Never pretends.
set -u
cd "$(dirname "$0")/.."
B=${B:-build/release}
mkdir -p var

missing=""
for bin in smsgwd smsgwctl smsgw-pdu smsgw-modemsim; do
	[ -x "$B/$bin" ] || missing="$missing $bin"
done
if [ -n "$missing" ]; then
	echo "demo: not built yet:$missing" >&2
fi

if [ -x "$B/smsgw-pdu" ]; then
	echo "== smsgw-pdu: encode an SMS the way smsgwd sends it"
	"$B/smsgw-pdu" encode --to +34600111222 --text "ACME Plant 3: Ana, your recovery code is 7K3M-9QXD-2P. It works once."
fi

if [ -x "$B/smsgwd" ]; then
	echo "== smsgwd --check-config config/demo.conf"
	"$B/smsgwd" -c config/demo.conf --check-config || exit 1
fi
