/* Tests for daemon/ctl: the control socket server, driven through real Unix
 * sockets on a private libev loop. Clients live in this process as
 * non-blocking sockets read by the same loop (so nothing can deadlock), and
 * in forked children where the test needs another uid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/log.h"
#include "daemon/version.h"

#define WAIT_SECS 10.0
#define MAX_ASYNC 256

/* --- harness ---------------------------------------------------------------- */

struct fix {
	struct ev_loop *loop;
	struct ctl_server *srv;
	char dir[64];
	char path[100];
	struct ctl_req *async[MAX_ASYNC]; /* held by test.async */
	size_t nasync;
};

/* A client socket in this process; what arrives is kept in `in`. */
struct tc {
	struct fix *f;
	int fd;
	ev_io rio;
	char *in;
	size_t len, cap;
	size_t total; /* bytes received in all */
	bool eof;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void noop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Runs the loop for one round of events, at most max seconds. */
static void pump(struct ev_loop *loop, double max)
{
	ev_timer t;

	ev_timer_init(&t, noop_cb, max, 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
}

#define WAIT_UNTIL(f, cond)                                                  \
	do {                                                                 \
		double dl_ = now() + WAIT_SECS;                              \
		while (!(cond) && now() < dl_)                               \
			pump((f)->loop, 0.02);                               \
	} while (0)

static void tc_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tc *c = w->data;
	char buf[65536];
	ssize_t n;

	(void)revents;
	n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->eof = true;
		ev_io_stop(loop, w);
		return;
	}
	if (c->len + (size_t)n > c->cap) {
		c->cap = (c->len + (size_t)n) * 2;
		c->in = realloc(c->in, c->cap);
		assert_non_null(c->in);
	}
	memcpy(c->in + c->len, buf, (size_t)n);
	c->len += (size_t)n;
	c->total += (size_t)n;
}

static int tc_connect_fd(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A connected client; `reading` false leaves its socket unread. */
static struct tc *tc_new(struct fix *f, bool reading)
{
	struct tc *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->f = f;
	c->fd = tc_connect_fd(f->path);
	assert_true(c->fd >= 0);
	ev_io_init(&c->rio, tc_read_cb, c->fd, EV_READ);
	c->rio.data = c;
	if (reading)
		ev_io_start(f->loop, &c->rio);
	return c;
}

static void tc_free(struct tc *c)
{
	if (!c)
		return;
	ev_io_stop(c->f->loop, &c->rio);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c);
}

/* Writes all of p, letting the server read meanwhile. */
static void tc_send_n(struct tc *c, const char *p, size_t n)
{
	double dl = now() + 60;

	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		assert_true(w < 0 && errno == EAGAIN);
		assert_true(now() < dl);
		pump(c->f->loop, 0.01);
	}
}

static void tc_send(struct tc *c, const char *s)
{
	tc_send_n(c, s, strlen(s));
}

static size_t tc_lines(const struct tc *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->len; i++)
		n += c->in[i] == '\n';
	return n;
}

/* Waits for the next line and parses it; fails the test on timeout. */
static json_t *tc_recv(struct tc *c)
{
	json_error_t jerr;
	char *nl;
	json_t *j;
	size_t n;

	WAIT_UNTIL(c->f, (c->len && memchr(c->in, '\n', c->len)) || c->eof);
	nl = c->len ? memchr(c->in, '\n', c->len) : NULL;
	assert_non_null(nl);
	n = (size_t)(nl - c->in);
	j = json_loadb(c->in, n, 0, &jerr);
	if (!j)
		fail_msg("bad line from server: %s (%.*s)", jerr.text, (int)n,
			 c->in);
	memmove(c->in, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	return j;
}

/* Asserts that j is an error response with code and the given id. */
static void assert_error(json_t *j, const char *code, json_t *id)
{
	json_t *got = json_object_get(j, "id");

	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "error"), "code")),
			    code);
	assert_non_null(json_string_value(
		json_object_get(json_object_get(j, "error"), "message")));
	assert_non_null(got);
	assert_true(json_equal(got, id ? id : json_null()));
}

static void assert_error_i(json_t *j, const char *code, int id)
{
	json_t *idj = json_integer(id);

	assert_error(j, code, idj);
	json_decref(idj);
}

static void assert_ok_id(json_t *j, json_int_t id)
{
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "id")), id);
}

/* Sends a ping with id and checks the answer. */
static void ping_ok(struct tc *c, int id)
{
	char line[64];
	json_t *j;

	snprintf(line, sizeof(line), "{\"id\":%d,\"op\":\"ping\"}\n", id);
	tc_send(c, line);
	j = tc_recv(c);
	assert_ok_id(j, id);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "result"), "version")),
			    SMSGW_VERSION);
	json_decref(j);
}

/* --- test ops ------------------------------------------------------------- */

static void op_echo(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:O, s:s, s:I}", "args", args, "role",
				    ctl_role_name(ctl_req_role(req)), "uid",
				    (json_int_t)ctl_req_peer_uid(req)));
}

