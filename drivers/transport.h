/* transport — the byte pipe to one modem: a serial port or a pty.
 *
 * Real ports go through libserialport (the only file that includes it);
 * pseudo-terminals (the simulator, socat/ser2net bridges) are opened with
 * plain termios because Debian 12's libserialport 0.1.1 cannot open them
 * (sp_get_port_by_name("/dev/pts/N") fails). Either way the caller gets a
 * non-blocking, close-on-exec fd to watch with libev.
 *
 * Every open is exclusive: TIOCEXCL for other openers, plus
 * flock(LOCK_EX|LOCK_NB), which holds even against root, so a second smsgwd
 * on the same port is refused with an error that names the port. */
#ifndef SMSGW_TRANSPORT_H
#define SMSGW_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TRANSPORT_ERR_MAX 256
#define TRANSPORT_DEFAULT_BAUD 115200

enum transport_flow {
	TRANSPORT_FLOW_NONE,
	TRANSPORT_FLOW_RTSCTS,
	TRANSPORT_FLOW_XONXOFF,
};

/* "none", "rtscts", "xonxoff" (also "hardware"/"software"). Returns 0 or
 * -EINVAL. */
int transport_flow_parse(const char *name, enum transport_flow *out);
const char *transport_flow_name(enum transport_flow flow);

/* True when baud is a rate both termios and the modems accept. */
bool transport_baud_valid(int baud);

struct transport;

/* Opens `device`: a path ("/dev/ttyUSB2", "/dev/serial/by-id/...",
 * "/dev/pts/5" or a symlink to it) or "usb:VID:PID[:SERIAL]" (hex VID/PID,
 * the first matching port, resolved at every open so a modem that comes
 * back under another ttyUSB number is found). Sets baud (0: 115200), 8N1
 * and `flow`. Returns 0 and *out, or -errno with a message naming the port
 * in err: -ENOENT (no such port / no USB match), -EBUSY (already in use),
 * -EINVAL (bad "usb:" syntax, bad baud), -ENOTTY (not a terminal), ... */
int transport_open(const char *device, int baud, enum transport_flow flow,
		   struct transport **out, char *err, size_t errlen);

/* Checks a device spec without touching the system: non-empty, and a
 * "usb:" spec well-formed. Returns 0 or -EINVAL with the reason in err. */
int transport_device_check(const char *device, char *err, size_t errlen);

/* Closes the port and drops the lock. Accepts NULL. */
void transport_close(struct transport *t);

/* The non-blocking fd to watch; owned by the transport. */
int transport_fd(const struct transport *t);

/* The path actually opened (a "usb:" spec resolved to its /dev node). */
const char *transport_path(const struct transport *t);

/* True when the port was opened with termios (a pty), not libserialport. */
bool transport_is_pty(const struct transport *t);

/* `smsgwd --list-ports`: one block per serial port with its USB VID:PID,
 * interface, serial, manufacturer/product and a guess whether it is a
 * modem's AT port. Returns the number of ports listed, or -errno. */
int transport_list_ports(FILE *out);

/* The AT-port guess for one USB interface (used by the listing, exposed for
 * tests): returns a short reason ("Quectel EC25/EG25 AT port") when the
 * VID:PID and interface number (-1 unknown) are a known modem AT port or
 * the product string names a modem, else NULL. */
const char *transport_guess_at_port(int vid, int pid, int iface,
				    const char *product);

#endif
