/* ctlclient — see ctlclient.h. */
#include "daemon/ctlclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTLC_LINE_MAX (64u * 1024 * 1024) /* longest answer accepted */
#define CTLC_READ_CHUNK 65536

struct ctlc {
	int fd;
	json_int_t next_id;
	char *buf;  /* received, not yet returned; buf[0..len) */
	size_t len, cap;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none), for poll(). */
static int left_ms(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left < 0 ? 0 : (int)left;
}

/* connect() without blocking: a Unix socket whose backlog is full answers
 * EAGAIN at once, so that is retried (every 10 ms) until the deadline. */
static int connect_by(int fd, const struct sockaddr_un *sa, long long deadline)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (deadline >= 0 && now_ms() >= deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, 10);
	}
}

struct ctlc *ctlc_open(const char *path, int timeout_ms, char *err,
		       size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	struct ctlc *c;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "cannot connect to %s: path too long",
			 path);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	r = fd < 0 ? -errno : connect_by(fd, &sa, deadline);
	if (r < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", path,
			 r == -ETIMEDOUT ? "the server is not accepting"
					 : strerror(-r));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->next_id = 1;
	return c;
}

void ctlc_free(struct ctlc *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

void ctlc_resp_clear(struct ctlc_resp *resp)
{
	json_decref(resp->raw);
	memset(resp, 0, sizeof(*resp));
}

const char *ctlc_strerror(int err)
{
	switch (err) {
	case -ETIMEDOUT: return "no answer within the timeout";
	case -ECONNRESET: return "the server closed the connection";
	case -EPROTO: return "the server sent something that is not JSON";
	case -E2BIG: return "the server sent an oversized line";
	default: return strerror(-err);
	}
}

/* Writes all of p before the deadline. */
static int write_all(int fd, const char *p, size_t n, long long deadline)
{
	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t w;
		int r = poll(&pf, 1, left_ms(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more into c->buf, waiting until the deadline. */
static int read_more(struct ctlc *c, long long deadline)
{
	struct pollfd pf = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (c->len + CTLC_READ_CHUNK > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : CTLC_READ_CHUNK * 2;
		char *p;

		if (cap > CTLC_LINE_MAX + CTLC_READ_CHUNK)
			return -E2BIG;
		p = realloc(c->buf, cap);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = cap;
	}
	do {
		r = poll(&pf, 1, left_ms(deadline));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	return 0;
}

/* The next line as a JSON object, before the deadline. */
static int next_line(struct ctlc *c, long long deadline, json_t **msg)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		json_t *j;
		size_t n;
		int r;

		if (nl) {
			n = (size_t)(nl - c->buf);
			j = json_loadb(c->buf, n, JSON_REJECT_DUPLICATES, NULL);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (!json_is_object(j)) {
				json_decref(j);
				return -EPROTO;
			}
			*msg = j;
			return 0;
		}
		r = read_more(c, deadline);
		if (r < 0)
			return r;
	}
}

int ctlc_next(struct ctlc *c, int timeout_ms, json_t **msg)
{
	return next_line(c, timeout_ms < 0 ? -1 : now_ms() + timeout_ms, msg);
}

/* Splits an answer into resp's fields; takes raw. */
static void resp_fill(struct ctlc_resp *resp, json_t *raw)
{
	json_t *err = json_object_get(raw, "error");

	memset(resp, 0, sizeof(*resp));
	resp->raw = raw;
	resp->ok = json_is_true(json_object_get(raw, "ok"));
	if (resp->ok) {
		resp->result = json_object_get(raw, "result");
		if (!resp->result) {
			json_object_set_new(raw, "result", json_object());
			resp->result = json_object_get(raw, "result");
		}
		return;
	}
	resp->code = json_string_value(json_object_get(err, "code"));
	resp->message = json_string_value(json_object_get(err, "message"));
	if (!resp->code)
		resp->code = "";
	if (!resp->message)
		resp->message = "";
}

static int send_request(struct ctlc *c, const char *op, json_t *args,
			json_int_t id, long long deadline)
{
	json_t *req = json_pack("{s:I, s:s}", "id", id, "op", op);
	char *line;
	size_t len;
	int r;

	if (req && args)
		json_object_set(req, "args", args);
	line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!line)
		return -ENOMEM;
	len = strlen(line);
	line[len] = '\n'; /* over the NUL: the length is known */
	r = write_all(c->fd, line, len + 1, deadline);
	explicit_bzero(line, len + 1);
	free(line);
	return r;
}

/* Is msg the answer to request id? One request is in flight at a time,
 * so an error with a null id (the server could not read ours: a line too
 * long) is ours too. */
static bool answers(json_t *msg, json_int_t id)
{
	json_t *mid = json_object_get(msg, "id"), *ok = json_object_get(msg, "ok");

	if (!json_is_boolean(ok))
		return false;
	if (json_is_integer(mid))
		return json_integer_value(mid) == id;
	return json_is_null(mid) && json_is_false(ok);
}

int ctlc_call(struct ctlc *c, const char *op, json_t *args, int timeout_ms,
	      struct ctlc_resp *resp)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	json_int_t id = c->next_id++;
	json_t *msg;
	int r;

	r = send_request(c, op, args, id, deadline);
	json_decref(args);
	while (r == 0) {
		r = next_line(c, deadline, &msg);
		if (r < 0)
			break;
		if (answers(msg, id)) {
			resp_fill(resp, msg);
			return 0;
		}
		json_decref(msg); /* an event, or a stale answer */
	}
	return r;
}
