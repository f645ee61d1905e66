/* notify — the sd_notify(3) protocol, spoken directly.
 *
 * systemd passes NOTIFY_SOCKET (a Unix datagram socket, "@" for the abstract
 * namespace) and, with WatchdogSec=, WATCHDOG_USEC (+ WATCHDOG_PID). The
 * protocol is one datagram of "KEY=VALUE\n" lines; that is all this does, so
 * libsystemd is not needed. Without NOTIFY_SOCKET every call is a no-op. */
#ifndef SMSGW_NOTIFY_H
#define SMSGW_NOTIFY_H

#include <stdint.h>

struct notify;

/* Reads the environment; returns NULL only on allocation failure. */
struct notify *notify_new(void);
void notify_free(struct notify *n);

/* Sends one datagram, e.g. "READY=1\nSTATUS=2 modems ready". Returns 0,
 * or -errno (ignored by callers: the service manager may be gone). */
int notify_send(struct notify *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The watchdog interval in microseconds systemd asked for (0: none).
 * Callers ping at half of it. */
uint64_t notify_watchdog_usec(const struct notify *n);

#endif
