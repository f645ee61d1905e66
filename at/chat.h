/* chat — the AT command engine: a command queue, line classification and
 * URC dispatch on one modem port, on libev. No policy: what to send and
 * what an error means is the driver's business.
 *
 * The fd belongs to the caller (the transport): at_chat_new() sets it
 * O_NONBLOCK, watches it for reading (and for writing while output is
 * pending), and never closes it. After an I/O failure the chat stops
 * touching the fd; the caller closes it after at_chat_free().
 *
 * Classification of every received line, in this one order:
 *   1. echo of the command in flight (ATE1; also the echoed PDU) -> dropped
 *   2. final result of the command in flight (OK, ERROR, +CME ERROR: n,
 *      +CMS ERROR: n, NO CARRIER, BUSY, NO ANSWER, NO DIALTONE, CONNECT,
 *      plus the chat's extra finals) -> completes the command
 *   3. information line: starts with one of the command's prefixes (and,
 *      with .pdu_lines, the PDU line after each such line)
 *   4. URC: starts with a registered prefix -> every matching handler
 *      (two-line URCs get header + PDU in one call; a one-line URC
 *      between a header and its PDU is dispatched and the PDU still
 *      goes with its header; a PDU that never comes gives the header
 *      alone)
 *   5. information line of a .bare command (ATI, AT+CGMI, AT+CGSN)
 *   6. anything else -> the unsolicited catch-all (optional)
 * URCs arriving between the lines of a response are dispatched on their
 * own and never become part of it.
 *
 * Queue: one command on the wire at a time, each with its own timeout.
 * A prompt command (AT+CMGS=<n> with .prompt) is one entry: on "> " the
 * chat writes the prompt data and Ctrl-Z itself (ESC if it was cancelled).
 * On a timeout the callback gets AT_ERR_TIMEOUT, unsent bytes are
 * dropped (a prompt command still waiting for "> " gets an ESC), the port
 * is marked unsynchronised and a resync starts at once; no queued command
 * goes out before it ends. The resync sends "AT" and waits for an OK
 * followed by a quiet window with no other final result (a late reply's
 * final makes it ask again), so the late reply cannot be taken for the
 * next command's answer; its lines go to the catch-all. After a bounded
 * number of tries the queue goes on regardless and the port stays
 * unsynchronised. The consecutive-timeout count is exposed for drivers
 * that reset the modem after N.
 *
 * Callback contract:
 *  - at_chat_send() returns a nonzero id and from then on owns userdata:
 *    destroy(userdata) is called exactly once, after the callback (or at
 *    cancel / at_chat_free()). On failure it returns 0 and the caller
 *    still owns userdata.
 *  - A callback is never called before at_chat_send() returns.
 *  - The at_result and every line in it are borrowed for the callback.
 *  - Any callback (command, URC, catch-all, disconnect) may call
 *    at_chat_send(), at_chat_cancel*(), at_chat_register/unregister() and
 *    at_chat_free() on the chat dispatching it; a free from inside a
 *    callback is deferred until the dispatch unwinds, and nothing more is
 *    called afterwards except the destroy functions. The trace callback
 *    must not call into the chat.
 *  - Cancelled commands never get their callback; destroy is called at
 *    once from at_chat_cancel(). at_chat_free() calls destroy for every
 *    pending command and URC registration, no callbacks.
 *  - On read EOF/error/hang-up or a write error, every pending command
 *    completes with AT_ERR_IO in queue order, then the disconnect callback
 *    fires once. Later sends fail (return 0). */
#ifndef SMSGW_CHAT_H
#define SMSGW_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "at/aterr.h"
#include "at/result.h"

struct ev_loop;
struct at_chat;

#define AT_CMD_MAX_PREFIXES 4
#define AT_CHAT_DEFAULT_TIMEOUT_MS 5000
#define AT_CHAT_RESYNC_TIMEOUT_MS 1000 /* per "AT" of a resync */
#define AT_CHAT_RESYNC_QUIET_MS 200    /* quiet window after its OK */
#define AT_CHAT_RESYNC_TRIES 3
#define AT_CMD_TEXT_MAX 1024   /* longest command text */
#define AT_CMD_PROMPT_MAX 4096 /* longest prompt data */

/* One command. Strings are copied by at_chat_send(). */
struct at_cmd {
	const char *text;     /* "AT+CSQ", without CR (the chat adds it) */
	const char *prefix[AT_CMD_MAX_PREFIXES]; /* information-line prefixes,
				 e.g. { "+CSQ:" }; unused slots NULL */
	bool bare;            /* lines with no registered URC prefix are
				 information lines (ATI, AT+CGMI, AT+CGSN) */
	bool pdu_lines;       /* each prefixed line is followed by a hex PDU
				 line that belongs to the response
				 (AT+CMGR, AT+CMGL) */
	const char *prompt;   /* prompt command: written after "> ", then
				 Ctrl-Z (AT+CMGS=<n>: the PDU hex) */
	unsigned timeout_ms;  /* 0: the chat's default */
};

