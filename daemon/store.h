/* store — the SQLite database, state_dir/smsgw.db.
 *
 * The only module that includes sqlite3.h. It owns the schema (a versioned
 * list of migrations, see below), the transactions, and the queries of the
 * outbox, the inbox, the audit log and the settings. Other modules that
 * keep tables of their own (accounts) use the narrow statement API at the
 * end of this file, so that sqlite3.h stays out of every other header.
 *
 * Durability: WAL mode with synchronous=FULL. In WAL mode FULL fsyncs the
 * WAL at every commit, so a committed transaction survives a power cut;
 * NORMAL only fsyncs at checkpoints and may lose the last commits on power
 * loss (not on a process crash). DESIGN.md promises "accepted means
 * durable", so FULL it is: one fsync per commit. The per-SMS write path is
 * therefore a handful of prepared statements in few transactions; callers
 * that do several writes at once group them in one store_tx_begin/commit.
 *
 * Time: every timestamp is an int64 of milliseconds since the Unix epoch
 * (UTC) in the database and in this API; JSON renders it as ISO 8601 UTC
 * with milliseconds, "2024-05-01T10:00:00.123Z".
 *
 * Errors: 0 or -errno. SQLite failures map to -ENOSPC (disk full), -EIO
 * (I/O error), -EBUSY (locked by another process), -ENOMEM, -EROFS,
 * -EUCLEAN (corruption), -EEXIST (unique key), -EINVAL (other constraint);
 * store_error_unavailable() says which of them the control protocol
 * reports as `unavailable`. A failed write rolls back what it did and
 * leaves the store usable. The SQLite message is logged once, here, with
 * the statement's SQL but never the bound values (no secret or phone number
 * ever reaches the log through the store).
 *
 * Schema changes: append an entry to store_migrations[] in store.c (one
 * SQL script, run in one transaction; PRAGMA user_version counts those
 * applied). Never edit, reorder or remove a released entry. There is one
 * list, not one per module, because user_version is one number: a single
 * total order is what lets an older binary recognise a newer database and
 * refuse it. sms.account_id and audit.account_id carry no foreign key:
 * SQLite cannot add one to an existing column, and the history must
 * survive an account's removal.
 *
 * Threads: one connection, used from the event loop thread only. */
#ifndef SMSGW_STORE_H
#define SMSGW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_FILE "smsgw.db"
#define STORE_ERR_MAX 512  /* a good size for store_open()'s message */
#define STORE_ISO_MAX 32   /* "2024-05-01T10:00:00.123Z" + NUL */
#define STORE_LIST_MAX 1000 /* largest page of a list */
#define STORE_LIST_DEFAULT 100

struct store;
struct store_stmt;
struct json_t; /* jansson's; callers that use it include <jansson.h> */

/* --- open, close, errors ------------------------------------------------ */

/* Opens (creating when missing) state_dir/smsgw.db and migrates it to the
 * newest schema. Refuses, without modifying the file, a database that is:
 * not SQLite or truncated, damaged (PRAGMA quick_check), another program's,
 * newer than this binary (user_version above ours), or not writable (file
 * or directory: WAL needs to create smsgw.db-wal and -shm beside it); and
 * refuses a missing state_dir. On failure writes "<path>: <reason>" into
 * err (may be NULL) and returns -ENOENT, -ENOTDIR, -EROFS, -EUCLEAN,
 * -ENOTSUP (newer schema), -EPROTO (not ours) or another -errno; *out is
 * left untouched. */
int store_open(const char *state_dir, struct store **out, char *err,
	       size_t errlen);

/* Closes the database. Free the statements from store_stmt_prepare()
 * first (if some are left, the connection lingers until the last one is
 * freed, and an error is logged). Accepts NULL. */
void store_free(struct store *s);

/* The database file's path. */
const char *store_path(const struct store *s);

/* Number of migrations this binary knows (the user_version it writes). */
int store_schema_version(void);

/* True for errors that mean "the store cannot take the write now" (disk
 * full, I/O error, locked, out of memory, read-only, corrupt): the control
 * layer answers them with `unavailable`. */
bool store_error_unavailable(int err);

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t store_now_ms(void);

/* Renders ms as ISO 8601 UTC into buf and returns buf. */
const char *store_time_iso(int64_t ms, char buf[STORE_ISO_MAX]);

/* --- transactions -------------------------------------------------------- */

/* Transactions nest: the outermost is BEGIN IMMEDIATE ... COMMIT (one fsync),
 * inner ones are savepoints, so a failed inner step can be rolled back
 * alone. Every write below runs in a savepoint of the caller's transaction
 * when there is one, or commits on its own otherwise.
 *
 * begin: 0 or -errno (nothing to end then). commit: 0, or -errno after
 * rolling the level back. When SQLite itself aborted the transaction (disk
 * full or I/O error at some step), every later call in it fails with that
 * error until the caller ends the outermost level. */
