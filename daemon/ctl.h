/* ctl — the control socket: a Unix stream socket speaking JSON lines.
 *
 * One request per line: {"id": ANY SCALAR, "op": "name", "args": {...}}.
 * Answers: {"id", "ok": true, "result": {...}} or
 *          {"id", "ok": false, "error": {"code", "message"}}.
 * Subscribers (op events.subscribe) also get {"event": "name", ...} lines.
 *
 * Modules register tables of ops (STYLE.md 10); the dispatcher alone checks
 * the request's shape (an object, a scalar id, a string op, args an object
 * or absent) and the caller's role, so a handler only ever sees a permitted
 * request with an args object. ctl itself provides `ping` (any role) and
 * `events.subscribe` (admin).
 *
 * Roles come from SO_PEERCRED at accept time: admin = root, the daemon's own
 * uid, or a member (primary or supplementary group) of admin_gid; portal = a
 * member of portal_gid; otherwise none, which may only `ping`. A peer is
 * exactly one role (admin wins); ops list every role they accept.
 *
 * Limits: a line over max_line bytes gets request_too_large and is skipped up
 * to its newline without being buffered. A client with more than max_outbuf
 * bytes of unread output (responses or events) is dropped. A client with
 * max_inflight unanswered async requests is not read until one completes.
 * Idle connections hold no buffers.
 *
 * Everything runs on the libev loop given to ctl_server_new(); nothing
 * blocks except the getgrouplist() fallback for kernels without
 * SO_PEERGROUPS (NSS may be remote). Not thread-safe: call everything,
 * ctl_reply_*() included, from the loop's thread (a worker thread hands its
 * result back through an ev_async first).
 */
#ifndef SMSGW_CTL_H
#define SMSGW_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>

/* Roles, as bits: a peer has exactly one, an op accepts a mask. */
enum ctl_role {
	CTL_ROLE_NONE = 1u << 0,   /* anybody who can connect */
	CTL_ROLE_PORTAL = 1u << 1, /* the login portal */
	CTL_ROLE_ADMIN = 1u << 2,  /* administrators */
};
#define CTL_ROLE_ANY (CTL_ROLE_NONE | CTL_ROLE_PORTAL | CTL_ROLE_ADMIN)

/* "none", "portal", "admin"; "?" for anything else. */
const char *ctl_role_name(enum ctl_role role);

/* The protocol's error codes (DESIGN.md, "Control protocol"). Use these, not
 * string literals, so that a code cannot be misspelled. */
enum ctl_err {
	CTL_ERR_BAD_REQUEST,
	CTL_ERR_REQUEST_TOO_LARGE,
	CTL_ERR_PERMISSION_DENIED,
	CTL_ERR_UNKNOWN_OP,
	CTL_ERR_INVALID_PHONE,
	CTL_ERR_PHONE_PROFILES_DISABLED,
	CTL_ERR_ALREADY_EXISTS,
	CTL_ERR_NOT_FOUND,
	CTL_ERR_PHONE_IMMUTABLE,
	CTL_ERR_DAILY_INVITE_LIMIT,
	CTL_ERR_CLAIM_SMS_LIMIT,
	CTL_ERR_INVALID_TOKEN,
	CTL_ERR_TOKEN_EXPIRED,
	CTL_ERR_WEAK_PASSWORD,
	CTL_ERR_INVALID_PASSWORD,
	CTL_ERR_INVALID_CODE,
	CTL_ERR_RECOVERY_LOCKED,
	CTL_ERR_LOGIN_LOCKED,
	CTL_ERR_WRONG_STATE,
	CTL_ERR_UNAVAILABLE,
	CTL_ERR_COUNT
};

/* "bad_request", ...; NULL for a value out of range. */
const char *ctl_err_name(enum ctl_err code);
/* Maps a wire name back to the enum: 0, or -ENOENT. */
int ctl_err_parse(const char *name, enum ctl_err *out);

/* A new {"code": ..., "message": ...} object (for per-item errors such as
 * account.invite_many's results); NULL on allocation failure. The message
 * must not contain secrets; bytes that are not UTF-8 are replaced. */
