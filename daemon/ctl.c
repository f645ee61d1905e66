/* ctl — see ctl.h.
 *
 * Life of a connection: accept4() -> peer credentials -> role; reads go into
 * one server-wide 64 KiB scratch buffer, and only an incomplete line is kept
 * in the connection's own input buffer (so an idle client costs no buffer).
 * Each complete line is parsed and dispatched while the connection is
 * "busy"; anything that would free the connection meanwhile (a write error,
 * the output cap) only marks it dead, and the dispatcher frees it when it
 * unwinds (STYLE.md 6). Requests live in the connection's pending list
 * until answered; when the connection goes, they are detached and their
 * late answers dropped.
 */
#include "daemon/ctl.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/version.h"

#define CTL_MAX_DEPTH 32           /* nesting of [ and { in a request */
#define CTL_READ_CHUNK (64u * 1024) /* bytes per read() */
#define CTL_MSG_MAX 512            /* error message bytes */
#define CTL_ACCEPT_BATCH 64        /* accepts per wake-up, for fairness */
#define CTL_ACCEPT_RETRY 0.5       /* seconds of pause after EMFILE */
#define CTL_OP_ECHO_MAX 64         /* longest unknown op name echoed */
#define CTL_GROUPS_STACK 64

static const char *const ctl_err_names[CTL_ERR_COUNT] = {
	[CTL_ERR_BAD_REQUEST] = "bad_request",
	[CTL_ERR_REQUEST_TOO_LARGE] = "request_too_large",
	[CTL_ERR_PERMISSION_DENIED] = "permission_denied",
	[CTL_ERR_UNKNOWN_OP] = "unknown_op",
	[CTL_ERR_INVALID_PHONE] = "invalid_phone",
	[CTL_ERR_PHONE_PROFILES_DISABLED] = "phone_profiles_disabled",
	[CTL_ERR_ALREADY_EXISTS] = "already_exists",
	[CTL_ERR_NOT_FOUND] = "not_found",
	[CTL_ERR_PHONE_IMMUTABLE] = "phone_immutable",
	[CTL_ERR_DAILY_INVITE_LIMIT] = "daily_invite_limit",
	[CTL_ERR_CLAIM_SMS_LIMIT] = "claim_sms_limit",
	[CTL_ERR_INVALID_TOKEN] = "invalid_token",
	[CTL_ERR_TOKEN_EXPIRED] = "token_expired",
	[CTL_ERR_WEAK_PASSWORD] = "weak_password",
	[CTL_ERR_INVALID_PASSWORD] = "invalid_password",
	[CTL_ERR_INVALID_CODE] = "invalid_code",
	[CTL_ERR_RECOVERY_LOCKED] = "recovery_locked",
	[CTL_ERR_LOGIN_LOCKED] = "login_locked",
	[CTL_ERR_WRONG_STATE] = "wrong_state",
	[CTL_ERR_UNAVAILABLE] = "unavailable",
};

/* A byte buffer holding data[off..len). Freed whenever it empties. */
struct ctl_buf {
	char *data;
	size_t off; /* first byte not yet consumed */
	size_t len; /* end of the data */
	size_t cap;
};

struct ctl_conn {
	struct ctl_server *server;
	struct ctl_conn *prev, *next; /* server->conns */
	int fd;                       /* -1 once closed */
	ev_io rio, wio;
	struct ctl_buf in, out;
	size_t scanned;         /* bytes of `in` already searched for '\n' */
	struct ctl_req *pending; /* unanswered requests */
	unsigned inflight;       /* length of `pending` */
	unsigned busy;           /* dispatching: free is deferred */
	bool discarding;         /* skipping an over-long line to its '\n' */
	bool subscriber;
	bool eof;                /* the peer shut down its writing side */
	bool dead;               /* closed; freed once busy is 0 */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum ctl_role role;
};

struct ctl_req {
	struct ctl_conn *conn;       /* NULL once detached */
	struct ctl_req *prev, *next; /* conn->pending */
	json_t *id;                  /* owned; NULL: send null */
	const char *op;              /* the op table's name */
	uid_t uid;
	pid_t pid;
	enum ctl_role role;
};

struct ctl_reg {
	const struct ctl_op *table;
	size_t n;
	void *ctx;
};

struct ctl_server {
	struct ev_loop *loop;
	struct ctl_server_opts opts;
	char *path;
	int fd;          /* listening socket, -1 once stopped */
	dev_t dev;       /* our socket node: unlink only that */
	ino_t ino;
	ev_io lio;
	ev_timer retry;  /* re-arms accepting after EMFILE */
	struct ctl_conn *conns;
	size_t nconns, nsubs;
	struct ctl_reg *regs;
	size_t nregs;
	char *scratch;   /* CTL_READ_CHUNK bytes shared by all reads */
};