static void op_admin(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:s}", "op", ctl_req_op(req)));
}

static void op_fail(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_err(req, CTL_ERR_NOT_FOUND, "no such %s", "thing");
}

/* Keeps the request: the test answers it later. */
static void op_async(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fix *f = ctx;

	(void)args;
	assert_true(f->nasync < MAX_ASYNC);
	f->async[f->nasync++] = req;
}

/* A 200 KB result, to fill a client's output quickly. */
static void op_big(struct ctl_req *req, json_t *args, void *ctx)
{
	static char blob[200001];

	(void)args;
	(void)ctx;
	memset(blob, 'b', sizeof(blob) - 1);
	ctl_reply_ok(req, json_pack("{s:s}", "data", blob));
}

static const struct ctl_op test_ops[] = {
	{ "test.echo", op_echo, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "test.admin", op_admin, CTL_ROLE_ADMIN },
	{ "test.fail", op_fail, CTL_ROLE_ANY },
	{ "test.async", op_async, CTL_ROLE_ANY },
	{ "test.big", op_big, CTL_ROLE_ANY },
};

static struct ctl_server *server_with(struct fix *f,
				      const struct ctl_server_opts *o)
{
	char err[256] = "";
	struct ctl_server *s = ctl_server_new(f->loop, o, err, sizeof(err));

	if (!s)
		fail_msg("ctl_server_new: %s", err);
	assert_int_equal(ctl_register(s, test_ops,
				      sizeof(test_ops) / sizeof(test_ops[0]),
				      f),
			 0);
	return s;
}

static void fix_opts(struct fix *f, struct ctl_server_opts *o)
{
	ctl_server_opts_default(o);
	o->path = f->path;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct ctl_server_opts o;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ctl.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	fix_opts(f, &o);
	f->srv = server_with(f, &o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	ctl_server_free(f->srv);
	/* Requests still held are detached: answering only frees them. */
	for (size_t i = 0; i < f->nasync; i++)
		ctl_reply_ok(f->async[i], NULL);
	ev_loop_destroy(f->loop);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- tests ------------------------------------------------------------------ */

static void test_ping(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);

	ping_ok(c, 1);
	ping_ok(c, 2);
	assert_int_equal(ctl_server_client_count(f->srv), 1);
	tc_free(c);
	WAIT_UNTIL(f, ctl_server_client_count(f->srv) == 0);
	assert_int_equal(ctl_server_client_count(f->srv), 0);
}

/* Many requests in one write; each answer carries its own id, in order. */
static void test_pipelined(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	const char *batch =
		"{\"id\":1,\"op\":\"ping\"}\n"
		"{\"id\":\"two\",\"op\":\"test.echo\",\"args\":{\"k\":[1,2]}}\r\n"
		"\n"
		"{\"id\":3.5,\"op\":\"test.fail\"}\n"
		"{\"id\":true,\"op\":\"ping\",\"args\":null}\n"
		"{\"op\":\"ping\"}\n"
		"{\"id\":null,\"op\":\"test.admin\"}\n";
	json_t *j, *id;

	tc_send(c, batch);
	j = tc_recv(c);
	assert_ok_id(j, 1);
	json_decref(j);
	j = tc_recv(c);
	assert_string_equal(json_string_value(json_object_get(j, "id")), "two");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(
				 json_object_get(json_object_get(j, "result"),
						 "args"),
				 "k"), 1)),
			 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "result"), "role")),
			    "admin");
	json_decref(j);
	j = tc_recv(c);
	id = json_real(3.5);
	assert_error(j, "not_found", id);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "error"), "message")),
			    "no such thing");
	json_decref(id);
	json_decref(j);
	j = tc_recv(c);
	assert_true(json_is_true(json_object_get(j, "id")));
	json_decref(j);
	j = tc_recv(c);
	assert_true(json_is_null(json_object_get(j, "id")));
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	j = tc_recv(c);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "result"), "op")),
			    "test.admin");
	json_decref(j);
	/* 200 more, to cross the read chunking. */
	for (int i = 0; i < 200; i++) {
		char line[64];

		snprintf(line, sizeof(line), "{\"id\":%d,\"op\":\"ping\"}\n",
			 1000 + i);
		tc_send(c, line);
	}
	for (int i = 0; i < 200; i++) {
		j = tc_recv(c);
		assert_ok_id(j, 1000 + i);
		json_decref(j);
	}
	tc_free(c);
}

/* A request nested `depth` levels deep: the request object, its args
 * object, then arrays. */
static char *deep_request(int depth)
{
	size_t n = (size_t)depth * 2 + 64;
	char *s = malloc(n);
	size_t off;

	assert_non_null(s);
	off = (size_t)snprintf(s, n, "{\"id\":9,\"op\":\"test.echo\","
				     "\"args\":{\"a\":");
	for (int i = 0; i < depth - 2; i++)
		s[off++] = '[';
	for (int i = 0; i < depth - 2; i++)
		s[off++] = ']';
	snprintf(s + off, n - off, "}}\n");
	return s;
}

