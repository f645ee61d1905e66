/* simctl — the simulated modem's control socket: a Unix SOCK_STREAM
 * socket speaking JSON lines, for tests, the demo and the daemon's test
 * suite. One request object per line, one response line per request:
 *
 *   {"op": "stats", "id": 3}      ->  {"id": 3, "ok": true, "stats": {..}}
 *   {"op": "nope"}                ->  {"ok": false, "error": "unknown op"}
 *
 * "id" is optional and echoed back. The ops (see the table in simctl.c):
 *   inject  {from, text, shift?, class?}  -> {parts}: an inbound SMS now
 *   unplug / replug                        -> {pty}: pty gone / back
 *   hang / unhang                          the firmware stops / resumes
 *   reset                                  a reboot as AT+CFUN=1,1
 *   network {registered: bool}             the network goes / comes back
 *   urc     {line}                         one raw unsolicited line
 *   set     {send_delay?, report_delay?, fail_rate?,
 *            permanent_fail?: [..], undeliverable?: [..]}  -> the faults
 *   stats                                  -> {stats: {counters..}}
 *   storage                                -> {messages: [{index, stat,
 *                                              pdu}]}
 * Lines are capped at 64 KiB; a client that sends more, or stops reading
 * its answers, is dropped. */
#ifndef SMSGW_SIMCTL_H
#define SMSGW_SIMCTL_H

#include <stddef.h>

struct ev_loop;
struct simmodem;
struct simctl;

/* What the socket cannot do on the modem alone: the pty. */
struct simctl_hooks {
	void *user;
	int (*unplug)(void *user);         /* 0 or -errno */
	int (*replug)(void *user);         /* 0 or -errno */
	const char *(*pty_path)(void *user); /* "" while unplugged */
};

/* Listens on path (a stale socket there is replaced). Returns NULL with
 * the reason in err. */
struct simctl *simctl_new(struct ev_loop *loop, const char *path,
			  struct simmodem *m, const struct simctl_hooks *hooks,
			  char *err, size_t errlen);

/* Closes every client and the socket, and unlinks the path. NULL ok. */
void simctl_free(struct simctl *c);

#endif
