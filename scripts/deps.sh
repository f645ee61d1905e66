#!/bin/sh
# Installs the Debian packages smsgw needs to build, test, fuzz and run its demo.
# As root it installs what is missing; otherwise it prints the exact command.
set -eu

PACKAGES="build-essential pkg-config
libserialport-dev libsqlite3-dev libsodium-dev libev-dev libjansson-dev
libinih-dev libcmocka-dev libacl1-dev
clang python3 sqlite3 gammu python3-gammu
systemd udev man-db groff-base"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "smsgw needs these Debian packages; install them as root with:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