/* Each malformed line gets bad_request, with the id when it can be read,
 * and the connection keeps working. */
static void test_bad_requests(void **state)
{
	static const struct {
		const char *line;
		int id; /* -1: null */
	} cases[] = {
		{ "not json\n", -1 },
		{ "{\"id\":1,\"op\":\"ping\"\n", -1 },
		{ "[1,2]\n", -1 },
		{ "42\n", -1 },
		{ "\"ping\"\n", -1 },
		{ "{\"id\":2,\"op\":\"p\xff\xfe\"}\n", -1 },
		{ "{\"id\":3,\"op\":\"\xc0\xaf\"}\n", -1 },
		{ "{\"id\":4,\"op\":\"ping\",\"op\":\"ping\"}\n", -1 },
		{ "{\"id\":[5],\"op\":\"ping\"}\n", -1 },
		{ "{\"id\":{\"a\":1},\"op\":\"ping\"}\n", -1 },
		{ "{\"id\":6}\n", 6 },
		{ "{\"id\":7,\"op\":7}\n", 7 },
		{ "{\"id\":8,\"op\":\"ping\",\"args\":[1]}\n", 8 },
		{ "{\"id\":9,\"op\":\"ping\",\"args\":\"x\"}\n", 9 },
		{ "{\"id\":10,\"op\":\"ping\",\"x\":\"\\ud800\"}\n", -1 },
	};
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	char *deep;
	json_t *j;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *id = cases[i].id < 0 ? NULL
					     : json_integer(cases[i].id);

		tc_send(c, cases[i].line);
		j = tc_recv(c);
		assert_error(j, "bad_request", id);
		json_decref(id);
		json_decref(j);
	}
	/* Nesting: 33 levels refused before parsing, 32 accepted. */
	deep = deep_request(33);
	tc_send(c, deep);
	free(deep);
	j = tc_recv(c);
	assert_error(j, "bad_request", NULL);
	json_decref(j);
	deep = deep_request(32);
	tc_send(c, deep);
	free(deep);
	j = tc_recv(c);
	assert_ok_id(j, 9);
	json_decref(j);
	/* Brackets inside strings do not count. */
	tc_send(c, "{\"id\":11,\"op\":\"test.echo\",\"args\":{\"s\":"
		   "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}}\n");
	j = tc_recv(c);
	assert_ok_id(j, 11);
	json_decref(j);
	ping_ok(c, 12);
	tc_free(c);
}

/* A line of max_line bytes is served; one byte more is refused without
 * closing the connection. */
static void test_too_large(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	size_t max = CTL_DEFAULT_MAX_LINE;
	char *line = malloc(max + 2);
	const char *head = "{\"id\":5,\"op\":\"ping\",\"pad\":\"";
	json_t *j;

	assert_non_null(line);
	for (int extra = 0; extra <= 1; extra++) {
		size_t len = max + (size_t)extra;

		memset(line, 'x', len);
		memcpy(line, head, strlen(head));
		memcpy(line + len - 2, "\"}", 2);
		line[len] = '\n';
		tc_send_n(c, line, len + 1);
		j = tc_recv(c);
		if (extra == 0)
			assert_ok_id(j, 5);
		else
			assert_error(j, "request_too_large", NULL);
		json_decref(j);
	}
	ping_ok(c, 6);
	/* Nothing else came: exactly one answer per line. */
	pump(f->loop, 0.05);
	assert_int_equal(c->len, 0);
	free(line);
	tc_free(c);
}

static size_t flood_peak;

/* Runs after every loop iteration: the most the server ever held. */
static void peak_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	const struct ctl_server *s = w->data;

	(void)loop;
	(void)revents;
	if (ctl_server_buffered_bytes(s) > flood_peak)
		flood_peak = ctl_server_buffered_bytes(s);
}

/* 10 MB without a newline: answered once, never buffered, and another
 * client is served meanwhile. */