static bool conn_process(struct ctl_conn *c);
static void conn_close(struct ctl_conn *c);

/* --- names, messages ----------------------------------------------------- */

const char *ctl_role_name(enum ctl_role role)
{
	switch (role) {
	case CTL_ROLE_NONE: return "none";
	case CTL_ROLE_PORTAL: return "portal";
	case CTL_ROLE_ADMIN: return "admin";
	}
	return "?";
}

const char *ctl_err_name(enum ctl_err code)
{
	if ((unsigned)code >= CTL_ERR_COUNT)
		return NULL;
	return ctl_err_names[code];
}

int ctl_err_parse(const char *name, enum ctl_err *out)
{
	for (unsigned i = 0; i < CTL_ERR_COUNT; i++) {
		if (strcmp(name, ctl_err_names[i]) == 0) {
			*out = (enum ctl_err)i;
			return 0;
		}
	}
	return -ENOENT;
}

/* Length of the valid UTF-8 sequence at p (as jansson checks it: no
 * overlongs, surrogates or code points past U+10FFFF), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p)
{
	unsigned cp, min;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2, cp = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3, cp = p[0] & 0x0f, min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4, cp = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Replaces every byte that is not part of valid UTF-8 with '?' (a message
 * may quote client input, or be cut inside a character by the size cap). */
static void utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t n = utf8_seq_len(p);

		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

static json_t *error_object_v(enum ctl_err code, const char *fmt, va_list ap)
{
	char msg[CTL_MSG_MAX];
	const char *name = ctl_err_name(code);

	if (!name)
		name = ctl_err_names[CTL_ERR_UNAVAILABLE];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	utf8_scrub(msg);
	return json_pack("{s:s, s:s}", "code", name, "message", msg);
}

json_t *ctl_error_object(enum ctl_err code, const char *fmt, ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = error_object_v(code, fmt, ap);
	va_end(ap);
	return e;
}

/* Serializes obj as one line with its '\n'; NULL if it cannot. */
static char *encode_line(const json_t *obj, size_t *len)
{
	size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	char *p;

	if (n == 0)
		return NULL;
	p = malloc(n + 1);
	if (!p)
		return NULL;
	if (json_dumpb(obj, p, n, JSON_COMPACT) != n) {
		free(p);
		return NULL;
	}
	p[n] = '\n';
	*len = n + 1;
	return p;
}

/* --- roles ----------------------------------------------------------------- */

static bool in_group(gid_t want, gid_t gid, const gid_t *groups, size_t n)
{
	if (want == CTL_NO_GID)
		return false;
	if (gid == want)
		return true;
	for (size_t i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

enum ctl_role ctl_role_resolve(const struct ctl_role_policy *policy,
			       uid_t uid, gid_t gid, const gid_t *groups,
			       size_t ngroups)
{
	if (uid == 0 || uid == policy->daemon_uid)
		return CTL_ROLE_ADMIN;
	if (in_group(policy->admin_gid, gid, groups, ngroups))
		return CTL_ROLE_ADMIN;
	if (in_group(policy->portal_gid, gid, groups, ngroups))
		return CTL_ROLE_PORTAL;
	return CTL_ROLE_NONE;
}

/* The peer's supplementary groups from NSS, for kernels older than 4.13
 * (no SO_PEERGROUPS). Returns a malloc'ed list or NULL. This may block. */
static gid_t *groups_from_nss(uid_t uid, gid_t gid, size_t *n)
{
	struct passwd pw, *res = NULL;
	char pwbuf[4096];
	int count = CTL_GROUPS_STACK;
	gid_t *groups = NULL;

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res)
		return NULL;
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(groups, (size_t)count * sizeof(*g));

		if (!g)
			break;
		groups = g;
		if (getgrouplist(pw.pw_name, gid, groups, &count) >= 0) {
			*n = (size_t)count;
			return groups;
		}
	}
	free(groups);
	return NULL;
}

/* The peer's supplementary groups, as of its connect(): stack if they fit,
 * else a malloc'ed list (the caller frees when != stack); NULL if unknown. */
static gid_t *peer_groups(int fd, const struct ctl_conn *c, gid_t *stack,
			  size_t *n)
{
#ifdef SO_PEERGROUPS
	socklen_t len = CTL_GROUPS_STACK * sizeof(gid_t);
	gid_t *heap;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, stack, &len) == 0) {
		*n = len / sizeof(gid_t);
		return stack;
	}
	if (errno == ERANGE && (heap = malloc(len)) != NULL) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, heap, &len) == 0) {
			*n = len / sizeof(gid_t);
			return heap;
		}
		free(heap);
	}
