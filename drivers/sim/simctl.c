/* simctl — see simctl.h. */
#include "drivers/sim/simctl.h"

#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "drivers/sim/simmodem.h"
#include "drivers/sim/simstore.h"

#define LINE_MAX_BYTES (64 * 1024)

struct simctl;

struct ctl_client {
	ev_io io;
	struct simctl *ctl;
	struct ctl_client *next;
	char *buf;  /* a partial line, LINE_MAX_BYTES */
	size_t len;
};

struct simctl {
	struct ev_loop *loop;
	struct simmodem *m;
	struct simctl_hooks hooks;
	char *path;
	ev_io listen;
	struct ctl_client *clients;
};

/* An op fills `res` and returns 0, or returns -1 with a message in err. */
typedef int (*ctl_fn)(struct simctl *c, json_t *req, json_t *res, char *err,
		      size_t errlen);

/* --- ops ------------------------------------------------------------------- */

static int op_inject(struct simctl *c, json_t *req, json_t *res, char *err,
		     size_t errlen)
{
	const char *from = json_string_value(json_object_get(req, "from"));
	const char *text = json_string_value(json_object_get(req, "text"));
	json_t *cls = json_object_get(req, "class");
	json_t *ref = json_object_get(req, "ref");
	json_t *only = json_object_get(req, "only");
	uint64_t mask = 0;
	size_t i;
	json_t *v;
	int n;

	if (!from || !text) {
		snprintf(err, errlen, "inject needs \"from\" and \"text\"");
		return -1;
	}
	/* "only": [1, 3] delivers parts 1 and 3 of the set. */
	json_array_foreach(only, i, v) {
		json_int_t seq = json_integer_value(v);

		if (seq >= 1 && seq <= 64)
			mask |= UINT64_C(1) << (seq - 1);
	}
	n = simmodem_inject(c->m, from, text,
			    json_is_true(json_object_get(req, "shift")),
			    json_is_integer(cls) ? (int)json_integer_value(cls)
						 : -1,
			    json_is_integer(ref) ? (int)json_integer_value(ref)
						 : -1,
			    mask, err, errlen);
	if (n < 0)
		return -1;
	json_object_set_new(res, "parts", json_integer(n));
	return 0;
}

static int op_unplug(struct simctl *c, json_t *req, json_t *res, char *err,
		     size_t errlen)
{
	(void)req;
	(void)res;
	if (c->hooks.unplug(c->hooks.user) < 0) {
		snprintf(err, errlen, "already unplugged");
		return -1;
	}
	return 0;
}

static int op_replug(struct simctl *c, json_t *req, json_t *res, char *err,
		     size_t errlen)
{
	int rc = c->hooks.replug(c->hooks.user);

	(void)req;
	if (rc < 0) {
		snprintf(err, errlen, "replug: %s", strerror(-rc));
		return -1;
	}
	json_object_set_new(res, "pty",
			    json_string(c->hooks.pty_path(c->hooks.user)));
	return 0;
}

static int op_hang(struct simctl *c, json_t *req, json_t *res, char *err,
		   size_t errlen)
{
	(void)req, (void)res, (void)err, (void)errlen;
	simmodem_set_hung(c->m, true);
	return 0;
}

static int op_unhang(struct simctl *c, json_t *req, json_t *res, char *err,
		     size_t errlen)
{
	(void)req, (void)res, (void)err, (void)errlen;
	simmodem_set_hung(c->m, false);
	return 0;
}

static int op_reset(struct simctl *c, json_t *req, json_t *res, char *err,
		    size_t errlen)
{
	(void)req, (void)res, (void)err, (void)errlen;
	simmodem_reset(c->m);
	return 0;
}

static int op_network(struct simctl *c, json_t *req, json_t *res, char *err,
		      size_t errlen)
{
	json_t *reg = json_object_get(req, "registered");

	(void)res;
	if (!json_is_boolean(reg)) {
		snprintf(err, errlen, "network needs \"registered\": bool");
		return -1;
	}
	simmodem_set_network(c->m, json_is_true(reg));
	return 0;
}

static int op_urc(struct simctl *c, json_t *req, json_t *res, char *err,
		  size_t errlen)
{
	const char *line = json_string_value(json_object_get(req, "line"));

	(void)res;
	if (!line || strpbrk(line, "\r\n")) {
		snprintf(err, errlen, "urc needs \"line\" (one line)");
		return -1;
	}
	simmodem_urc_line(c->m, line);
	return 0;
}