static void test_flood_without_newline(void **state)
{
	struct fix *f = *state;
	struct tc *a = tc_new(f, true), *b = tc_new(f, true);
	size_t chunk = 256 * 1024, total = 10 * 1024 * 1024, sent = 0;
	char *junk = malloc(chunk);
	ev_check peak;
	json_t *j;
	int pings = 0;

	assert_non_null(junk);
	memset(junk, 'x', chunk);
	flood_peak = 0;
	ev_check_init(&peak, peak_cb);
	peak.data = f->srv;
	ev_check_start(f->loop, &peak);
	while (sent < total) {
		tc_send_n(a, junk, chunk);
		sent += chunk;
		pump(f->loop, 0.001);
		if (sent % (2 * 1024 * 1024) == 0)
			ping_ok(b, 100 + pings++);
	}
	/* Let the server drain what the socket still holds. */
	for (int i = 0; i < 50; i++)
		pump(f->loop, 0.001);
	ev_check_stop(f->loop, &peak);
	print_message("peak buffered: %zu bytes\n", flood_peak);
	/* The partial line was held (so the measure works), never more than
	 * max_line plus one read. */
	assert_true(flood_peak >= CTL_DEFAULT_MAX_LINE / 2);
	assert_true(flood_peak <= 256 * 1024);
	assert_int_equal(pings, 5);
	j = tc_recv(a);
	assert_error(j, "request_too_large", NULL);
	json_decref(j);
	/* The rest of the line is skipped; the next request is served. */
	tc_send(a, "yyyy\n{\"id\":77,\"op\":\"ping\"}\n");
	j = tc_recv(a);
	assert_ok_id(j, 77);
	json_decref(j);
	assert_int_equal(a->len, 0);
	ping_ok(b, 200);
	free(junk);
	tc_free(a);
	tc_free(b);
}

static int subscribe(struct tc *c, int id)
{
	char line[80];
	json_t *j;

	snprintf(line, sizeof(line), "{\"id\":%d,\"op\":\"events.subscribe\"}\n",
		 id);
	tc_send(c, line);
	j = tc_recv(c);
	assert_ok_id(j, id);
	json_decref(j);
	return 0;
}

/* Events go to subscribers only, with "event" first and not overridable. */
static void test_events(void **state)
{
	struct fix *f = *state;
	struct tc *sub = tc_new(f, true), *other = tc_new(f, true);
	json_t *j;

	subscribe(sub, 1);
	assert_int_equal(ctl_server_subscriber_count(f->srv), 1);
	assert_int_equal(ctl_broadcast_event(f->srv, "sms.delivered",
					     json_pack("{s:i, s:s}", "sms_id", 42,
						       "event", "forged")),
			 0);
	assert_int_equal(ctl_broadcast_event(f->srv, "modem.up", NULL), 0);
	assert_int_equal(ctl_broadcast_event(f->srv, "x", json_integer(1)),
			 -EINVAL);
	j = tc_recv(sub);
	assert_string_equal(json_string_value(json_object_get(j, "event")),
			    "sms.delivered");
	assert_int_equal(json_integer_value(json_object_get(j, "sms_id")), 42);
	assert_int_equal(json_object_size(j), 2);
	json_decref(j);
	j = tc_recv(sub);
	assert_string_equal(json_string_value(json_object_get(j, "event")),
			    "modem.up");
	json_decref(j);
	/* A subscriber still makes requests. */
	ping_ok(sub, 2);
	ping_ok(other, 3);
	pump(f->loop, 0.02);
	assert_int_equal(other->len, 0);
	tc_free(sub);
	WAIT_UNTIL(f, ctl_server_subscriber_count(f->srv) == 0);
	assert_int_equal(ctl_server_subscriber_count(f->srv), 0);
	tc_free(other);
}

/* A subscriber that stops reading is dropped at the output cap; a reading
 * one gets every event, and other clients are served. */
static void test_slow_subscriber_dropped(void **state)
{
	struct fix *f = *state;
	struct tc *good = tc_new(f, true), *slow = tc_new(f, true);
	struct tc *other = tc_new(f, true);
	size_t sent = 0, got = 0;
	int rounds = 0;
	json_t *j;

	subscribe(good, 1);
	subscribe(slow, 2);
	ev_io_stop(f->loop, &slow->rio); /* from now on slow never reads */
	while (ctl_server_subscriber_count(f->srv) == 2 && rounds++ < 2000) {
		for (int i = 0; i < 100; i++) {
			assert_int_equal(
				ctl_broadcast_event(
					f->srv, "test.tick",
					json_pack("{s:I, s:s}", "n",
						  (json_int_t)sent, "pad",
						  "................................"
						  "................................")),
				0);
			sent++;
		}
		pump(f->loop, 0.001);
	}
	print_message("slow subscriber dropped after %zu events\n", sent);
	assert_int_equal(ctl_server_subscriber_count(f->srv), 1);
	assert_int_equal(ctl_server_client_count(f->srv), 2);
	assert_true(ctl_server_buffered_bytes(f->srv) <
		    CTL_DEFAULT_MAX_OUTBUF + 65536);
	ping_ok(other, 3);
	/* The good one has every event, in order. */
	while (got < sent) {
		j = tc_recv(good);
		assert_int_equal(json_integer_value(json_object_get(j, "n")),
				 (json_int_t)got);
		json_decref(j);
		got++;
	}
	/* The slow one finds its stream cut short. */
	ev_io_start(f->loop, &slow->rio);
	WAIT_UNTIL(f, slow->eof);
	assert_true(slow->eof);
	assert_true(tc_lines(slow) < sent);
	tc_free(good);
	tc_free(slow);
	tc_free(other);
}

