/* ctlclient — the client side of the control protocol (see ctl.h), for
 * smsgwctl and tests.
 *
 * Blocking, one connection, one request at a time: ctlc_call() sends a
 * request and waits for the answer carrying its id, up to a timeout.
 * Every wait is a poll() with a deadline; nothing waits forever unless the
 * caller asks for it (ctlc_next() with timeout_ms < 0, for `watch`).
 *
 * Secrets: the serialized request is wiped from this module's memory once
 * written (the caller wipes its own copies).
 */
#ifndef SMSGW_CTLCLIENT_H
#define SMSGW_CTLCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct ctlc;

/* Connects to the socket at path, waiting at most timeout_ms (< 0:
 * forever) for a server whose backlog is full. NULL on failure, with a
 * message naming the socket in err ("cannot connect to PATH: No such file
 * or directory"). */
struct ctlc *ctlc_open(const char *path, int timeout_ms, char *err,
		       size_t errlen);
void ctlc_free(struct ctlc *c);

/* One answer. All pointers are into `raw`, which the struct owns. */
struct ctlc_resp {
	bool ok;
	json_t *result;      /* ok: the result object ({} when absent) */
	const char *code;    /* !ok: the error code ("" if missing) */
	const char *message; /* !ok: the error message ("" if missing) */
	json_t *raw;         /* the whole answer line */
};

/* Frees what resp holds and zeroes it. */
void ctlc_resp_clear(struct ctlc_resp *resp);

/* Sends {"id", "op", "args"} (args stolen; NULL sends none) and waits at
 * most timeout_ms (< 0: forever) for the answer with that id; event lines
 * and answers to other ids meanwhile are skipped. A refusal with a null id
 * (the server could not read the request, e.g. a line too long) counts as
 * the answer, since only one request is in flight. Returns 0 with *resp
 * filled (ok or refused: see resp->ok); -ETIMEDOUT; -ECONNRESET when the
 * server closed; -EPROTO for a line that is not a JSON object; -ENOMEM;
 * other -errno from the socket. *resp is untouched on failure. */
int ctlc_call(struct ctlc *c, const char *op, json_t *args, int timeout_ms,
	      struct ctlc_resp *resp);

/* The next line from the server as a JSON object (owned by the caller),
 * waiting at most timeout_ms (< 0: forever). Same errors as ctlc_call(). */
int ctlc_next(struct ctlc *c, int timeout_ms, json_t **msg);

/* A short text for the negative errors above ("no answer within the
 * timeout", "the server closed the connection", ...). */
const char *ctlc_strerror(int err);

#endif
