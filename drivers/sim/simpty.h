/* simpty — the simulated modem's end of a pseudo-terminal, on libev.
 *
 * simpty_open() creates a pty (posix_openpt, grantpt, unlockpt), puts the
 * slave in raw mode, and, with a link path, points a symlink there
 * (atomically replacing a stale one; a path that exists and is not a
 * symlink is refused). The client (the daemon, gammu, a test) opens the
 * slave path as it would a serial port.
 *
 * We keep a slave fd open ourselves for as long as the pty lives: without
 * it the master reads EIO and polls HUP whenever no client has the slave
 * open, and an ev_io would spin. With it the master simply sees no data
 * between clients, and idles at 0% CPU. (Output written while no client
 * listens waits in the tty buffer, as it would in a USB modem's.)
 *
 * Output is written whole; what the kernel does not take right away is
 * buffered (up to 1 MiB, then dropped and counted) and written from an
 * EV_WRITE watcher. Reads come in chunks of up to 4 KiB. */
#ifndef SMSGW_SIMPTY_H
#define SMSGW_SIMPTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct simpty;

/* Bytes the client wrote; borrowed for the call. The callback may call
 * simpty_close() on the pty it came from. */
typedef void (*simpty_read_fn)(void *user, const char *buf, size_t len);

/* link may be NULL (no symlink); it is copied. Nothing is opened yet. */
struct simpty *simpty_new(struct ev_loop *loop, const char *link,
			  simpty_read_fn cb, void *user);

/* Closes the pty and removes the link (if it still points to our pty).
 * Accepts NULL. */
void simpty_free(struct simpty *p);

/* Creates a new pty (and link). Returns 0, -EALREADY when open, -EEXIST
 * when the link path is not a symlink, or another -errno. */
int simpty_open(struct simpty *p);

/* "Unplugs": closes both sides (the client reads EOF/EIO) and removes the
 * link. Pending output is discarded. No-op when closed. */
void simpty_close(struct simpty *p);

bool simpty_is_open(const struct simpty *p);

/* The slave path ("/dev/pts/7"), "" when closed. */
const char *simpty_path(const struct simpty *p);

/* Queues output; dropped silently when closed. */
void simpty_write(struct simpty *p, const char *buf, size_t len);

/* Output bytes dropped because the client did not read (buffer full). */
uint64_t simpty_dropped(const struct simpty *p);

#endif