/* A requester that never reads its answers is dropped too, not buffered. */
static void test_nonreading_requester_dropped(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, false), *other = tc_new(f, true);
	int sent = 0;

	WAIT_UNTIL(f, ctl_server_client_count(f->srv) == 2);
	while (ctl_server_client_count(f->srv) == 2 && sent < 200) {
		tc_send(c, "{\"id\":1,\"op\":\"test.big\"}\n");
		sent++;
		pump(f->loop, 0.001);
	}
	assert_int_equal(ctl_server_client_count(f->srv), 1);
	assert_true(sent > 5); /* the kernel buffer + 1 MiB held first */
	ping_ok(other, 1);
	tc_free(c);
	tc_free(other);
}

static size_t count_answered(struct tc **c, size_t n)
{
	size_t answered = 0;

	for (size_t i = 0; i < n; i++)
		answered += tc_lines(c[i]) == 1;
	return answered;
}

static void test_many_clients(void **state)
{
	enum { N = 200 };
	struct fix *f = *state;
	struct tc *c[N];
	size_t answered = 0;

	for (int i = 0; i < N; i++)
		c[i] = tc_new(f, true);
	for (int i = 0; i < N; i++) {
		char line[64];

		snprintf(line, sizeof(line), "{\"id\":%d,\"op\":\"ping\"}\n", i);
		tc_send(c[i], line);
	}
	WAIT_UNTIL(f, (answered = count_answered(c, N)) == N);
	assert_int_equal(answered, N);
	assert_int_equal(ctl_server_client_count(f->srv), N);
	for (int i = 0; i < N; i++) {
		json_t *j = tc_recv(c[i]);

		assert_ok_id(j, i);
		json_decref(j);
		tc_free(c[i]);
	}
	WAIT_UNTIL(f, ctl_server_client_count(f->srv) == 0);
	assert_int_equal(ctl_server_client_count(f->srv), 0);
	assert_int_equal(ctl_server_buffered_bytes(f->srv), 0);
}

static void test_unknown_op(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	char line[400];
	json_t *j;
	const char *msg;

	tc_send(c, "{\"id\":1,\"op\":\"account.nope\"}\n");
	j = tc_recv(c);
	assert_error_i(j, "unknown_op", 1);
	msg = json_string_value(json_object_get(json_object_get(j, "error"),
						"message"));
	assert_non_null(strstr(msg, "account.nope"));
	/* It lists nothing: no other op name appears. */
	assert_null(strstr(msg, "ping"));
	assert_null(strstr(msg, "test."));
	json_decref(j);
	memset(line, 0, sizeof(line));
	snprintf(line, sizeof(line), "{\"id\":2,\"op\":\"%0200d\"}\n", 0);
	tc_send(c, line);
	j = tc_recv(c);
	assert_error_i(j, "unknown_op", 2);
	msg = json_string_value(json_object_get(json_object_get(j, "error"),
						"message"));
	assert_true(strlen(msg) < 100);
	json_decref(j);
	ping_ok(c, 3);
	tc_free(c);
}

/* An async request answered after later ones; its id routes it. */
static void test_async_out_of_order(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	json_t *j;

	tc_send(c, "{\"id\":\"slow\",\"op\":\"test.async\"}\n"
		   "{\"id\":2,\"op\":\"ping\"}\n");
	j = tc_recv(c);
	assert_ok_id(j, 2);
	json_decref(j);
	assert_int_equal(f->nasync, 1);
	assert_false(ctl_req_detached(f->async[0]));
	assert_string_equal(ctl_req_op(f->async[0]), "test.async");
	assert_int_equal(ctl_req_peer_uid(f->async[0]), getuid());
	assert_int_equal(ctl_req_peer_pid(f->async[0]), getpid());
	ctl_reply_ok(f->async[0], json_pack("{s:i}", "done", 1));
	f->nasync = 0;
	j = tc_recv(c);
	assert_string_equal(json_string_value(json_object_get(j, "id")),
			    "slow");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(j, "result"), "done")),
			 1);
	json_decref(j);
	tc_free(c);
}

/* The client goes away before the answer: the request is detached and the
 * late answer is dropped (ASan checks for use-after-free and leaks). */
static void test_async_client_gone(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);

	tc_send(c, "{\"id\":1,\"op\":\"test.async\"}\n"
		   "{\"id\":2,\"op\":\"test.async\"}\n");
	WAIT_UNTIL(f, f->nasync == 2);
	assert_int_equal(f->nasync, 2);
	tc_free(c);
	WAIT_UNTIL(f, ctl_server_client_count(f->srv) == 0);
	assert_int_equal(ctl_server_client_count(f->srv), 0);
	assert_true(ctl_req_detached(f->async[0]));
	assert_true(ctl_req_detached(f->async[1]));
	/* Still readable for an audit entry. */
	assert_int_equal(ctl_req_peer_uid(f->async[0]), getuid());
	ctl_reply_ok(f->async[0], json_pack("{s:i}", "late", 1));
	ctl_reply_err(f->async[1], CTL_ERR_UNAVAILABLE, "late");
	f->nasync = 0;
	pump(f->loop, 0.01);
}