#else
	(void)fd;
	(void)stack;
#endif
	return groups_from_nss(c->uid, c->gid, n);
}

static enum ctl_role peer_role(const struct ctl_server *s, int fd,
			       const struct ctl_conn *c)
{
	struct ctl_role_policy pol = {
		.daemon_uid = s->opts.daemon_uid,
		.admin_gid = s->opts.admin_gid,
		.portal_gid = s->opts.portal_gid,
	};
	gid_t stack[CTL_GROUPS_STACK], *groups;
	enum ctl_role role;
	size_t n = 0;

	role = ctl_role_resolve(&pol, c->uid, c->gid, NULL, 0);
	if (role == CTL_ROLE_ADMIN ||
	    (pol.admin_gid == CTL_NO_GID && pol.portal_gid == CTL_NO_GID))
		return role;
	groups = peer_groups(fd, c, stack, &n);
	if (!groups)
		return role;
	role = ctl_role_resolve(&pol, c->uid, c->gid, groups, n);
	if (groups != stack)
		free(groups);
	return role;
}

/* --- buffers ----------------------------------------------------------------- */

static void buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t buf_used(const struct ctl_buf *b)
{
	return b->len - b->off;
}

static int buf_append(struct ctl_buf *b, const char *p, size_t n)
{
	size_t need, cap;
	char *d;

	if (n == 0)
		return 0;
	if (b->off > 0 && b->len + n > b->cap) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + n;
	if (need > b->cap) {
		for (cap = b->cap ? b->cap : 256; cap < need; cap *= 2)
			;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static void buf_consume(struct ctl_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		buf_free(b);
}

/* --- output ---------------------------------------------------------------- */

static bool send_again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* Writes what the socket takes of c->out. False when c was closed. */
static bool conn_flush(struct ctl_conn *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out.off,
				 buf_used(&c->out), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && send_again(errno))
			return true;
		if (n <= 0) {
			conn_close(c);
			return false;
		}
		buf_consume(&c->out, (size_t)n);
	}
	ev_io_stop(c->server->loop, &c->wio);
	return true;
}

/* Queues one line for c: written at once when nothing is queued before it,
 * else buffered. Past max_outbuf the client is dropped. Returns false when
 * c is closed (and maybe freed: then do not touch it). */
static bool conn_write(struct ctl_conn *c, const char *p, size_t n)
{
	const struct ctl_server *s = c->server;
	size_t max = s->opts.max_outbuf;

	if (c->dead)
		return false;
	if (buf_used(&c->out) == 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && !send_again(errno))
			goto close;
		if (w > 0)
			p += w, n -= (size_t)w;
		if (n == 0)
			return true;
	}
	if (buf_used(&c->out) + n > max) {
		if (!conn_flush(c))
			return false;
		if (buf_used(&c->out) + n > max) {
			log_warn("control: dropping client pid %ld uid %lu: "
				 "over %zu bytes of unread output",
				 (long)c->pid, (unsigned long)c->uid, max);
			goto close;
		}
	}
	if (buf_append(&c->out, p, n) < 0)
		goto close;
	ev_io_start(s->loop, &c->wio);
	return true;
close:
	conn_close(c);
	return false;
}

/* Sends {"id", "ok", "result"|"error"}; payload is stolen. Returns false
 * when c is closed (as conn_write()). */
static bool conn_respond(struct ctl_conn *c, json_t *id, bool ok,
			 json_t *payload)
{
	json_t *resp = json_object();
	char *line = NULL;
	size_t len = 0;
	bool alive;

	if (resp && payload) {
		json_object_set(resp, "id", id ? id : json_null());
		json_object_set_new(resp, "ok", json_boolean(ok));
		json_object_set_new(resp, ok ? "result" : "error", payload);
		payload = NULL;
		line = encode_line(resp, &len);
	}
	json_decref(payload);
	json_decref(resp);
	if (!line && ok)
		return conn_respond(c, id, false,
				    ctl_error_object(CTL_ERR_UNAVAILABLE,
						     "internal error: cannot "
						     "encode the result"));
	if (!line) {
		conn_close(c);
		return false;
	}
	alive = conn_write(c, line, len);
	free(line);
	return alive;
}