int store_tx_begin(struct store *s);
int store_tx_commit(struct store *s);
void store_tx_rollback(struct store *s);
bool store_in_tx(const struct store *s);

/* --- group commit ---------------------------------------------------------- */

/* Many small writes that need no answer before the loop next waits (the
 * SMS of pipelined sms.send requests) share one transaction, one fsync: a
 * batch. Its owner enters it, writes (in savepoints: store_tx_begin inside
 * nests), leaves it, and commits it before the loop blocks, answering the
 * requests only then. Anyone else who touches the store while a batch is
 * open makes the store call flush(ctx) first, which must commit it
 * (store_batch_commit) and answer for it: so every other transaction keeps
 * its meaning (committed and durable when store_tx_commit returns).
 *
 * enter: 0, -EBUSY (another owner's batch, or a transaction is open), or
 * a store error from BEGIN. commit: 0 when none was open, or the result of
 * the COMMIT (the batch is over either way). */
typedef void store_flush_fn(void *ctx);
int store_batch_enter(struct store *s, store_flush_fn *flush, void *ctx);
void store_batch_leave(struct store *s);
bool store_batch_open(const struct store *s);
int store_batch_commit(struct store *s);

/* --- outbox -------------------------------------------------------------- */

enum store_status {
	STORE_QUEUED,    /* out: waiting for next_attempt_at */
	STORE_SENDING,   /* out: a modem is sending its parts */
	STORE_SENT,      /* out: every part has a message reference */
	STORE_DELIVERED, /* out: every part was reported delivered */
	STORE_FAILED,    /* out: gave up, see error */
	STORE_RECEIVED,  /* in */
	STORE_STATUS_COUNT,
};

enum store_part_status {
	STORE_PART_QUEUED,
	STORE_PART_SENT,
	STORE_PART_DELIVERED,
	STORE_PART_FAILED,
	STORE_PART_STATUS_COUNT,
};

enum store_kind {
	STORE_KIND_INVITE,
	STORE_KIND_RECOVERY,
	STORE_KIND_UNCLAIMED,
	STORE_KIND_MANUAL, /* sms.send */
	STORE_KIND_COUNT,
};

/* Higher goes first: account SMS before bulk sms.send. */
enum store_priority {
	STORE_PRIO_BULK = 0,
	STORE_PRIO_ACCOUNT = 1,
	STORE_PRIO_COUNT,
};

enum store_direction {
	STORE_OUT,
	STORE_IN,
};

/* Names as in the database and on the wire ("queued", "invite", ...). */
const char *store_status_name(enum store_status st);
const char *store_part_status_name(enum store_part_status st);
const char *store_kind_name(enum store_kind k);

/* One encoded part, as AT+CMGS takes it. */
struct store_pdu {
	const char *hex; /* SMSC address + TPDU, hex */
	int tpdu_len;    /* the AT+CMGS=<length> argument */
};

struct store_outgoing {
	const char *peer;     /* E.164 recipient */
	const char *text;     /* the text as written, for sms.get */
	enum store_kind kind;
	enum store_priority priority;
	int64_t account_id;   /* 0: none */
	const char *encoding; /* how the parts were encoded ("gsm7",
				 "ucs2", "gsm7/es"...), informational; NULL ok */
	const struct store_pdu *parts;
	size_t nparts;        /* 1..255 */
};

/* Queues an outbound SMS and its parts, due now. *id set on success. */
int store_sms_queue(struct store *s, const struct store_outgoing *m,
		    int64_t *id);

struct store_part {
	int seq;        /* 1-based */
	char *pdu;      /* hex */
	int tpdu_len;
	enum store_part_status status;
	int mr;         /* message reference, -1 when none yet */
};

/* What the scheduler needs to send one SMS; release with store_sms_clear. */
struct store_sms {
	int64_t id;
	char *peer;
	enum store_kind kind;
	enum store_priority priority;
	int64_t account_id; /* 0: none */
	int attempts;       /* store_sms_mark_sending() calls so far */
	bool resumed;       /* it was 'sending' when the store was opened */
	size_t nparts;
	size_t next_part;   /* index of the first part without an mr; equal
			       to nparts when all were sent (then only
			       store_sms_sent() is left to do) */
	struct store_part *parts;
};

void store_sms_clear(struct store_sms *m);

/* The next SMS to send: first those that were 'sending' when the store was
 * opened (a crash mid-send; each is returned once, in id order), then the
 * highest priority 'queued' one whose next_attempt_at <= now (oldest due
 * first). 0 and *out filled, or -ENOENT when nothing is due. */