typedef void (*at_chat_cb)(const struct at_result *res, void *userdata);
typedef void (*at_destroy_fn)(void *userdata);
/* URC: res->lines[0] is the header, lines[1] the PDU for two-line URCs
 * (n_lines is 1 if the PDU line never came), err is AT_ERR_OK. */
typedef void (*at_notify_fn)(const struct at_result *res, void *userdata);
/* Unregistered line outside any response (or a late reply). */
typedef void (*at_unsolicited_fn)(const char *line, size_t len,
				  void *userdata);
/* err: 0 for EOF/hang-up, else -errno of the failed read()/write(). */
typedef void (*at_disconnect_fn)(int err, void *userdata);

enum at_trace {
	AT_TRACE_RX,       /* a received line (before classification) */
	AT_TRACE_RX_PDU,   /* a received PDU line */
	AT_TRACE_PROMPT,   /* "> " received */
	AT_TRACE_TX,       /* bytes queued for writing */
	AT_TRACE_DROP,     /* a dropped garbage byte (data[0]) */
	AT_TRACE_OVERFLOW, /* a discarded over-long line (first bytes) */
	AT_TRACE_STRAY,    /* a prompt nobody waited for */
};
/* Debug trace; data is borrowed and not NUL-terminated. May carry phone
 * numbers and PDUs: the receiver masks before logging above debug. */
typedef void (*at_trace_fn)(enum at_trace what, const char *data,
			    size_t len, void *userdata);

/* Returns NULL on allocation failure or when fd is invalid (errno set).
 * The chat starts synchronised; call at_chat_unsync() to make the first
 * command wait for a clean "AT"/OK (e.g. right after opening a port that
 * may hold a half-typed line). */
struct at_chat *at_chat_new(struct ev_loop *loop, int fd);
/* Accepts NULL. Safe inside any callback of this chat (deferred). */
void at_chat_free(struct at_chat *chat);

/* Queues cmd. Returns its id (nonzero), or 0 when cmd is invalid (no
 * text, text/prompt with CR, LF or control bytes), the chat has failed,
 * or memory ran out. cb may be NULL (fire and forget). */
unsigned at_chat_send(struct at_chat *chat, const struct at_cmd *cmd,
		      at_chat_cb cb, void *userdata, at_destroy_fn destroy);

/* Cancels a queued or in-flight command: its callback is never called,
 * destroy is called now. An in-flight command still owns the wire until
 * its final result or timeout (a prompt command gets ESC instead of its
 * data). Returns 0 or -ENOENT (unknown or already completed id). */
int at_chat_cancel(struct at_chat *chat, unsigned id);
void at_chat_cancel_all(struct at_chat *chat);

/* Registers a URC handler for lines starting with prefix ("+CMTI:",
 * "^RSSI:", "RDY", "SMS Ready"). pdu: a two-line URC (+CMT:, +CDS:),
 * delivered as header + PDU. Several handlers may share a prefix; they
 * run in registration order. Returns an id (nonzero) or 0; on 0 the
 * caller keeps userdata. */
unsigned at_chat_register(struct at_chat *chat, const char *prefix,
			  bool pdu, at_notify_fn fn, void *userdata,
			  at_destroy_fn destroy);
/* Returns 0 or -ENOENT. destroy is called now. */
int at_chat_unregister(struct at_chat *chat, unsigned id);

/* Knob for vendor quirks: a line starting with prefix is a final result
 * of the given type (e.g. "COMMAND NOT SUPPORT" -> AT_ERR_ERROR on ZTE).
 * Checked after the standard table. Returns 0, -EINVAL or -ENOMEM. */
int at_chat_add_final(struct at_chat *chat, const char *prefix,
		      enum at_err_type type);

void at_chat_set_unsolicited(struct at_chat *chat, at_unsolicited_fn fn,
			     void *userdata);
void at_chat_set_disconnect(struct at_chat *chat, at_disconnect_fn fn,
			    void *userdata);
void at_chat_set_trace(struct at_chat *chat, at_trace_fn fn,
		       void *userdata);

/* Default command timeout (0 keeps the current one). */
void at_chat_set_default_timeout(struct at_chat *chat, unsigned ms);
/* Resync: per-"AT" timeout, quiet window after its OK, tries before the
 * queue goes on regardless (0 keeps the current value). */
void at_chat_set_resync(struct at_chat *chat, unsigned timeout_ms,
			unsigned quiet_ms, unsigned tries);

/* Marks the port unsynchronised (e.g. after a modem reset or re-open):
 * the next command is preceded by a resync. */
void at_chat_unsync(struct at_chat *chat);
bool at_chat_is_synced(const struct at_chat *chat);

/* Consecutive command timeouts: reset when a queued command gets a final
 * result from the modem (a resync's OK does not reset it, so a modem that
 * answers "AT" but hangs on every real command still counts up). */
unsigned at_chat_timeouts(const struct at_chat *chat);
/* Commands queued or in flight, cancelled ones on the wire included. */
size_t at_chat_pending(const struct at_chat *chat);
/* True after an I/O failure (the fd is no longer touched). */
bool at_chat_failed(const struct at_chat *chat);

#endif