static void conn_fail(struct ctl_conn *c, json_t *id, enum ctl_err code,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void conn_fail(struct ctl_conn *c, json_t *id, enum ctl_err code,
		      const char *fmt, ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = error_object_v(code, fmt, ap);
	va_end(ap);
	log_debug("control: pid %ld: %s", (long)c->pid, ctl_err_name(code));
	conn_respond(c, id, false, e);
}

/* --- requests ---------------------------------------------------------------- */

static bool conn_paused(const struct ctl_conn *c)
{
	return c->inflight >= c->server->opts.max_inflight;
}

/* Reading is on unless the connection is closed, at EOF, or paused. */
static void conn_update_rio(struct ctl_conn *c)
{
	if (c->dead || c->eof || conn_paused(c))
		ev_io_stop(c->server->loop, &c->rio);
	else
		ev_io_start(c->server->loop, &c->rio);
}

/* After a half-close, the connection ends once everything is answered and
 * written. False when c was closed. */
static bool conn_maybe_finish(struct ctl_conn *c)
{
	if (c->eof && !c->pending && buf_used(&c->out) == 0) {
		conn_close(c);
		return false;
	}
	return true;
}

static struct ctl_req *req_new(struct ctl_conn *c, json_t *id,
			       const struct ctl_op *op)
{
	struct ctl_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conn = c;
	r->id = json_incref(id);
	r->op = op->name;
	r->uid = c->uid;
	r->pid = c->pid;
	r->role = c->role;
	r->next = c->pending;
	if (c->pending)
		c->pending->prev = r;
	c->pending = r;
	c->inflight++;
	return r;
}

static void req_unlink(struct ctl_req *r)
{
	struct ctl_conn *c = r->conn;

	if (r->prev)
		r->prev->next = r->next;
	else
		c->pending = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->conn = NULL;
	c->inflight--;
}

/* A request was answered outside of c's own dispatching: resume reading
 * if it had paused, or end a half-closed connection. */
static void conn_after_reply(struct ctl_conn *c)
{
	if (c->busy > 0 || c->dead)
		return;
	if (c->inflight + 1 == c->server->opts.max_inflight) {
		conn_process(c);
		return;
	}
	conn_maybe_finish(c);
}

static void req_finish(struct ctl_req *req, bool ok, json_t *payload)
{
	struct ctl_conn *c = req->conn;

	if (c) {
		req_unlink(req);
		if (conn_respond(c, req->id, ok, payload))
			conn_after_reply(c);
		payload = NULL;
	}
	json_decref(payload);
	json_decref(req->id);
	free(req);
}

void ctl_reply_ok(struct ctl_req *req, json_t *result)
{
	req_finish(req, true, result ? result : json_object());
}

void ctl_reply_err(struct ctl_req *req, enum ctl_err code, const char *fmt,
		   ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = error_object_v(code, fmt, ap);
	va_end(ap);
	req_finish(req, false, e);
}

uid_t ctl_req_peer_uid(const struct ctl_req *req)
{
	return req->uid;
}

pid_t ctl_req_peer_pid(const struct ctl_req *req)
{
	return req->pid;
}

enum ctl_role ctl_req_role(const struct ctl_req *req)
{
	return req->role;
}

const char *ctl_req_op(const struct ctl_req *req)
{
	return req->op;
}

bool ctl_req_detached(const struct ctl_req *req)
{
	return req->conn == NULL || req->conn->dead;
}

/* --- dispatch ---------------------------------------------------------------- */

static const struct ctl_op *op_lookup(const struct ctl_server *s,
				      const char *name, void **ctx)
{
	for (size_t i = 0; i < s->nregs; i++) {
		for (size_t j = 0; j < s->regs[i].n; j++) {
			if (strcmp(s->regs[i].table[j].name, name) == 0) {
				*ctx = s->regs[i].ctx;
				return &s->regs[i].table[j];
			}
		}
	}
	return NULL;
}

/* Checks the request's shape (root is an object) and the caller's role.
 * Returns CTL_ERR_COUNT when the op may run (*op, *ctx set), else the error
 * with its message in msg. */
static enum ctl_err request_check(const struct ctl_conn *c, json_t *root,
				  const struct ctl_op **op, void **ctx,
				  char *msg, size_t len)
{
	json_t *opj = json_object_get(root, "op");
	json_t *args = json_object_get(root, "args");
	const char *name;

	if (!json_is_string(opj)) {
		snprintf(msg, len, "op must be a string");
		return CTL_ERR_BAD_REQUEST;
	}
	if (args && !json_is_null(args) && !json_is_object(args)) {
		snprintf(msg, len, "args must be an object");
		return CTL_ERR_BAD_REQUEST;
	}
	name = json_string_value(opj);
	*op = op_lookup(c->server, name, ctx);
	if (!*op) {
		/* The name is the caller's own input: echoed only if short. */
		if (strlen(name) <= CTL_OP_ECHO_MAX)
			snprintf(msg, len, "unknown op \"%s\"", name);
		else
			snprintf(msg, len, "unknown op");
		return CTL_ERR_UNKNOWN_OP;
	}
	if (!((*op)->roles & c->role)) {
		snprintf(msg, len, "%s is not allowed for role %s",
			 (*op)->name, ctl_role_name(c->role));
		return CTL_ERR_PERMISSION_DENIED;
	}
	return CTL_ERR_COUNT;
}

/* Runs one parsed request, or answers why it cannot run. */
static void conn_dispatch(struct ctl_conn *c, json_t *root)
{
	const struct ctl_op *op = NULL;
	json_t *id, *args, *empty = NULL;
	char msg[CTL_MSG_MAX];
	struct ctl_req *req;
	enum ctl_err code;
	void *ctx = NULL;

	if (!json_is_object(root)) {
		conn_fail(c, NULL, CTL_ERR_BAD_REQUEST,
			  "a request must be a JSON object");
		return;
	}
	id = json_object_get(root, "id");
	if (json_is_object(id) || json_is_array(id)) {
		conn_fail(c, NULL, CTL_ERR_BAD_REQUEST,
			  "id must be a string, number, boolean or null");
		return;
	}
	code = request_check(c, root, &op, &ctx, msg, sizeof(msg));
	if (code != CTL_ERR_COUNT) {
		conn_fail(c, id, code, "%s", msg);
		return;
	}
	args = json_object_get(root, "args");
	if (!json_is_object(args))
		args = empty = json_object();
	req = args ? req_new(c, id, op) : NULL;
	if (req)
		op->handler(req, args, ctx);
	else
		conn_fail(c, id, CTL_ERR_UNAVAILABLE, "out of memory");
	json_decref(empty);
}

/* Depth of [ and { nesting outside strings exceeds max (checked before
 * parsing, so a deep request costs no allocation). */
static bool too_deep(const char *p, size_t n, unsigned max)
{
	bool str = false, esc = false;
	unsigned depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (esc)
			esc = false;
		else if (str && p[i] == '\\')
			esc = true;
		else if (p[i] == '"')
			str = !str;
		else if (!str && (p[i] == '[' || p[i] == '{') && ++depth > max)
			return true;
		else if (!str && (p[i] == ']' || p[i] == '}') && depth > 0)
			depth--;
	}
	return false;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* One request line, without its '\n'. */
static void conn_line(struct ctl_conn *c, const char *p, size_t n)
{
	const struct ctl_server_opts *o = &c->server->opts;
	json_error_t jerr;
	json_t *root;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > o->max_line) {
		conn_fail(c, NULL, CTL_ERR_REQUEST_TOO_LARGE,
			  "request line over %zu bytes", o->max_line);
	} else if (blank(p, n)) {
		return;
	} else if (too_deep(p, n, CTL_MAX_DEPTH)) {
		conn_fail(c, NULL, CTL_ERR_BAD_REQUEST,
			  "request nested deeper than %d levels",
			  CTL_MAX_DEPTH);
	} else if (!(root = json_loadb(p, n, JSON_DECODE_ANY |
				       JSON_REJECT_DUPLICATES, &jerr))) {
		conn_fail(c, NULL, CTL_ERR_BAD_REQUEST,
			  "invalid JSON at column %d: %s", jerr.column,
			  jerr.text);
	} else {
		conn_dispatch(c, root);
		json_decref(root);
	}
}

