/* simpty — see simpty.h. */
#include "drivers/sim/simpty.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define READ_CHUNK 4096
#define PENDING_MAX (1u << 20)
#define EIO_RETRY 0.5 /* seconds between reads after an unexpected EIO */

struct simpty {
	struct ev_loop *loop;
	char *link;          /* symlink path, NULL for none */
	simpty_read_fn cb;
	void *user;
	int master;          /* -1 while closed (unplugged) */
	int slave;           /* our own slave fd: keeps the master from EIO */
	char path[64];       /* slave path, "" while closed */
	ev_io rio, wio;
	ev_timer retry;      /* restarts rio after an EIO */
	char *pend;          /* output the kernel did not take yet */
	size_t pend_len, pend_cap;
	uint64_t dropped;
};

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_retry(struct ev_loop *loop, ev_timer *w, int revents);

struct simpty *simpty_new(struct ev_loop *loop, const char *link,
			  simpty_read_fn cb, void *user)
{
	struct simpty *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->loop = loop;
	p->cb = cb;
	p->user = user;
	p->master = p->slave = -1;
	if (link && !(p->link = strdup(link))) {
		free(p);
		return NULL;
	}
	ev_init(&p->rio, on_read);
	ev_init(&p->wio, on_write);
	ev_timer_init(&p->retry, on_retry, EIO_RETRY, 0.);
	p->rio.data = p->wio.data = p->retry.data = p;
	return p;
}

void simpty_free(struct simpty *p)
{
	if (!p)
		return;
	simpty_close(p);
	free(p->pend);
	free(p->link);
	free(p);
}

/* Points p->link at p->path through a temporary name and rename(2), so
 * a reader never sees the link missing or half-made. */
static int link_create(struct simpty *p)
{
	struct stat st;
	char *tmp;
	int rc = 0;

	if (!p->link)
		return 0;
	if (lstat(p->link, &st) == 0 && !S_ISLNK(st.st_mode))
		return -EEXIST;
	if (asprintf(&tmp, "%s.%ld.tmp", p->link, (long)getpid()) < 0)
		return -ENOMEM;
	unlink(tmp);
	if (symlink(p->path, tmp) < 0 || rename(tmp, p->link) < 0) {
		rc = -errno;
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

/* Removes the link only while it still points at our pty: another
 * simulator may have taken the path over since. */
static void link_remove(struct simpty *p)
{
	char target[sizeof(p->path)];
	ssize_t n;

	if (!p->link || p->path[0] == '\0')
		return;
	n = readlink(p->link, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	if (strcmp(target, p->path) == 0)
		unlink(p->link);
}

/* Raw 8-bit slave settings, so that a client that does not set its own
 * (cat, screen) still gets the bytes unchanged and no tty echo. */
static int slave_open_raw(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		cfsetspeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

int simpty_open(struct simpty *p)
{
	int m, s, rc;

	if (p->master >= 0)
		return -EALREADY;
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (grantpt(m) < 0 || unlockpt(m) < 0 ||
	    fcntl(m, F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		goto close_master;
	}
	rc = -ptsname_r(m, p->path, sizeof(p->path));
	if (rc < 0)
		goto close_master;
	s = slave_open_raw(p->path);
	if (s < 0) {
		rc = s;
		goto close_master;
	}
	p->master = m;
	p->slave = s;
	rc = link_create(p);
	if (rc < 0) {
		p->path[0] = '\0';
		simpty_close(p);
		return rc;
	}
	ev_io_set(&p->rio, m, EV_READ);
	ev_io_set(&p->wio, m, EV_WRITE);
	ev_io_start(p->loop, &p->rio);
	return 0;

close_master:
	p->path[0] = '\0';
	close(m);
	return rc;
}

void simpty_close(struct simpty *p)
{
	if (p->master < 0)
		return;
	ev_io_stop(p->loop, &p->rio);
	ev_io_stop(p->loop, &p->wio);
	ev_timer_stop(p->loop, &p->retry);
	link_remove(p);
	close(p->master);
	close(p->slave);
	p->master = p->slave = -1;
	p->path[0] = '\0';
	p->pend_len = 0;
}

bool simpty_is_open(const struct simpty *p)
{
	return p->master >= 0;
}

const char *simpty_path(const struct simpty *p)
{
	return p->path;
}

uint64_t simpty_dropped(const struct simpty *p)
{
	return p->dropped;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct simpty *p = w->data;
	char buf[READ_CHUNK];
	ssize_t n;

	(void)revents;
	n = read(p->master, buf, sizeof(buf));
	if (n > 0) {
		p->cb(p->user, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EIO means no slave is open, which our own slave fd prevents; if
	 * it happens anyway, back off instead of spinning on it. */
	ev_io_stop(loop, &p->rio);
	ev_timer_start(loop, &p->retry);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct simpty *p = w->data;

	(void)revents;
	if (p->master >= 0)
		ev_io_start(loop, &p->rio);
}

static void pend_append(struct simpty *p, const char *buf, size_t len)
{
	size_t cap = p->pend_cap ? p->pend_cap : READ_CHUNK;
	char *n;

	if (p->pend_len + len > PENDING_MAX) {
		p->dropped += len;
		return;
	}
	while (cap < p->pend_len + len)
		cap *= 2;
	if (cap != p->pend_cap) {
		n = realloc(p->pend, cap);
		if (!n) {
			p->dropped += len;
			return;
		}
		p->pend = n;
		p->pend_cap = cap;
	}
	memcpy(p->pend + p->pend_len, buf, len);
	p->pend_len += len;
}

void simpty_write(struct simpty *p, const char *buf, size_t len)
{
	ssize_t n;

	if (p->master < 0 || len == 0)
		return;
	if (p->pend_len == 0) {
		n = write(p->master, buf, len);
		if (n < 0)
			n = 0; /* EAGAIN (buffer full); anything else retries */
		buf += n;
		len -= (size_t)n;
		if (len == 0)
			return;
	}
	pend_append(p, buf, len);
	if (p->pend_len > 0)
		ev_io_start(p->loop, &p->wio);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct simpty *p = w->data;
	ssize_t n;

	(void)revents;
	n = write(p->master, p->pend, p->pend_len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		p->dropped += p->pend_len;
		n = (ssize_t)p->pend_len;
	}
	memmove(p->pend, p->pend + n, p->pend_len - (size_t)n);
	p->pend_len -= (size_t)n;
	if (p->pend_len == 0)
		ev_io_stop(loop, &p->wio);
}
