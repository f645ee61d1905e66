/* libFuzzer target for the control socket's request parser and connection
 * handling (daemon/ctl.c), driven through its only entry point: a real
 * ctl_server on a Unix socket with a private libev loop.
 *
 * The first input byte picks the limits (line length, output cap, requests
 * in flight), how the rest is cut into writes, and how the client ends
 * (half-close, full close, or staying open). The rest is what a client
 * sends. Test ops answer at once, later (async, in input order or not),
 * with an error quoting the caller's input, or with a big result; a
 * subscriber gets events in between. Every line the server writes must be
 * one JSON object with a boolean "ok" (or an "event"), and once the client
 * is gone the server must hold no connection and no buffer: anything else
 * aborts. Sanitizers catch the rest.
 *
 *   make fuzz-build && build/fuzz/fuzz_ctl tests/fuzz/corpus/ctl */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "daemon/ctl.h"
#include "daemon/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ASYNC 64
#define PUMP_ROUNDS 64

struct fz {
	struct ev_loop *loop;
	struct ctl_server *srv;
	struct ctl_req *async[MAX_ASYNC]; /* answered later */
	size_t n_async;
	int client;
	char *in;      /* what the server wrote, not yet a whole line */
	size_t in_len, in_cap;
	unsigned events;
};

static struct fz F;
static char sock_path[108];

/* --- test ops ------------------------------------------------------------ */

static void op_echo(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:O}", "args", args));
}

/* Answered later, from pump(); detached requests must still be replied. */
static void op_async(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fz *f = ctx;

	(void)args;
	if (f->n_async == MAX_ASYNC) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "busy");
		return;
	}
	f->async[f->n_async++] = req;
}

/* An error message made of the caller's input (the scrubber's job). */
static void op_err(struct ctl_req *req, json_t *args, void *ctx)
{
	const char *k;
	json_t *v;

	(void)ctx;
	json_object_foreach(args, k, v) {
		ctl_reply_err(req, CTL_ERR_INVALID_PHONE, "%s: %s", k,
			      json_is_string(v) ? json_string_value(v) : "?");
		return;
	}
	ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "no args");
}

/* A result bigger than the output cap of the small configurations. */
static void op_big(struct ctl_req *req, json_t *args, void *ctx)
{
	static char blob[6000];

	(void)args;
	(void)ctx;
	memset(blob, 'b', sizeof(blob) - 1);
	ctl_reply_ok(req, json_pack("{s:s}", "blob", blob));
}

/* Events to every subscriber, between answers. */
static void op_emit(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fz *f = ctx;

	ctl_reply_ok(req, NULL);
	for (int i = 0; i < 3; i++)
		ctl_broadcast_event(f->srv, "fuzz.event",
				    json_pack("{s:i, s:O}", "n", (int)f->events++,
					      "args", args));
}

static const struct ctl_op fuzz_ops[] = {
	{ "t.echo", op_echo, CTL_ROLE_ANY },
	{ "t.async", op_async, CTL_ROLE_ADMIN },
	{ "t.err", op_err, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "t.big", op_big, CTL_ROLE_ADMIN },
	{ "t.emit", op_emit, CTL_ROLE_ADMIN },
	{ "t.portal", op_echo, CTL_ROLE_PORTAL },
};

/* --- the client side ------------------------------------------------------ */

/* One line from the server: an object with a boolean "ok" and an "id",
 * and "result" or a well-formed "error"; or an event. */
static void check_line(const char *p, size_t n)
{
	json_error_t jerr;
	json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
	json_t *ok, *e;

	if (!json_is_object(o))
		abort();
	ok = json_object_get(o, "ok");
	if (json_object_get(o, "event")) {
		if (!json_is_string(json_object_get(o, "event")))
			abort();
	} else if (!json_is_boolean(ok) || !json_object_get(o, "id")) {
		abort();
	} else if (json_is_true(ok) &&
		   !json_is_object(json_object_get(o, "result"))) {
		abort();
	} else if (json_is_false(ok)) {
		e = json_object_get(o, "error");
		if (!json_is_string(json_object_get(e, "code")) ||
		    !json_is_string(json_object_get(e, "message")))
			abort();
	}
	json_decref(o);
}

/* Reads what the server wrote; checks every complete line. Returns false
 * at EOF or on an error (the server closed us). */
static bool drain(struct fz *f)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(f->client, buf, sizeof(buf));
		char *nl;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n <= 0)
			return false;
		if (f->in_len + (size_t)n > f->in_cap) {
			size_t cap = (f->in_len + (size_t)n) * 2;
			char *p = realloc(f->in, cap);

			if (!p)
				abort();
			f->in = p;
			f->in_cap = cap;
		}
		memcpy(f->in + f->in_len, buf, (size_t)n);
		f->in_len += (size_t)n;
		while ((nl = memchr(f->in, '\n', f->in_len))) {
			size_t len = (size_t)(nl - f->in);

			check_line(f->in, len);
			f->in_len -= len + 1;
			memmove(f->in, nl + 1, f->in_len);
		}
	}
}