/* After shutdown(SHUT_WR) the client still gets its async answer, then
 * the server closes. */
static void test_async_half_close(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	json_t *j;

	tc_send(c, "{\"id\":1,\"op\":\"test.async\"}\n{\"id\":2,\"op\":\"ping\"}");
	shutdown(c->fd, SHUT_WR);
	WAIT_UNTIL(f, f->nasync == 1 && tc_lines(c) == 1);
	j = tc_recv(c); /* the unterminated last line was served */
	assert_ok_id(j, 2);
	json_decref(j);
	assert_false(c->eof);
	assert_int_equal(ctl_server_client_count(f->srv), 1);
	ctl_reply_ok(f->async[0], NULL);
	f->nasync = 0;
	j = tc_recv(c);
	assert_ok_id(j, 1);
	json_decref(j);
	WAIT_UNTIL(f, c->eof);
	assert_true(c->eof);
	assert_int_equal(ctl_server_client_count(f->srv), 0);
	tc_free(c);
}

/* With max_inflight unanswered requests the connection is not read; each
 * answer lets one more in. */
static void test_inflight_limit(void **state)
{
	struct fix *f = *state;
	struct ctl_server_opts o;
	struct tc *c;
	json_t *j;

	ctl_server_free(f->srv);
	fix_opts(f, &o);
	o.max_inflight = 4;
	f->srv = server_with(f, &o);
	c = tc_new(f, true);
	for (int i = 0; i < 10; i++)
		tc_send(c, "{\"op\":\"test.async\"}\n");
	tc_send(c, "{\"id\":99,\"op\":\"ping\"}\n");
	WAIT_UNTIL(f, f->nasync == 4);
	pump(f->loop, 0.05);
	assert_int_equal(f->nasync, 4);
	assert_int_equal(c->len, 0);
	for (int done = 0; done < 10; done++) {
		size_t want = done + 5 < 10 ? (size_t)done + 5 : 10;

		/* An answer lets the next request in at once. */
		ctl_reply_ok(f->async[done], json_pack("{s:i}", "n", done));
		assert_int_equal(f->nasync, want);
		j = tc_recv(c);
		assert_int_equal(json_integer_value(json_object_get(
					 json_object_get(j, "result"), "n")),
				 done);
		json_decref(j);
		/* The ping behind the 10th async one goes in when only 3
		 * are left unanswered, i.e. after the 7th answer. */
		if (done == 6) {
			j = tc_recv(c);
			assert_ok_id(j, 99);
			json_decref(j);
		}
	}
	f->nasync = 0;
	tc_free(c);
}

/* --- roles ----------------------------------------------------------------- */

static void test_role_resolve(void **state)
{
	const struct ctl_role_policy pol = { .daemon_uid = 990,
					     .admin_gid = 4242,
					     .portal_gid = 4243 };
	const struct ctl_role_policy none = { .daemon_uid = 990,
					      .admin_gid = CTL_NO_GID,
					      .portal_gid = CTL_NO_GID };
	const gid_t adm[] = { 100, 4242 }, por[] = { 4243, 27 },
		    both[] = { 4243, 4242 }, other[] = { 100, 27 };
	static const struct {
		uid_t uid;
		gid_t gid;
		int which; /* 0 adm, 1 por, 2 both, 3 other, 4 no groups */
		bool nopolicy;
		enum ctl_role want;
	} cases[] = {
		{ 0, 0, 4, false, CTL_ROLE_ADMIN },        /* root */
		{ 0, 0, 4, true, CTL_ROLE_ADMIN },
		{ 990, 990, 4, false, CTL_ROLE_ADMIN },    /* the daemon */
		{ 990, 990, 4, true, CTL_ROLE_ADMIN },
		{ 1000, 1000, 0, false, CTL_ROLE_ADMIN },  /* supplementary */
		{ 1000, 4242, 4, false, CTL_ROLE_ADMIN },  /* primary */
		{ 1000, 1000, 1, false, CTL_ROLE_PORTAL },
		{ 1000, 4243, 4, false, CTL_ROLE_PORTAL },
		{ 1000, 1000, 2, false, CTL_ROLE_ADMIN },  /* admin wins */
		{ 1000, 1000, 3, false, CTL_ROLE_NONE },
		{ 1000, 1000, 4, false, CTL_ROLE_NONE },
		{ 1000, 1000, 0, true, CTL_ROLE_NONE },    /* no groups set */
		{ 65534, 65534, 1, true, CTL_ROLE_NONE },
	};
	const gid_t *lists[] = { adm, por, both, other, NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const gid_t *g = lists[cases[i].which];

		assert_int_equal(ctl_role_resolve(cases[i].nopolicy ? &none
								    : &pol,
						  cases[i].uid, cases[i].gid, g,
						  g ? 2 : 0),
				 cases[i].want);
	}
	assert_string_equal(ctl_role_name(CTL_ROLE_PORTAL), "portal");
	assert_string_equal(ctl_role_name(CTL_ROLE_NONE), "none");
	assert_string_equal(ctl_role_name(CTL_ROLE_ADMIN), "admin");
}