/* Replaces a number list from a JSON array of strings. */
static int set_list(struct simctl *c, json_t *arr, enum simmodem_list list,
		    char *err, size_t errlen)
{
	size_t i;
	json_t *v;

	if (!arr)
		return 0;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "number lists hold strings");
			return -1;
		}
	}
	simmodem_clear_numbers(c->m, list);
	json_array_foreach(arr, i, v)
		simmodem_add_number(c->m, list, json_string_value(v));
	return 0;
}

static int get_seconds(json_t *req, const char *key, double max, double *v,
		       char *err, size_t errlen)
{
	json_t *j = json_object_get(req, key);

	if (!j)
		return 0;
	if (!json_is_number(j) || json_number_value(j) < 0 ||
	    json_number_value(j) > max) {
		snprintf(err, errlen, "%s: a number 0..%g", key, max);
		return -1;
	}
	*v = json_number_value(j);
	return 0;
}

static int op_set(struct simctl *c, json_t *req, json_t *res, char *err,
		  size_t errlen)
{
	struct simmodem_faults f;
	json_t *pf = json_object_get(req, "permanent_fail");
	json_t *un = json_object_get(req, "undeliverable");

	simmodem_get_faults(c->m, &f);
	if (get_seconds(req, "send_delay", 3600, &f.send_delay, err, errlen) ||
	    get_seconds(req, "report_delay", 3600, &f.report_delay, err,
			errlen) ||
	    get_seconds(req, "fail_rate", 1, &f.fail_rate, err, errlen))
		return -1;
	if ((pf && !json_is_array(pf)) || (un && !json_is_array(un))) {
		snprintf(err, errlen, "number lists are arrays");
		return -1;
	}
	if (set_list(c, pf, SIMMODEM_PERMANENT_FAIL, err, errlen) ||
	    set_list(c, un, SIMMODEM_UNDELIVERABLE, err, errlen))
		return -1;
	simmodem_set_faults(c->m, &f);
	json_object_set_new(res, "faults",
			    json_pack("{s:f, s:f, s:f}", "send_delay",
				      f.send_delay, "report_delay",
				      f.report_delay, "fail_rate",
				      f.fail_rate));
	return 0;
}

static int op_stats(struct simctl *c, json_t *req, json_t *res, char *err,
		    size_t errlen)
{
	struct simmodem_stats s;
	json_t *o;

	(void)req, (void)err, (void)errlen;
	simmodem_get_stats(c->m, &s);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:i, s:i, s:i}",
		      "commands", (json_int_t)s.commands,
		      "sent", (json_int_t)s.sent,
		      "send_errors", (json_int_t)s.send_errors,
		      "failed_transient", (json_int_t)s.failed_transient,
		      "failed_permanent", (json_int_t)s.failed_permanent,
		      "received", (json_int_t)s.received,
		      "reports", (json_int_t)s.reports,
		      "waiting", (json_int_t)s.waiting,
		      "storage_full", (json_int_t)s.storage_full,
		      "cnma_timeouts", (json_int_t)s.cnma_timeouts,
		      "resets", (json_int_t)s.resets,
		      "boots", (json_int_t)s.boots,
		      "bytes_in", (json_int_t)s.bytes_in,
		      "bytes_out", (json_int_t)s.bytes_out,
		      "stored", (int)s.stored, "capacity", (int)s.capacity,
		      "next_mr", (int)s.next_mr);
	if (!o)
		return -1;
	json_object_set_new(o, "powered", json_boolean(s.powered));
	json_object_set_new(o, "hung", json_boolean(s.hung));
	json_object_set_new(o, "registered", json_boolean(s.registered));
	json_object_set_new(o, "sim_ready", json_boolean(s.sim_ready));
	json_object_set_new(o, "pty",
			    json_string(c->hooks.pty_path(c->hooks.user)));
	json_object_set_new(res, "stats", o);
	return 0;
}

static int op_storage(struct simctl *c, json_t *req, json_t *res, char *err,
		      size_t errlen)
{
	struct simstore *s = simmodem_store(c->m);
	struct simstore_msg *msg;
	unsigned after = 0;
	json_t *arr = json_array();

	(void)req, (void)err, (void)errlen;
	while ((msg = simstore_next(s, after, SIMSTORE_ALL))) {
		json_array_append_new(arr, json_pack("{s:i, s:i, s:s}",
						     "index", (int)msg->index,
						     "stat", (int)msg->stat,
						     "pdu", msg->hex));
		after = msg->index;
	}
	json_object_set_new(res, "messages", arr);
	return 0;
}