int store_sms_next_due(struct store *s, int64_t now, struct store_sms *out);

/* Earliest next_attempt_at among queued SMS (to arm a timer), or -ENOENT. */
int store_sms_next_attempt(struct store *s, int64_t *at);

/* queued (or resumed sending) -> sending on `modem`; attempts + 1. Its
 * own commit is not fsynced (a crash resumes a queued and a sending SMS
 * alike); the next durable commit carries it.
 * -ENOENT when no outbound SMS with that id is queued or sending. */
int store_sms_mark_sending(struct store *s, int64_t id, const char *modem);

/* Records part `seq`'s message reference, committed (fsynced) before it
 * returns when the caller holds no transaction: the at-least-once window
 * is one part. -ENOENT when no such unreported part. */
int store_part_sent(struct store *s, int64_t sms_id, int seq,
		    const char *modem, int mr, int64_t now);

/* sending -> sent once every part has an mr. 0 also when reports already
 * made it delivered or failed; -EINVAL when parts are still unsent,
 * -ENOENT when no such SMS. */
int store_sms_sent(struct store *s, int64_t id);

/* queued/sending -> queued, due at next_attempt_at, with the last error.
 * Parts that already have an mr keep it (they are not sent again). */
int store_sms_retry(struct store *s, int64_t id, int64_t next_attempt_at,
		    const char *error);

/* queued/sending -> failed with error; unsent parts fail with it. */
int store_sms_failed(struct store *s, int64_t id, const char *error);

/* Fails ("expired") every queued SMS created before older_than. *ids (may
 * be NULL when *n is 0; free() it) lists them for events. */
int store_sms_expire(struct store *s, int64_t older_than, int64_t **ids,
		     size_t *n);

/* How a status report's TP-ST reads (TS 23.040 9.2.3.15). */
enum store_report_class {
	STORE_REPORT_DELIVERED, /* 0x00..0x1f: the part arrived */
	STORE_REPORT_PENDING,   /* 0x20..0x3f: SC still trying */
	STORE_REPORT_FAILED,    /* 0x40..0x7f: SC gave up */
};

struct store_report {
	const char *modem;     /* the modem the report came in on */
	int mr;                /* TP-MR */
	const char *recipient; /* TP-RA; a leading '+' is not significant */
	enum store_report_class cls;
	int st;                /* raw TP-ST, kept with the part */
};

struct store_match {
	int64_t sms_id;
	int seq;
	enum store_status sms_status; /* after this report */
	bool final; /* this report made the SMS delivered or failed */
};

/* Finds the part this report is about: same modem, mr and recipient, sent
 * in [now - window_ms, now], still 'sent' (the latest such, since mrs wrap
 * at 256), and records the report on it. The SMS becomes delivered when
 * all its parts are, failed as soon as one part fails. -ENOENT: no match. */
int store_report_match(struct store *s, const struct store_report *r,
		       int64_t window_ms, int64_t now, struct store_match *out);

/* --- inbox --------------------------------------------------------------- */

/* Stores an inbound SMS (or a reassembled one). incomplete: parts missing,
 * the gaps marked "[...]". *id may be NULL. */
int store_sms_receive(struct store *s, const char *peer, const char *text,
		      bool incomplete, int64_t account_id, int64_t *id);

/* Records a PDU read from a modem; *seen is true when it was recorded
 * before (the same SMS read again after a crash between its commit and its
 * deletion from the modem: not to be stored twice). Must run in the
 * transaction that stores the SMS: -EINVAL without one. */
int store_inbox_seen(struct store *s, const char *pdu_hex, int64_t now,
		     bool *seen);
/* Forgets PDUs recorded before older_than. */
int store_inbox_seen_prune(struct store *s, int64_t older_than);

/* One part of a concatenated inbound SMS. */
struct store_inbox_part {
	const char *sender;
	int ref;   /* concatenation reference (8- or 16-bit) */
	int total; /* 1..255 */
	int seq;   /* 1..total */
	const char *text;
};

enum store_inbox_result {
	STORE_INBOX_PENDING,   /* stored; the set is not complete yet */
	STORE_INBOX_DUPLICATE, /* already had that part: ignored */
	STORE_INBOX_COMPLETE,  /* the set is complete: *text is the message */
};

/* Persists a part (a restart mid-set loses none). When it completes the
 * set, *text (free() it) is the parts' texts in seq order, and the set is
 * marked done: it is kept until store_inbox_expire() so that a duplicate
 * of one of its parts (re-read from the modem after a crash) is still
 * recognised. A part whose key matches a done set but whose text differs
 * starts a new set (the sender's reference wrapped around); one that
 * matches a part of a set still open is a duplicate, the first copy wins.
 * Must be called inside a transaction, together with the store_sms_receive
 * of a completed text, so that the set can never be lost in between:
 * -EINVAL without one. */