#define GID_ADMIN 4242
#define GID_PORTAL 4243

/* In a child running as nobody with `groups`: sends the requests, writes
 * the answers to `out`, exits. Blocking I/O with a poll() timeout. */
static void child_client(const char *path, const gid_t *groups, size_t n,
			 const char *requests, int out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	size_t got = 0;
	int fd;

	if (setgroups(n, groups) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		_exit(10);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(11);
	if (write(fd, requests, strlen(requests)) != (ssize_t)strlen(requests))
		_exit(12);
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 5000) != 1)
			_exit(13);
		r = read(fd, buf + got, sizeof(buf) - got);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (write(out, buf, got) != (ssize_t)got)
		_exit(14);
	_exit(0);
}

/* Runs child_client() in a child while this loop serves it; returns what
 * the child read, one response per line. */
static char *as_nobody(struct fix *f, const gid_t *groups, size_t n,
		       const char *requests)
{
	static char out[4096];
	int pfd[2], status = -1;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child_client(f->path, groups, n, requests, pfd[1]);
	}
	close(pfd[1]);
	WAIT_UNTIL(f, waitpid(pid, &status, WNOHANG) == pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	r = read(pfd[0], out, sizeof(out) - 1);
	close(pfd[0]);
	assert_true(r > 0);
	out[r] = '\0';
	return out;
}