static const struct {
	const char *name;
	ctl_fn fn;
} ops[] = {
	{ "inject", op_inject },   { "unplug", op_unplug },
	{ "replug", op_replug },   { "hang", op_hang },
	{ "unhang", op_unhang },   { "reset", op_reset },
	{ "network", op_network }, { "urc", op_urc },
	{ "set", op_set },         { "stats", op_stats },
	{ "storage", op_storage },
};

/* --- wire ------------------------------------------------------------------ */

static void client_drop(struct ctl_client *cl)
{
	struct simctl *c = cl->ctl;
	struct ctl_client **pp;

	for (pp = &c->clients; *pp; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	ev_io_stop(c->loop, &cl->io);
	close(cl->io.fd);
	free(cl->buf);
	free(cl);
}

/* Runs one request line; returns the response object. */
static json_t *handle(struct simctl *c, const char *line)
{
	json_t *req = json_loads(line, 0, NULL);
	json_t *res = json_object();
	const char *op = json_string_value(json_object_get(req, "op"));
	char err[256] = "unknown op";
	int rc = -1;

	if (!json_is_object(req))
		snprintf(err, sizeof(err), "not a JSON object");
	else if (json_object_get(req, "id"))
		json_object_set(res, "id", json_object_get(req, "id"));
	for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0)
			rc = ops[i].fn(c, req, res, err, sizeof(err));
	json_object_set_new(res, "ok", json_boolean(rc == 0));
	if (rc != 0)
		json_object_set_new(res, "error", json_string(err));
	json_decref(req);
	return res;
}

/* Answers one line; false when the client must be dropped (it does not
 * read). */
static bool answer(struct ctl_client *cl, const char *line)
{
	json_t *res = handle(cl->ctl, line);
	char *s = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len;
	ssize_t n;

	json_decref(res);
	if (!s)
		return false;
	len = strlen(s);
	s[len++] = '\n'; /* json_dumps' NUL becomes the newline */
	n = send(cl->io.fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(s);
	return n == (ssize_t)len;
}

static void on_client(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = w->data;
	char *nl;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(w->fd, cl->buf + cl->len, LINE_MAX_BYTES - cl->len);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		client_drop(cl);
		return;
	}
	cl->len += (size_t)n;
	while ((nl = memchr(cl->buf, '\n', cl->len))) {
		*nl = '\0';
		if (!answer(cl, cl->buf)) {
			client_drop(cl);
			return;
		}
		cl->len -= (size_t)(nl + 1 - cl->buf);
		memmove(cl->buf, nl + 1, cl->len);
	}
	if (cl->len == LINE_MAX_BYTES)
		client_drop(cl); /* a line over 64 KiB */
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct simctl *c = w->data;
	struct ctl_client *cl;
	int fd;

	(void)revents;
	fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	cl = calloc(1, sizeof(*cl));
	if (!cl || !(cl->buf = malloc(LINE_MAX_BYTES))) {
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = c;
	cl->next = c->clients;
	c->clients = cl;
	ev_io_init(&cl->io, on_client, fd, EV_READ);
	cl->io.data = cl;
	ev_io_start(loop, &cl->io);
}

static int listen_on(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* stale, from a simulator that was killed */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct simctl *simctl_new(struct ev_loop *loop, const char *path,
			  struct simmodem *m, const struct simctl_hooks *hooks,
			  char *err, size_t errlen)
{
	struct simctl *c = calloc(1, sizeof(*c));
	int fd;

	if (!c || !(c->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		free(c);
		return NULL;
	}
	fd = listen_on(path, err, errlen);
	if (fd < 0) {
		free(c->path);
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->m = m;
	c->hooks = *hooks;
	ev_io_init(&c->listen, on_accept, fd, EV_READ);
	c->listen.data = c;
	ev_io_start(loop, &c->listen);
	return c;
}

void simctl_free(struct simctl *c)
{
	if (!c)
		return;
	while (c->clients)
		client_drop(c->clients);
	ev_io_stop(c->loop, &c->listen);
	close(c->listen.fd);
	unlink(c->path);
	free(c->path);
	free(c);
}