/* Answers the held async requests: all, or every other one (so that
 * answers come out of order). */
static void answer_async(struct fz *f, bool all)
{
	size_t keep = 0;

	for (size_t i = 0; i < f->n_async; i++) {
		if (!all && i % 2 == 1) {
			f->async[keep++] = f->async[i];
			continue;
		}
		if (ctl_req_detached(f->async[i]) || i % 3 == 0)
			ctl_reply_ok(f->async[i], json_pack("{s:i}", "n", (int)i));
		else
			ctl_reply_err(f->async[i], CTL_ERR_NOT_FOUND,
				      "late \xff answer %zu", i);
	}
	f->n_async = keep;
}

static void pump(struct fz *f, bool *open)
{
	for (int i = 0; i < PUMP_ROUNDS; i++) {
		ev_run(f->loop, EVRUN_NOWAIT);
		if (*open && !drain(f))
			*open = false;
	}
}

static int connect_client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		abort();
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

/* --- the server ------------------------------------------------------------ */

static const struct {
	size_t max_line, max_outbuf;
	unsigned max_inflight;
} limits[] = {
	{ 64, 4096, 2 },
	{ 256, 1024, 1 },
	{ 1024, 65536, 8 },
	{ CTL_DEFAULT_MAX_LINE, CTL_DEFAULT_MAX_OUTBUF, CTL_DEFAULT_MAX_INFLIGHT },
};
#define N_LIMITS (sizeof(limits) / sizeof(limits[0]))

static struct ctl_server *servers[N_LIMITS];

/* One server per limit set, made once (binding a socket per input would
 * dominate the run time); each input gets a fresh connection. */
static struct ctl_server *server_for(struct fz *f, unsigned which)
{
	struct ctl_server_opts o;
	char err[256];

	if (servers[which])
		return servers[which];
	snprintf(sock_path, sizeof(sock_path), "/tmp/smsgw-fuzz-ctl.%ld.%u",
		 (long)getpid(), which);
	unlink(sock_path);
	ctl_server_opts_default(&o);
	o.path = sock_path;
	o.mode = 0600;
	o.max_line = limits[which].max_line;
	o.max_outbuf = limits[which].max_outbuf;
	o.max_inflight = limits[which].max_inflight;
	servers[which] = ctl_server_new(f->loop, &o, err, sizeof(err));
	if (!servers[which]) {
		fprintf(stderr, "fuzz_ctl: %s\n", err);
		abort();
	}
	if (ctl_register(servers[which], fuzz_ops,
			 sizeof(fuzz_ops) / sizeof(fuzz_ops[0]), f) < 0)
		abort();
	return servers[which];
}

static void cleanup(void)
{
	for (size_t i = 0; i < N_LIMITS; i++) {
		ctl_server_free(servers[i]);
		servers[i] = NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f = &F;
	unsigned mode, which, ending;
	size_t chunk;
	bool open = true;

	if (size < 1 || size > 300000)
		return 0;
	if (!f->loop) {
		log_init("fuzz_ctl", LOG_LVL_ERR);
		f->loop = ev_loop_new(EVFLAG_AUTO);
		if (!f->loop)
			abort();
		atexit(cleanup);
	}
	mode = data[0];
	data++, size--;
	which = mode % N_LIMITS;
	chunk = ((mode >> 2) % 8) == 0 ? size + 1 : ((size_t)1 << ((mode >> 2) % 8)) * 7;
	ending = (mode >> 5) % 3;
	f->srv = server_for(f, which);
	snprintf(sock_path, sizeof(sock_path), "/tmp/smsgw-fuzz-ctl.%ld.%u",
		 (long)getpid(), which);
	f->client = connect_client();
	f->in_len = 0;
	pump(f, &open);
	if (ctl_server_client_count(f->srv) != 1)
		abort();
	for (size_t off = 0; off < size && open; off += chunk) {
		size_t n = off + chunk > size ? size - off : chunk;
		ssize_t w = send(f->client, data + off, n, MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EPIPE &&
		    errno != ECONNRESET)
			abort();
		pump(f, &open);
		answer_async(f, false);
		pump(f, &open);
	}
	if (ending == 0 && open)
		shutdown(f->client, SHUT_WR); /* the tail is the last request */
	pump(f, &open);
	answer_async(f, true);
	pump(f, &open);
	if (ending != 2 || !open) {
		close(f->client);
		f->client = -1;
	} else {
		/* A client that stays: its answers are all written. */
		answer_async(f, true);
		pump(f, &open);
		close(f->client);
		f->client = -1;
	}
	for (int i = 0; i < PUMP_ROUNDS && ctl_server_client_count(f->srv); i++) {
		ev_run(f->loop, EVRUN_NOWAIT);
		answer_async(f, true);
	}
	answer_async(f, true);
	if (ctl_server_client_count(f->srv) != 0 ||
	    ctl_server_subscriber_count(f->srv) != 0 ||
	    ctl_server_buffered_bytes(f->srv) != 0)
		abort(); /* a connection or a buffer outlived its client */
	return 0;
}