int store_inbox_part_add(struct store *s, const struct store_inbox_part *p,
			 enum store_inbox_result *res, char **text);

struct store_inbox_set {
	char *sender;
	char *text; /* present parts in seq order, gaps as "[...]" */
};

/* Removes the incomplete sets whose first part arrived before older_than,
 * returning them (*sets: free with store_inbox_sets_free) to be delivered
 * with store_sms_receive(..., incomplete=true) in the same transaction
 * (-EINVAL without one); also forgets done sets completed before then. */
int store_inbox_expire(struct store *s, int64_t older_than,
		       struct store_inbox_set **sets, size_t *n);
void store_inbox_sets_free(struct store_inbox_set *sets, size_t n);

/* --- views for the control socket ---------------------------------------- */

/* The DESIGN's `sms` object: {id, direction, peer, text, status, kind (out),
 * incomplete (in), error, parts:[{seq, status, mr, modem, error}],
 * created_at, updated_at}. *out is a new reference. -ENOENT if none. */
int store_sms_get(struct store *s, int64_t id, struct json_t **out);

/* Newest first. limit 0 means STORE_LIST_DEFAULT, capped at STORE_LIST_MAX;
 * after 0 is the first page, else the `next` of the previous page (ids
 * below it). *list is a new JSON array of `sms` objects; *next is the
 * cursor of the following page, 0 when this is the last one. */
int store_sms_list(struct store *s, enum store_direction dir, int limit,
		   int64_t after, struct json_t **list, int64_t *next);

/* Queue depth by status, and inbound sets waiting for parts. Each count is
 * an index range, O(rows in that status). */
struct store_counts {
	int64_t sms[STORE_STATUS_COUNT];
	int64_t inbox_partial;
};
int store_counts(struct store *s, struct store_counts *c);

/* --- audit, settings ----------------------------------------------------- */

/* Appends an audit entry. detail (may be NULL) is a JSON object; any
 * member named like a secret (password, new_password, token, code,
 * recovery_code, pin, secret), at any depth, is stored as "[redacted]".
 * account_id 0: none. *id may be NULL. */
int store_audit_add(struct store *s, long uid, const char *role,
		    const char *op, int64_t account_id,
		    const struct json_t *detail, int64_t *id);

/* Entries [{id, at, uid, role, op, account_id, detail}], newest first,
 * paged like store_sms_list. */
int store_audit_list(struct store *s, int limit, int64_t after,
		     struct json_t **entries, int64_t *next);

/* *value is a copy (free() it); -ENOENT when unset. */
int store_setting_get(struct store *s, const char *key, char **value);
int store_setting_set(struct store *s, const char *key, const char *value);

/* --- statements for other modules --------------------------------------- */

/* A prepared statement owned by the caller, for modules with tables of
 * their own. Prepare once at init, bind and step per use. Parameters and
 * columns are numbered as in SQLite: parameters from 1, columns from 0. */
int store_stmt_prepare(struct store *s, const char *sql,
		       struct store_stmt **out);
void store_stmt_free(struct store_stmt *st);

/* Bind: 0 or -errno. A NULL text binds SQL NULL. */
int store_stmt_bind_int64(struct store_stmt *st, int idx, int64_t v);
int store_stmt_bind_text(struct store_stmt *st, int idx, const char *v);
int store_stmt_bind_blob(struct store_stmt *st, int idx, const void *v,
			 size_t len);
int store_stmt_bind_null(struct store_stmt *st, int idx);

/* 1: a row is ready; 0: done (the statement is reset); -errno (reset,
 * the error handled as any store write: see transactions). Call
 * store_stmt_reset() when stopping before 0. */
int store_stmt_step(struct store_stmt *st);
void store_stmt_reset(struct store_stmt *st);

/* Columns of the current row; text and blob are valid until the next
 * step or reset. */
bool store_stmt_column_null(struct store_stmt *st, int col);
int64_t store_stmt_column_int64(struct store_stmt *st, int col);
const char *store_stmt_column_text(struct store_stmt *st, int col);
const void *store_stmt_column_blob(struct store_stmt *st, int col,
				   size_t *len);

/* Rows changed by the last INSERT/UPDATE/DELETE, and the last rowid. */
int64_t store_changes(struct store *s);
int64_t store_last_insert_id(struct store *s);

/* Runs SQL without parameters or results (pragmas, one-off statements). */
int store_exec(struct store *s, const char *sql);

/* EXPLAIN QUERY PLAN of one of the store's own prepared statements, by
 * name ("due", "report_find", ...: the table in store.c), one line per
 * step; *plan is free()d by the caller. For tests and benchmarks. */
int store_query_plan(struct store *s, const char *name, char **plan);

#endif