static const char *line_code(const char *lines, int which, char *code)
{
	const char *p = lines;
	json_t *j;

	for (int i = 0; i < which; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	j = json_loadb(p, strcspn(p, "\n"), 0, NULL);
	assert_non_null(j);
	if (json_is_true(json_object_get(j, "ok")))
		strcpy(code, "ok");
	else
		snprintf(code, 64, "%s", json_string_value(json_object_get(
						 json_object_get(j, "error"),
						 "code")));
	json_decref(j);
	return code;
}

/* Real SO_PEERCRED / SO_PEERGROUPS: children as nobody, with or without
 * the admin or portal group among their supplementary groups. */
static void test_roles_over_socket(void **state)
{
	static const char *reqs = "{\"id\":1,\"op\":\"ping\"}\n"
				  "{\"id\":2,\"op\":\"test.echo\"}\n"
				  "{\"id\":3,\"op\":\"test.admin\"}\n"
				  "{\"id\":4,\"op\":\"events.subscribe\"}\n"
				  "{\"id\":5,\"op\":\"no.such\"}\n";
	static const struct {
		gid_t groups[2];
		size_t n;
		const char *want[5];
	} cases[] = {
		{ { 0 }, 0,
		  { "ok", "permission_denied", "permission_denied",
		    "permission_denied", "unknown_op" } },
		{ { 100, GID_PORTAL }, 2,
		  { "ok", "ok", "permission_denied", "permission_denied",
		    "unknown_op" } },
		{ { GID_ADMIN }, 1, { "ok", "ok", "ok", "ok", "unknown_op" } },
	};
	struct fix *f = *state;
	struct ctl_server_opts o;
	char code[64];

	if (geteuid() != 0) {
		skip(); /* see test_roles_unprivileged */
		return;
	}
	ctl_server_free(f->srv);
	fix_opts(f, &o);
	o.mode = 0666;
	o.admin_gid = GID_ADMIN;
	o.portal_gid = GID_PORTAL;
	o.socket_gid = 0;
	f->srv = server_with(f, &o);
	assert_int_equal(chmod(f->dir, 0755), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *out = as_nobody(f, cases[i].groups, cases[i].n,
					    reqs);

		for (int k = 0; k < 5; k++)
			assert_string_equal(line_code(out, k, code),
					    cases[i].want[k]);
	}
}

/* Without root: this process is not the daemon's uid, and its own primary
 * group is the portal group or no group at all. */
static void test_roles_unprivileged(void **state)
{
	struct fix *f = *state;
	struct ctl_server_opts o;
	struct tc *c;
	json_t *j;

	if (geteuid() == 0) {
		skip(); /* covered with real uids by test_roles_over_socket */
		return;
	}
	for (int portal = 0; portal <= 1; portal++) {
		ctl_server_free(f->srv);
		fix_opts(f, &o);
		o.daemon_uid = getuid() + 1;
		o.portal_gid = portal ? getgid() : CTL_NO_GID;
		f->srv = server_with(f, &o);
		c = tc_new(f, true);
		ping_ok(c, 1);
		tc_send(c, "{\"id\":2,\"op\":\"test.echo\"}\n"
			   "{\"id\":3,\"op\":\"test.admin\"}\n");
		j = tc_recv(c);
		if (portal)
			assert_ok_id(j, 2);
		else
			assert_error_i(j, "permission_denied", 2);
		json_decref(j);
		j = tc_recv(c);
		assert_error_i(j, "permission_denied", 3);
		json_decref(j);
		tc_free(c);
	}
}

/* --- the socket file ------------------------------------------------------ */

static void test_socket_file(void **state)
{
	struct fix *f = *state;
	struct ctl_server_opts o;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256] = "";
	struct stat st;
	int fd;

	/* Mode as configured. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	/* A live daemon is not replaced. */
	fix_opts(f, &o);
	assert_null(ctl_server_new(f->loop, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "another smsgwd is listening on"));
	assert_non_null(strstr(err, f->path));
	assert_int_equal(stat(f->path, &st), 0);
	/* Free unlinks; a stale socket left behind is replaced. */
	ctl_server_free(f->srv);
	f->srv = NULL;
	assert_int_equal(stat(f->path, &st), -1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(f->path, &st), 0);
	f->srv = server_with(f, &o);
	{
		struct tc *c = tc_new(f, true);

		ping_ok(c, 1);
		tc_free(c);
	}
	/* A regular file is never removed. */
	ctl_server_free(f->srv);
	f->srv = NULL;
	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_null(ctl_server_new(f->loop, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
	unlink(f->path);
	/* A path that does not fit sun_path. */
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		o.path = longp;
		assert_null(ctl_server_new(f->loop, &o, err, sizeof(err)));
		assert_non_null(strstr(err, "too long"));
	}
}

/* Stopping closes the door but serves who is inside. */
static void test_stop_accepting(void **state)
{
	struct fix *f = *state;
	struct tc *c = tc_new(f, true);
	struct stat st;

	WAIT_UNTIL(f, ctl_server_client_count(f->srv) == 1);
	ctl_server_stop_accepting(f->srv);
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(tc_connect_fd(f->path), -1);
	ping_ok(c, 1);
	tc_free(c);
}

static void test_register_rules(void **state)
{
	struct fix *f = *state;
	static const struct ctl_op dup[] = {
		{ "ping", op_admin, CTL_ROLE_ADMIN },
	};
	static const struct ctl_op self_dup[] = {
		{ "x.a", op_admin, CTL_ROLE_ADMIN },
		{ "x.a", op_admin, CTL_ROLE_ADMIN },
	};
	static const struct ctl_op bad[] = {
		{ "x.b", NULL, CTL_ROLE_ADMIN },
	};
	static const struct ctl_op norole[] = {
		{ "x.c", op_admin, 0 },
	};

	assert_int_equal(ctl_register(f->srv, dup, 1, NULL), -EEXIST);
	assert_int_equal(ctl_register(f->srv, self_dup, 2, NULL), -EEXIST);
	assert_int_equal(ctl_register(f->srv, bad, 1, NULL), -EINVAL);
	assert_int_equal(ctl_register(f->srv, norole, 1, NULL), -EINVAL);
}

static void test_error_names(void **state)
{
	static const char *const all[] = {
		"bad_request", "request_too_large", "permission_denied",
		"unknown_op", "invalid_phone", "phone_profiles_disabled",
		"already_exists", "not_found", "phone_immutable",
		"daily_invite_limit", "claim_sms_limit", "invalid_token",
		"token_expired", "weak_password", "invalid_password",
		"invalid_code", "recovery_locked", "login_locked", "wrong_state",
		"unavailable",
	};
	enum ctl_err e;
	json_t *o;

	(void)state;
	assert_int_equal(sizeof(all) / sizeof(all[0]), CTL_ERR_COUNT);
	for (unsigned i = 0; i < CTL_ERR_COUNT; i++) {
		assert_string_equal(ctl_err_name((enum ctl_err)i), all[i]);
		assert_int_equal(ctl_err_parse(all[i], &e), 0);
		assert_int_equal(e, i);
	}
	assert_null(ctl_err_name(CTL_ERR_COUNT));
	assert_int_equal(ctl_err_parse("nope", &e), -ENOENT);
	/* Bad UTF-8 in a message is scrubbed, never a broken answer. */
	o = ctl_error_object(CTL_ERR_INVALID_PHONE, "bad %s", "\xff\xc3");
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "code")),
			    "invalid_phone");
	assert_string_equal(json_string_value(json_object_get(o, "message")),
			    "bad ??");
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_resolve),
		cmocka_unit_test(test_error_names),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_ping),
		T(test_pipelined),
		T(test_bad_requests),
		T(test_too_large),
		T(test_flood_without_newline),
		T(test_events),
		T(test_slow_subscriber_dropped),
		T(test_nonreading_requester_dropped),
		T(test_many_clients),
		T(test_unknown_op),
		T(test_async_out_of_order),
		T(test_async_client_gone),
		T(test_async_half_close),
		T(test_inflight_limit),
		T(test_roles_over_socket),
		T(test_roles_unprivileged),
		T(test_socket_file),
		T(test_stop_accepting),
		T(test_register_rules),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test_ctl", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