/* Takes the next complete line out of c->in, if any. */
static bool conn_next_line(struct ctl_conn *c)
{
	size_t avail = buf_used(&c->in);
	char *start, *nl;

	if (avail == 0)
		return false;
	start = c->in.data + c->in.off;
	nl = memchr(start + c->scanned, '\n', avail - c->scanned);
	if (!nl) {
		c->scanned = avail;
		return false;
	}
	c->scanned = 0;
	conn_line(c, start, (size_t)(nl - start));
	buf_consume(&c->in, (size_t)(nl - start) + 1);
	return true;
}

/* What is left in c->in has no newline: at EOF it is the last request;
 * otherwise, once over max_line, it is refused and skipped to its '\n'. */
static void conn_tail(struct ctl_conn *c)
{
	size_t avail = buf_used(&c->in);

	if (avail == 0)
		return;
	if (c->eof) {
		conn_line(c, c->in.data + c->in.off, avail);
	} else if (avail > c->server->opts.max_line) {
		conn_fail(c, NULL, CTL_ERR_REQUEST_TOO_LARGE,
			  "request line over %zu bytes",
			  c->server->opts.max_line);
		c->discarding = true;
	} else {
		return;
	}
	buf_free(&c->in);
	c->scanned = 0;
}

/* Dispatches the complete lines in c->in until c pauses. Returns false
 * when c was freed. */
