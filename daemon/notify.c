/* notify — see notify.h. */
#include "daemon/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_TRIES 20

struct notify {
	int fd;                  /* -1 when NOTIFY_SOCKET is unset */
	struct sockaddr_un addr;
	socklen_t addrlen;
	uint64_t watchdog_usec;
};

static void notify_read_watchdog(struct notify *n)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");

	if (!usec)
		return;
	/* WATCHDOG_PID names the process meant; a child must not ping. */
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return;
	n->watchdog_usec = strtoull(usec, NULL, 10);
}

static int notify_open(struct notify *n, const char *path)
{
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(n->addr.sun_path))
		return -EINVAL;
	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0';
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return n->fd < 0 ? -errno : 0;
}

struct notify *notify_new(void)
{
	struct notify *n = calloc(1, sizeof(*n));
	const char *path = getenv("NOTIFY_SOCKET");

	if (!n)
		return NULL;
	n->fd = -1;
	if (path && notify_open(n, path) < 0)
		n->fd = -1;
	notify_read_watchdog(n);
	return n;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

int notify_send(struct notify *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int len;

	if (!n || n->fd < 0)
		return 0;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -EMSGSIZE;
	/* The manager's queue may be full for a moment (it reads it in its own
	 * time): retry briefly rather than lose READY=1 or STOPPING=1. The
	 * wait is bounded (NOTIFY_TRIES x 5 ms). */
	for (int i = 0; i < NOTIFY_TRIES; i++) {
		if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL,
			   (struct sockaddr *)&n->addr, n->addrlen) >= 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	return -EAGAIN;
}

uint64_t notify_watchdog_usec(const struct notify *n)
{
	return n ? n->watchdog_usec : 0;
}