json_t *ctl_error_object(enum ctl_err code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* --- the server ---------------------------------------------------------- */

#define CTL_NO_GID ((gid_t)-1) /* "no such group configured" */

#define CTL_DEFAULT_MODE 0660
#define CTL_DEFAULT_MAX_LINE (64u * 1024)
#define CTL_DEFAULT_MAX_OUTBUF (1024u * 1024)
#define CTL_DEFAULT_MAX_INFLIGHT 64u

struct ctl_server_opts {
	const char *path;      /* socket path (< 108 bytes), copied */
	mode_t mode;           /* permissions of the socket node */
	gid_t socket_gid;      /* group of the node; CTL_NO_GID: admin_gid,
				  and when that is CTL_NO_GID too, untouched */
	gid_t admin_gid;       /* members are admins; CTL_NO_GID: none */
	gid_t portal_gid;      /* members are portal; CTL_NO_GID: none */
	uid_t daemon_uid;      /* this uid is admin (as is root) */
	size_t max_line;       /* longest request line, without its newline */
	size_t max_outbuf;     /* unread output that drops a client */
	unsigned max_inflight; /* unanswered requests before reads pause */
};

/* Fills opts with the defaults above: gids CTL_NO_GID, daemon_uid = our
 * uid, path NULL (the caller must set it). Use it rather than zeroing: gid 0
 * is the root group, not "none". */
void ctl_server_opts_default(struct ctl_server_opts *opts);

struct ctl_server;

/* Binds and listens on opts->path and starts accepting on loop. A socket
 * file left at the path by a dead daemon (connect() is refused) is replaced;
 * a live one ("another smsgwd is listening on PATH") and anything that is
 * not a socket are refused. Returns NULL with a message in err on failure. */
struct ctl_server *ctl_server_new(struct ev_loop *loop,
				  const struct ctl_server_opts *opts,
				  char *err, size_t errlen);

/* Closes every connection and the listening socket, unlinks the socket
 * path when it is still ours, and frees the server. Requests a module still
 * holds become detached (see ctl_req_detached()); the module must still
 * reply to each of them (which then only frees it). NULL is fine. Never call
 * from inside a handler. */
void ctl_server_free(struct ctl_server *server);

/* Graceful stop: stops accepting, closes the listening socket and unlinks
 * its path; open connections keep being served until ctl_server_free(). */
void ctl_server_stop_accepting(struct ctl_server *server);

/* --- ops ------------------------------------------------------------------ */

struct ctl_req;

/* Called for a request whose role and shape were checked. args is the
 * request's args object ({} when absent), borrowed for the duration of the
 * call (json_incref() it to keep it). The handler must eventually call
 * exactly one of ctl_reply_ok() / ctl_reply_err() on req: at once, or later
 * from the loop's thread (async); until then it owns nothing but that duty. */
typedef void ctl_handler_fn(struct ctl_req *req, json_t *args,
			    void *module_ctx);

struct ctl_op {
	const char *name;        /* "account.invite", also the CLI's name */
	ctl_handler_fn *handler;
	unsigned roles;          /* mask of enum ctl_role */
};

/* Adds a module's table. The table (and its strings) must outlive the
 * server: make it static const. module_ctx is passed to its handlers.
 * Returns 0; -EEXIST if a name is already registered, -EINVAL for an entry
 * without name, handler or role (nothing of the table is added then);
 * -ENOMEM. */
int ctl_register(struct ctl_server *server, const struct ctl_op *table,
		 size_t n, void *module_ctx);

/* Answers req with {"ok": true, "result": result} and frees req. result
 * (an object) is stolen; NULL means {}. If the client has gone, the answer
 * is dropped. */
void ctl_reply_ok(struct ctl_req *req, json_t *result);

/* Answers req with an error and frees req. The message is printf-formatted,
 * at most 512 bytes, shown to the caller: never put a secret in it. */
void ctl_reply_err(struct ctl_req *req, enum ctl_err code, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

/* The caller, captured at connect time; valid until the reply (also after
 * the connection is gone), for audit entries. */
uid_t ctl_req_peer_uid(const struct ctl_req *req);
pid_t ctl_req_peer_pid(const struct ctl_req *req);
enum ctl_role ctl_req_role(const struct ctl_req *req);
const char *ctl_req_op(const struct ctl_req *req);

/* True once the connection is gone: the reply will be dropped, so an async
 * handler may skip work it would only do for the answer. It must still
 * reply (to free req). */
bool ctl_req_detached(const struct ctl_req *req);

/* --- events --------------------------------------------------------------- */

/* Sends {"event": event, ...fields} to every subscriber. fields (an object,
 * or NULL) is stolen; a key "event" in it is overridden. A subscriber whose
 * unread output would pass max_outbuf is dropped. Returns 0 or -ENOMEM /
 * -EINVAL (fields not an object). */
int ctl_broadcast_event(struct ctl_server *server, const char *event,
			json_t *fields);

/* --- introspection (tests, status) ---------------------------------------- */

size_t ctl_server_client_count(const struct ctl_server *server);
size_t ctl_server_subscriber_count(const struct ctl_server *server);
/* Bytes allocated for per-connection input and output buffers, summed. */
size_t ctl_server_buffered_bytes(const struct ctl_server *server);

/* --- role resolution (pure, exposed for tests) ---------------------------- */

struct ctl_role_policy {
	uid_t daemon_uid;
	gid_t admin_gid;  /* CTL_NO_GID: none */
	gid_t portal_gid; /* CTL_NO_GID: none */
};

/* The role of a peer with uid, primary gid and supplementary groups. */
enum ctl_role ctl_role_resolve(const struct ctl_role_policy *policy,
			       uid_t uid, gid_t gid, const gid_t *groups,
			       size_t ngroups);

#endif