static bool conn_process(struct ctl_conn *c)
{
	c->busy++;
	while (!c->dead && !conn_paused(c) && conn_next_line(c))
		;
	if (!c->dead && !conn_paused(c))
		conn_tail(c);
	c->busy--;
	if (c->dead) {
		if (c->busy == 0)
			conn_close(c);
		return false;
	}
	conn_update_rio(c);
	return conn_maybe_finish(c);
}

/* Adds freshly read bytes to c->in, skipping the rest of a refused line. */
static int conn_take(struct ctl_conn *c, const char *p, size_t n)
{
	if (c->discarding) {
		const char *nl = memchr(p, '\n', n);

		if (!nl)
			return 0;
		c->discarding = false;
		n -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	return n ? buf_append(&c->in, p, n) : 0;
}

/* After a full close (not a shutdown(SHUT_WR)) a Unix stream socket polls
 * as hung up: then nobody is left to read the answers. */
static bool peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;
	char *scratch = c->server->scratch;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(c->fd, scratch, CTL_READ_CHUNK);
	if (n < 0 && send_again(errno))
		return;
	if (n < 0 || (n == 0 && peer_gone(c->fd)) ||
	    (n > 0 && conn_take(c, scratch, (size_t)n) < 0)) {
		conn_close(c);
		return;
	}
	if (n == 0)
		c->eof = true;
	conn_process(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (conn_flush(c) && buf_used(&c->out) == 0)
		conn_maybe_finish(c);
}

/* --- connections --------------------------------------------------------- */

static void conn_free(struct ctl_conn *c)
{
	while (c->pending)
		req_unlink(c->pending);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Closes c at once; frees it now, or when its dispatching unwinds. */
static void conn_close(struct ctl_conn *c)
{
	struct ctl_server *s = c->server;

	if (!c->dead) {
		c->dead = true;
		ev_io_stop(s->loop, &c->rio);
		ev_io_stop(s->loop, &c->wio);
		close(c->fd);
		c->fd = -1;
		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		s->nconns--;
		if (c->subscriber)
			s->nsubs--;
	}
	if (c->busy == 0)
		conn_free(c);
}

static void conn_new(struct ctl_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct ctl_conn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    !(c = calloc(1, sizeof(*c)))) {
		log_warn("control: refusing a client: %s", strerror(errno));
		close(fd);
		return;
	}
	c->server = s;
	c->fd = fd;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->role = peer_role(s, fd, c);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	ev_io_start(s->loop, &c->rio);
	log_debug("control: client pid %ld uid %lu role %s", (long)c->pid,
		  (unsigned long)c->uid, ctl_role_name(c->role));
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_server *s = w->data;

	(void)revents;
	if (s->fd >= 0)
		ev_io_start(loop, &s->lio);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_server *s = w->data;

	(void)revents;
	for (int i = 0; i < CTL_ACCEPT_BATCH; i++) {
		int fd = accept4(s->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(s, fd);
			continue;
		}
		if (send_again(errno) || errno == ECONNABORTED)
			return;
		/* Out of descriptors or memory: accept4() would fail again
		 * at once, so stop polling the socket for a while. */
		log_warn("control: accept: %s", strerror(errno));
		ev_io_stop(loop, &s->lio);
		ev_timer_set(&s->retry, CTL_ACCEPT_RETRY, 0.);
		ev_timer_start(loop, &s->retry);
		return;
	}
}

/* --- built-in ops -------------------------------------------------------- */

static void op_ping(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:s}", "version", SMSGW_VERSION));
}

/* Answers first, so the ok precedes the first event on the wire. */
static void op_subscribe(struct ctl_req *req, json_t *args, void *ctx)
{
	struct ctl_conn *c = req->conn;

	(void)args;
	(void)ctx;
	ctl_reply_ok(req, NULL);
	if (c && !c->dead && !c->subscriber) {
		c->subscriber = true;
		c->server->nsubs++;
	}
}

static const struct ctl_op ctl_builtin_ops[] = {
	{ "ping", op_ping, CTL_ROLE_ANY },
	{ "events.subscribe", op_subscribe, CTL_ROLE_ADMIN },
};

int ctl_register(struct ctl_server *s, const struct ctl_op *table, size_t n,
		 void *module_ctx)
{
	struct ctl_reg *regs;
	void *ctx;

	for (size_t i = 0; i < n; i++) {
		if (!table[i].name || !table[i].handler ||
		    !(table[i].roles & CTL_ROLE_ANY))
			return -EINVAL;
		if (op_lookup(s, table[i].name, &ctx))
			return -EEXIST;
		for (size_t j = 0; j < i; j++)
			if (strcmp(table[i].name, table[j].name) == 0)
				return -EEXIST;
	}
	regs = realloc(s->regs, (s->nregs + 1) * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	s->regs = regs;
	s->regs[s->nregs++] = (struct ctl_reg){ table, n, module_ctx };
	return 0;
}

/* --- events ---------------------------------------------------------------- */

int ctl_broadcast_event(struct ctl_server *s, const char *event,
			json_t *fields)
{
	const char *key;
	json_t *obj, *val;
	char *line;
	size_t len;

	if (fields && !json_is_object(fields)) {
		json_decref(fields);
		return -EINVAL;
	}
	if (s->nsubs == 0) {
		json_decref(fields);
		return 0;
	}
	obj = json_pack("{s:s}", "event", event);
	if (obj && fields) {
		json_object_foreach(fields, key, val) {
			if (strcmp(key, "event") != 0)
				json_object_set(obj, key, val);
		}
	}
	json_decref(fields);
	line = obj ? encode_line(obj, &len) : NULL;
	json_decref(obj);
	if (!line)
		return -ENOMEM;
	for (struct ctl_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->subscriber)
			conn_write(c, line, len);
	}
	free(line);
	return 0;
}

size_t ctl_server_client_count(const struct ctl_server *s)
{
	return s->nconns;
}

size_t ctl_server_subscriber_count(const struct ctl_server *s)
{
	return s->nsubs;
}

size_t ctl_server_buffered_bytes(const struct ctl_server *s)
{
	size_t sum = 0;

	for (const struct ctl_conn *c = s->conns; c; c = c->next)
		sum += c->in.cap + c->out.cap;
	return sum;
}

/* --- the listening socket ------------------------------------------------ */

/* connect() to whatever listens at path: 0 if something answers (or its
 * backlog is full), -ECONNREFUSED for a stale socket, -errno otherwise. */
static int sock_probe(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EAGAIN && errno != EINPROGRESS)
		r = -errno;
	close(fd);
	return r;
}

/* Makes the path free for bind(): nothing there, or a stale socket that is
 * removed. Anything else is refused with a message. */
static int sock_clear_path(const struct sockaddr_un *sa, char *err,
			   size_t errlen)
{
	const char *path = sa->sun_path;
	struct stat st;
	int r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; "
			 "refusing to replace it", path);
		return -EEXIST;
	}
	r = sock_probe(sa);
	if (r == 0) {
		snprintf(err, errlen, "another smsgwd is listening on %s",
			 path);
		return -EADDRINUSE;
	}
	if (r != -ECONNREFUSED && r != -ENOENT) {
		snprintf(err, errlen, "%s: cannot probe the socket: %s", path,
			 strerror(-r));
		return r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot remove the stale socket: %s",
			 path, strerror(errno));
		return r;
	}
	log_info("control: replaced a stale socket at %s", path);
	return 0;
}

static void acl_perm(mode_t bits, char out[4])
{
	out[0] = bits & 4 ? 'r' : '-';
	out[1] = bits & 2 ? 'w' : '-';
	out[2] = bits & 1 ? 'x' : '-';
	out[3] = '\0';
}

/* The node has one group (the admins'); the portal's group gets the same
 * access through a POSIX ACL entry, so both can connect while everyone
 * else cannot. Roles still come from SO_PEERCRED: reaching the socket
 * grants nothing by itself. */
static int sock_grant_portal(struct ctl_server *s, const char *path,
			     gid_t node_gid)
{
	gid_t portal = s->opts.portal_gid;
	char u[4], g[4], o[4], text[128];
	acl_t acl;
	int rc;

	if (portal == CTL_NO_GID || portal == node_gid ||
	    (s->opts.mode & 0070) == 0)
		return 0;
	acl_perm((s->opts.mode >> 6) & 7, u);
	acl_perm((s->opts.mode >> 3) & 7, g);
	acl_perm(s->opts.mode & 7, o);
	snprintf(text, sizeof(text), "u::%s,g::%s,g:%u:%s,m::%s,o::%s", u, g,
		 (unsigned)portal, g, g, o);
	acl = acl_from_text(text);
	if (!acl)
		return -1;
	rc = acl_set_file(path, ACL_TYPE_ACCESS, acl);
	acl_free(acl);
	return rc;
}

/* Permissions go on before listen(): until then connect() is refused, so
 * nobody slips in while the mode is still the umask's. */
static int sock_listen(struct ctl_server *s, const struct sockaddr_un *sa,
		       char *err, size_t errlen)
{
	gid_t gid = s->opts.socket_gid != CTL_NO_GID ? s->opts.socket_gid
						      : s->opts.admin_gid;
	const char *what = "bind";
	struct stat st;

	if (bind(s->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		goto fail;
	what = "chmod";
	if (chmod(sa->sun_path, s->opts.mode) < 0)
		goto fail_bound;
	what = "chown";
	if (gid != CTL_NO_GID && chown(sa->sun_path, (uid_t)-1, gid) < 0)
		goto fail_bound;
	what = "setfacl";
	if (sock_grant_portal(s, sa->sun_path, gid) < 0)
		goto fail_bound;
	what = "stat";
	if (stat(sa->sun_path, &st) < 0)
		goto fail_bound;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	what = "listen";
	if (listen(s->fd, SOMAXCONN) < 0)
		goto fail_bound;
	return 0;
fail_bound:
	snprintf(err, errlen, "%s: %s: %s", sa->sun_path, what,
		 strerror(errno));
	unlink(sa->sun_path);
	return -1;
fail:
	snprintf(err, errlen, "%s: %s: %s", sa->sun_path, what,
		 strerror(errno));
	return -1;
}

static int sock_open(struct ctl_server *s, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!s->path || !s->path[0] ||
	    strlen(s->path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path %s (at most %zu "
			 "bytes)", s->path && s->path[0] ? "too long" : "empty",
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	if (sock_clear_path(&sa, err, errlen) < 0)
		return -1;
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	return sock_listen(s, &sa, err, errlen);
}

void ctl_server_opts_default(struct ctl_server_opts *o)
{
	*o = (struct ctl_server_opts){
		.path = NULL,
		.mode = CTL_DEFAULT_MODE,
		.socket_gid = CTL_NO_GID,
		.admin_gid = CTL_NO_GID,
		.portal_gid = CTL_NO_GID,
		.daemon_uid = getuid(),
		.max_line = CTL_DEFAULT_MAX_LINE,
		.max_outbuf = CTL_DEFAULT_MAX_OUTBUF,
		.max_inflight = CTL_DEFAULT_MAX_INFLIGHT,
	};
}

struct ctl_server *ctl_server_new(struct ev_loop *loop,
				  const struct ctl_server_opts *opts,
				  char *err, size_t errlen)
{
	struct ctl_server *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->loop = loop;
	s->opts = *opts;
	s->fd = -1;
	if (!s->opts.max_line)
		s->opts.max_line = CTL_DEFAULT_MAX_LINE;
	if (!s->opts.max_outbuf)
		s->opts.max_outbuf = CTL_DEFAULT_MAX_OUTBUF;
	if (!s->opts.max_inflight)
		s->opts.max_inflight = CTL_DEFAULT_MAX_INFLIGHT;
	s->path = opts->path ? strdup(opts->path) : NULL;
	s->scratch = malloc(CTL_READ_CHUNK);
	if ((opts->path && !s->path) || !s->scratch) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (sock_open(s, err, errlen) < 0 ||
	    ctl_register(s, ctl_builtin_ops, sizeof(ctl_builtin_ops) /
			 sizeof(ctl_builtin_ops[0]), s) < 0)
		goto fail;
	ev_io_init(&s->lio, accept_cb, s->fd, EV_READ);
	ev_timer_init(&s->retry, accept_retry_cb, CTL_ACCEPT_RETRY, 0.);
	s->lio.data = s->retry.data = s;
	ev_io_start(loop, &s->lio);
	return s;
fail:
	ctl_server_free(s);
	return NULL;
}

void ctl_server_stop_accepting(struct ctl_server *s)
{
	struct stat st;

	if (!s || s->fd < 0)
		return;
	ev_io_stop(s->loop, &s->lio);
	ev_timer_stop(s->loop, &s->retry);
	close(s->fd);
	s->fd = -1;
	/* A newer daemon may have replaced the node: only remove ours. */
	if (s->ino && lstat(s->path, &st) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlink(s->path);
}

void ctl_server_free(struct ctl_server *s)
{
	if (!s)
		return;
	ctl_server_stop_accepting(s);
	while (s->conns)
		conn_close(s->conns);
	free(s->regs);
	free(s->scratch);
	free(s->path);
	free(s);
}
