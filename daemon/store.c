/* store — the SQLite database; see store.h for the contract. */
#include "daemon/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/accounts_schema.h"
#include "daemon/log.h"

#define STORE_APP_ID 0x736d7367 /* "smsg" in PRAGMA application_id */
#define BUSY_TIMEOUT_MS 5000
#define INBOX_GAP "[...]"
#define SQLITE_HEADER_LEN 100

/* --- schema -------------------------------------------------------------- */

/* The schema, one migration per entry, applied in order, each in its own
 * transaction; PRAGMA user_version is the number applied. APPEND ONLY:
 * a released entry is never edited, reordered or removed (a database in
 * the field has run it). The accounts module appends its tables here.
 * PRAGMA trusted_schema is OFF, so CHECKs, indexes and triggers may only
 * use innocuous built-in functions (not json_valid(), for one). */
struct migration {
	const char *name;
	const char *sql;
};

static const struct migration store_migrations[] = {
	{ "outbox, inbox, audit, settings",
	  "PRAGMA application_id = 1936552807;\n" /* STORE_APP_ID */
	  /* Outbound and inbound SMS. priority: higher first. kind: why an
	   * outbound SMS was sent. next_attempt_at, created_at, updated_at:
	   * ms since the epoch. account_id: accounts(id) once that table
	   * exists; no foreign key (see store.h). */
	  "CREATE TABLE sms (\n"
	  "  id INTEGER PRIMARY KEY,\n"
	  "  direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),\n"
	  "  peer TEXT NOT NULL,\n"
	  "  text TEXT NOT NULL,\n"
	  "  status TEXT NOT NULL,\n"
	  "  priority INTEGER NOT NULL DEFAULT 0,\n"
	  "  kind TEXT CHECK (kind IN ('invite', 'recovery', 'unclaimed',"
	  " 'manual')),\n"
	  "  account_id INTEGER,\n"
	  "  encoding TEXT,\n"
	  "  incomplete INTEGER NOT NULL DEFAULT 0,\n"
	  "  modem TEXT,\n"
	  "  error TEXT,\n"
	  "  attempts INTEGER NOT NULL DEFAULT 0,\n"
	  "  next_attempt_at INTEGER NOT NULL DEFAULT 0,\n"
	  "  created_at INTEGER NOT NULL,\n"
	  "  updated_at INTEGER NOT NULL,\n"
	  "  CHECK ((direction = 'out') = (kind IS NOT NULL)),\n"
	  "  CHECK (direction = 'out' AND status IN ('queued', 'sending',"
	  " 'sent', 'delivered', 'failed')\n"
	  "         OR direction = 'in' AND status = 'received')\n"
	  ");\n"
	  /* next due: status = 'queued' AND priority = ? AND
	   * next_attempt_at <= ? ORDER BY next_attempt_at, id (rowid) */
	  "CREATE INDEX sms_due ON sms (status, priority, next_attempt_at);\n"
	  /* sms.list: direction = ? AND id < ? ORDER BY id DESC */
	  "CREATE INDEX sms_list ON sms (direction);\n"
	  /* per-account history and rolling-24h limits */
	  "CREATE INDEX sms_account ON sms (account_id, created_at)"
	  " WHERE account_id IS NOT NULL;\n"
	  /* One row per part of an outbound SMS. mr: the +CMGS reference,
	   * committed before the next part is sent. report_status: raw
	   * TP-ST of the last status report. */
	  "CREATE TABLE sms_part (\n"
	  "  sms_id INTEGER NOT NULL REFERENCES sms (id) ON DELETE CASCADE,\n"
	  "  seq INTEGER NOT NULL CHECK (seq >= 1),\n"
	  "  pdu TEXT NOT NULL,\n"
	  "  tpdu_len INTEGER NOT NULL CHECK (tpdu_len > 0),\n"
	  "  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN"
	  " ('queued', 'sent', 'delivered', 'failed')),\n"
	  "  mr INTEGER CHECK (mr BETWEEN 0 AND 255),\n"
	  "  modem TEXT,\n"
	  "  sent_at INTEGER,\n"
	  "  report_status INTEGER,\n"
	  "  reported_at INTEGER,\n"
	  "  error TEXT,\n"
	  "  PRIMARY KEY (sms_id, seq)\n"
	  ") WITHOUT ROWID;\n"
	  /* status report: modem = ? AND mr = ? AND sent_at in a window */
	  "CREATE INDEX sms_part_report ON sms_part (modem, mr, sent_at)"
	  " WHERE mr IS NOT NULL;\n"
	  /* Parts of concatenated inbound SMS until their set is complete;
	   * done_at marks a delivered set, kept so duplicates are seen. */
	  "CREATE TABLE inbox_part (\n"
	  "  sender TEXT NOT NULL,\n"
	  "  ref INTEGER NOT NULL,\n"
	  "  total INTEGER NOT NULL CHECK (total BETWEEN 1 AND 255),\n"
	  "  seq INTEGER NOT NULL,\n"
	  "  text TEXT NOT NULL,\n"
	  "  received_at INTEGER NOT NULL,\n"
	  "  done_at INTEGER,\n"
	  "  PRIMARY KEY (sender, ref, total, seq),\n"
	  "  CHECK (seq BETWEEN 1 AND total)\n"
	  ") WITHOUT ROWID;\n"
	  /* detail: a JSON object from json_dumps(), secrets redacted
	   * before insertion (no json_valid() CHECK: trusted_schema=OFF
	   * forbids it in the schema) */
	  "CREATE TABLE audit (\n"
	  "  id INTEGER PRIMARY KEY,\n"
	  "  at INTEGER NOT NULL,\n"
	  "  uid INTEGER NOT NULL,\n"
	  "  role TEXT NOT NULL,\n"
	  "  op TEXT NOT NULL,\n"
	  "  account_id INTEGER,\n"
	  "  detail TEXT NOT NULL DEFAULT '{}'\n"
	  ");\n"
	  "CREATE TABLE settings (\n"
	  "  key TEXT PRIMARY KEY,\n"
	  "  value TEXT NOT NULL\n"
	  ") WITHOUT ROWID;\n" },
	{ "accounts", ACCOUNTS_SCHEMA_V1 },
	{ "inbound fingerprints",
	  /* Every PDU read from a modem, kept for a while: one read again
	   * after a crash between its commit and its deletion from the
	   * modem is recognised and not stored twice. */
	  "CREATE TABLE inbox_seen (\n"
	  "  pdu TEXT PRIMARY KEY,\n"
	  "  at INTEGER NOT NULL\n"
	  ") WITHOUT ROWID;\n"
	  "CREATE INDEX inbox_seen_at ON inbox_seen (at);\n" },
};

#define N_MIGRATIONS ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

/* --- prepared statements --------------------------------------------------- */

/* Every statement the store runs more than once, prepared at open. The
 * names are for store_query_plan(). */
enum st_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_SMS_INSERT, ST_PART_INSERT, ST_DUE, ST_NEXT_AT, ST_SMS_LOAD,
	ST_PARTS_LOAD, ST_SMS_STATUS, ST_MARK_SENDING, ST_PART_SENT,
	ST_SMS_SENT, ST_RETRY, ST_FAIL, ST_PARTS_FAIL, ST_EXPIRE_LIST,
	ST_REPORT_FIND, ST_REPORT_PART, ST_PART_TALLY, ST_SMS_FINAL,
	ST_SMS_GET, ST_PARTS_GET, ST_SMS_LIST,
	ST_INBOX_FIND, ST_INBOX_INSERT, ST_INBOX_DROP, ST_INBOX_COUNT,
	ST_INBOX_TEXTS, ST_INBOX_DONE, ST_INBOX_STALE, ST_INBOX_PURGE,
	ST_AUDIT_INSERT, ST_AUDIT_LIST, ST_SETTING_GET, ST_SETTING_SET,
	ST_COUNT_STATUS, ST_COUNT_PARTIAL, ST_SEEN_ADD, ST_SEEN_PRUNE,
	ST_SYNC_NORMAL, ST_SYNC_FULL,
	ST_COUNT,
};

struct st_def {
	const char *name;
	const char *sql;
};

#define SMS_COLS "id, direction, peer, text, status, kind, incomplete, " \
		 "error, created_at, updated_at"

static const struct st_def st_defs[ST_COUNT] = {
	[ST_BEGIN] = { "begin", "BEGIN IMMEDIATE" },
	[ST_COMMIT] = { "commit", "COMMIT" },
	[ST_ROLLBACK] = { "rollback", "ROLLBACK" },
	[ST_SAVEPOINT] = { "savepoint", "SAVEPOINT sp" },
	[ST_RELEASE] = { "release", "RELEASE sp" },
	[ST_ROLLBACK_TO] = { "rollback_to", "ROLLBACK TO sp" },
	[ST_SMS_INSERT] = { "sms_insert",
		"INSERT INTO sms (direction, peer, text, status, priority, "
		"kind, account_id, encoding, incomplete, next_attempt_at, "
		"created_at, updated_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10)" },
	[ST_PART_INSERT] = { "part_insert",
		"INSERT INTO sms_part (sms_id, seq, pdu, tpdu_len) "
		"VALUES (?1, ?2, ?3, ?4)" },
	[ST_DUE] = { "due",
		"SELECT id FROM sms WHERE status = 'queued' AND priority = ?1 "
		"AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id "
		"LIMIT 1" },
	[ST_NEXT_AT] = { "next_at",
		"SELECT next_attempt_at FROM sms WHERE status = 'queued' "
		"AND priority = ?1 ORDER BY next_attempt_at LIMIT 1" },
	[ST_SMS_LOAD] = { "sms_load",
		"SELECT peer, kind, priority, account_id, attempts FROM sms "
		"WHERE id = ?1 AND direction = 'out'" },
	[ST_PARTS_LOAD] = { "parts_load",
		"SELECT seq, pdu, tpdu_len, status, mr FROM sms_part "
		"WHERE sms_id = ?1 ORDER BY seq" },
	[ST_SMS_STATUS] = { "sms_status",
		"SELECT status FROM sms WHERE id = ?1 AND direction = 'out'" },
	[ST_MARK_SENDING] = { "mark_sending",
		"UPDATE sms SET status = 'sending', modem = ?2, "
		"attempts = attempts + 1, updated_at = ?3 "
		"WHERE id = ?1 AND status IN ('queued', 'sending')" },
	[ST_PART_SENT] = { "part_sent",
		"UPDATE sms_part SET status = 'sent', mr = ?3, modem = ?4, "
		"sent_at = ?5, error = NULL "
		"WHERE sms_id = ?1 AND seq = ?2 AND status IN ('queued', 'sent')" },
	[ST_SMS_SENT] = { "sms_sent",
		"UPDATE sms SET status = 'sent', updated_at = ?2 "
		"WHERE id = ?1 AND status = 'sending' AND NOT EXISTS "
		"(SELECT 1 FROM sms_part WHERE sms_id = ?1 AND status = 'queued')" },
	[ST_RETRY] = { "retry",
		"UPDATE sms SET status = 'queued', next_attempt_at = ?2, "
		"error = ?3, updated_at = ?4 "
		"WHERE id = ?1 AND status IN ('queued', 'sending')" },
	[ST_FAIL] = { "fail",
		"UPDATE sms SET status = 'failed', error = ?2, updated_at = ?3 "
		"WHERE id = ?1 AND status IN ('queued', 'sending')" },
	[ST_PARTS_FAIL] = { "parts_fail",
		"UPDATE sms_part SET status = 'failed', error = ?2 "
		"WHERE sms_id = ?1 AND status = 'queued'" },
	[ST_EXPIRE_LIST] = { "expire_list",
		"SELECT id FROM sms WHERE status = 'queued' AND created_at < ?1" },
	[ST_REPORT_FIND] = { "report_find",
		"SELECT p.sms_id, p.seq FROM sms_part p JOIN sms s "
		"ON s.id = p.sms_id WHERE p.modem = ?1 AND p.mr = ?2 "
		"AND p.sent_at BETWEEN ?3 AND ?4 AND p.status = 'sent' "
		"AND ltrim(s.peer, '+') = ltrim(?5, '+') "
		"ORDER BY p.sent_at DESC LIMIT 1" },
	[ST_REPORT_PART] = { "report_part",
		"UPDATE sms_part SET status = ?3, report_status = ?4, "
		"reported_at = ?5, error = ?6 WHERE sms_id = ?1 AND seq = ?2" },
	[ST_PART_TALLY] = { "part_tally",
		"SELECT count(*), total(status = 'delivered'), "
		"total(status = 'failed') FROM sms_part WHERE sms_id = ?1" },
	[ST_SMS_FINAL] = { "sms_final",
		"UPDATE sms SET status = ?2, error = ?3, updated_at = ?4 "
		"WHERE id = ?1" },
	[ST_SMS_GET] = { "sms_get",
		"SELECT " SMS_COLS " FROM sms WHERE id = ?1" },
	[ST_PARTS_GET] = { "parts_get",
		"SELECT seq, status, mr, modem, error FROM sms_part "
		"WHERE sms_id = ?1 ORDER BY seq" },
	[ST_SMS_LIST] = { "sms_list",
		"SELECT " SMS_COLS " FROM sms WHERE direction = ?1 AND id < ?2 "
		"ORDER BY id DESC LIMIT ?3" },
	[ST_INBOX_FIND] = { "inbox_find",
		"SELECT text, done_at IS NOT NULL FROM inbox_part WHERE "
		"sender = ?1 AND ref = ?2 AND total = ?3 AND seq = ?4" },
	[ST_INBOX_INSERT] = { "inbox_insert",
		"INSERT INTO inbox_part (sender, ref, total, seq, text, "
		"received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
	[ST_INBOX_DROP] = { "inbox_drop",
		"DELETE FROM inbox_part WHERE sender = ?1 AND ref = ?2 "
		"AND total = ?3" },
	[ST_INBOX_COUNT] = { "inbox_count",
		"SELECT count(*) FROM inbox_part WHERE sender = ?1 AND ref = ?2 "
		"AND total = ?3 AND done_at IS NULL" },
	[ST_INBOX_TEXTS] = { "inbox_texts",
		"SELECT seq, text FROM inbox_part WHERE sender = ?1 AND ref = ?2 "
		"AND total = ?3 AND done_at IS NULL ORDER BY seq" },
	[ST_INBOX_DONE] = { "inbox_done",
		"UPDATE inbox_part SET done_at = ?4 WHERE sender = ?1 "
		"AND ref = ?2 AND total = ?3" },
	[ST_INBOX_STALE] = { "inbox_stale",
		"SELECT sender, ref, total FROM inbox_part WHERE done_at IS NULL "
		"GROUP BY sender, ref, total HAVING min(received_at) < ?1" },
	[ST_INBOX_PURGE] = { "inbox_purge",
		"DELETE FROM inbox_part WHERE done_at < ?1" },
	[ST_AUDIT_INSERT] = { "audit_insert",
		"INSERT INTO audit (at, uid, role, op, account_id, detail) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
	[ST_AUDIT_LIST] = { "audit_list",
		"SELECT id, at, uid, role, op, account_id, detail FROM audit "
		"WHERE id < ?1 ORDER BY id DESC LIMIT ?2" },
	[ST_SETTING_GET] = { "setting_get",
		"SELECT value FROM settings WHERE key = ?1" },
	[ST_SETTING_SET] = { "setting_set",
		"INSERT INTO settings (key, value) VALUES (?1, ?2) "
		"ON CONFLICT (key) DO UPDATE SET value = excluded.value" },
	[ST_COUNT_STATUS] = { "count_status",
		"SELECT count(*) FROM sms WHERE status = ?1" },
	[ST_COUNT_PARTIAL] = { "count_partial",
		"SELECT count(*) FROM (SELECT 1 FROM inbox_part "
		"WHERE done_at IS NULL GROUP BY sender, ref, total)" },
	[ST_SEEN_ADD] = { "seen_add",
		"INSERT OR IGNORE INTO inbox_seen (pdu, at) VALUES (?1, ?2)" },
	[ST_SEEN_PRUNE] = { "seen_prune",
		"DELETE FROM inbox_seen WHERE at < ?1" },
	[ST_SYNC_NORMAL] = { "sync_normal", "PRAGMA synchronous = NORMAL" },
	[ST_SYNC_FULL] = { "sync_full", "PRAGMA synchronous = FULL" },
};

struct store {
	sqlite3 *db;
	char *path;                /* state_dir/smsgw.db */
	sqlite3_stmt *st[ST_COUNT];
	int depth;                 /* transaction nesting, 0: none */
	int aborted;               /* -errno once SQLite rolled back the open
				      transaction by itself, until it ends */
	int64_t *orphans;          /* ids 'sending' at open, to resume */
	size_t norphans, next_orphan;
	/* group commit (store_batch_*): */
	bool batch;                /* a batch transaction is open */
	bool batch_inside;         /* its owner is writing into it now */
	store_flush_fn *batch_flush;
	void *batch_ctx;
};

/* Anyone but the batch's owner about to use the database: the batch is
 * committed (and its owner answers for it) first, so that their own
 * commits stay commits, durable when they return. */
static void batch_guard(struct store *s)
{
	if (s->batch && !s->batch_inside)
		s->batch_flush(s->batch_ctx);
}

struct store_stmt {
	struct store *s;
	sqlite3_stmt *st;
};

/* --- names ----------------------------------------------------------------- */

static const char *const status_names[STORE_STATUS_COUNT] = {
	[STORE_QUEUED] = "queued", [STORE_SENDING] = "sending",
	[STORE_SENT] = "sent", [STORE_DELIVERED] = "delivered",
	[STORE_FAILED] = "failed", [STORE_RECEIVED] = "received",
};

static const char *const part_status_names[STORE_PART_STATUS_COUNT] = {
	[STORE_PART_QUEUED] = "queued", [STORE_PART_SENT] = "sent",
	[STORE_PART_DELIVERED] = "delivered", [STORE_PART_FAILED] = "failed",
};

static const char *const kind_names[STORE_KIND_COUNT] = {
	[STORE_KIND_INVITE] = "invite", [STORE_KIND_RECOVERY] = "recovery",
	[STORE_KIND_UNCLAIMED] = "unclaimed", [STORE_KIND_MANUAL] = "manual",
};

static const char *name_of(const char *const names[], int n, int i)
{
	return i >= 0 && i < n && names[i] ? names[i] : "?";
}

/* Index of name in names, or -1. */
static int index_of(const char *const names[], int n, const char *name)
{
	for (int i = 0; name && i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *store_status_name(enum store_status st)
{
	return name_of(status_names, STORE_STATUS_COUNT, (int)st);
}

const char *store_part_status_name(enum store_part_status st)
{
	return name_of(part_status_names, STORE_PART_STATUS_COUNT, (int)st);
}

const char *store_kind_name(enum store_kind k)
{
	return name_of(kind_names, STORE_KIND_COUNT, (int)k);
}

/* --- errors ---------------------------------------------------------------- */

/* SQLite primary result codes -> -errno; anything else is -EIO. */
static const int rc_errno[] = {
	[SQLITE_ERROR] = -EINVAL,     [SQLITE_PERM] = -EACCES,
	[SQLITE_BUSY] = -EBUSY,       [SQLITE_LOCKED] = -EBUSY,
	[SQLITE_NOMEM] = -ENOMEM,     [SQLITE_READONLY] = -EROFS,
	[SQLITE_IOERR] = -EIO,        [SQLITE_CORRUPT] = -EUCLEAN,
	[SQLITE_FULL] = -ENOSPC,      [SQLITE_CANTOPEN] = -EIO,
	[SQLITE_TOOBIG] = -E2BIG,     [SQLITE_CONSTRAINT] = -EINVAL,
	[SQLITE_MISMATCH] = -EINVAL,  [SQLITE_MISUSE] = -EINVAL,
	[SQLITE_AUTH] = -EACCES,      [SQLITE_RANGE] = -ERANGE,
	[SQLITE_NOTADB] = -EUCLEAN,
};

static int rc_to_errno(int rc)
{
	int primary = rc & 0xff;

	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
	if (primary > 0 && primary < (int)(sizeof(rc_errno) / sizeof(rc_errno[0])) &&
	    rc_errno[primary])
		return rc_errno[primary];
	return -EIO;
}

bool store_error_unavailable(int err)
{
	switch (err) {
	case -ENOSPC: case -EDQUOT: case -EIO: case -EBUSY: case -ENOMEM:
	case -EROFS: case -EUCLEAN: case -EAGAIN:
		return true;
	default:
		return false;
	}
}

/* Maps a failed SQLite call to -errno and logs it once (the SQL text, never
 * the bound values). Notes when SQLite rolled the open transaction back by
 * itself (it may on SQLITE_FULL, IOERR, NOMEM, BUSY), so that nothing runs
 * outside the transaction the caller believes is open. */
static int fail(struct store *s, int rc, const char *sql)
{
	int err = rc_to_errno(rc);
	enum log_level lvl = (rc & 0xff) == SQLITE_CONSTRAINT ? LOG_LVL_DEBUG
							       : LOG_LVL_ERR;

	log_write(lvl, "store: %s: %s (%.60s)", s->path, sqlite3_errmsg(s->db),
		  sql ? sql : "");
	if (s->depth > 0 && !s->aborted && sqlite3_get_autocommit(s->db))
		s->aborted = err;
	return err;
}

/* --- statement helpers ---------------------------------------------------- */

/* Binds parameters 1.. from a type string: 'I' int64_t, 'N' int64_t with 0
 * bound as NULL, 'i' int, 's' text (NULL bound as NULL). */
static int bindv(struct store *s, sqlite3_stmt *st, const char *types, ...)
{
	va_list ap;
	int rc = SQLITE_OK;

	va_start(ap, types);
	for (int i = 1; *types && rc == SQLITE_OK; types++, i++) {
		int64_t v;
		const char *t;

		switch (*types) {
		case 'I':
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'N':
			v = va_arg(ap, int64_t);
			rc = v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
			break;
		case 'i':
			rc = sqlite3_bind_int(st, i, va_arg(ap, int));
			break;
		default: /* 's' */
			t = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT);
			break;
		}
	}
	va_end(ap);
	return rc == SQLITE_OK ? 0 : fail(s, rc, sqlite3_sql(st));
}

/* Steps st once: 1 a row, 0 done (reset), -errno (reset). Refuses to run
 * inside a transaction SQLite has already rolled back. */
static int step(struct store *s, sqlite3_stmt *st)
{
	int rc, err;

	batch_guard(s);
	if (s->aborted) {
		sqlite3_reset(st);
		return s->aborted;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	err = fail(s, rc, sqlite3_sql(st));
	sqlite3_reset(st);
	return err;
}

/* Runs a statement to completion for its effect: 0 or -errno. */
static int run(struct store *s, sqlite3_stmt *st)
{
	int r = step(s, st);

	if (r == 1)
		sqlite3_reset(st);
	return r < 0 ? r : 0;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
	const char *t = col_text(st, col);

	return strdup(t ? t : "");
}

/* Runs a one-column integer query at open: 0 or -errno. Not logged: the
 * caller turns a failure into store_open()'s message. */
static int query_int(struct store *s, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc_to_errno(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
}

/* --- time ------------------------------------------------------------------ */

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *store_time_iso(int64_t ms, char buf[STORE_ISO_MAX])
{
	int64_t sec = ms / 1000, rem = ms % 1000;
	time_t t;
	struct tm tm;
	size_t n;

	if (rem < 0) {
		rem += 1000;
		sec--;
	}
	t = (time_t)sec;
	n = gmtime_r(&t, &tm) ? strftime(buf, STORE_ISO_MAX - 6,
					  "%Y-%m-%dT%H:%M:%S", &tm) : 0;
	if (!n)
		n = (size_t)snprintf(buf, STORE_ISO_MAX, "1970-01-01T00:00:00");
	snprintf(buf + n, STORE_ISO_MAX - n, ".%03dZ", (int)rem);
	return buf;
}

/* --- transactions ---------------------------------------------------------- */

/* Runs one of the transaction statements, bypassing the aborted guard. */
static int tx_exec(struct store *s, enum st_id id)
{
	sqlite3_stmt *st = s->st[id];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail(s, rc, sqlite3_sql(st));
}

static void tx_pop(struct store *s)
{
	if (--s->depth == 0)
		s->aborted = 0;
}

/* Rolls back the innermost level, unless SQLite already dropped the whole
 * transaction (then the outer levels learn it through s->aborted). */
static void tx_undo(struct store *s)
{
	if (sqlite3_get_autocommit(s->db)) {
		if (s->depth > 1 && !s->aborted)
			s->aborted = -EIO;
		return;
	}
	if (s->depth == 1) {
		tx_exec(s, ST_ROLLBACK);
		return;
	}
	if (tx_exec(s, ST_ROLLBACK_TO) == 0)
		tx_exec(s, ST_RELEASE);
}

int store_tx_begin(struct store *s)
{
	int r;

	batch_guard(s);
	if (s->aborted)
		return s->aborted;
	r = tx_exec(s, s->depth ? ST_SAVEPOINT : ST_BEGIN);
	if (r)
		return r;
	s->depth++;
	return 0;
}

int store_tx_commit(struct store *s)
{
	int r;

	if (s->depth == 0)
		return -EINVAL;
	if (s->aborted) {
		r = s->aborted;
		tx_pop(s);
		return r;
	}
	r = tx_exec(s, s->depth == 1 ? ST_COMMIT : ST_RELEASE);
	if (r)
		tx_undo(s);
	tx_pop(s);
	return r;
}

void store_tx_rollback(struct store *s)
{
	if (s->depth == 0)
		return;
	if (!s->aborted)
		tx_undo(s);
	tx_pop(s);
}

bool store_in_tx(const struct store *s)
{
	return s->depth > 0;
}

/* Ends a level begun by store_tx_begin() for one of our own operations:
 * commit when r >= 0 (r is passed through), else roll back. */
static int tx_leave(struct store *s, int r)
{
	int c;

	if (r < 0) {
		store_tx_rollback(s);
		return r;
	}
	c = store_tx_commit(s);
	return c < 0 ? c : r;
}

/* --- open ------------------------------------------------------------------ */

/* Writes "<path>: <reason>" into err and returns r. */
static int refuse(char *err, size_t len, int r, const char *path,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(char *err, size_t len, int r, const char *path,
		  const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !len)
		return r;
	n = snprintf(err, len, "%s: ", path);
	if (n >= 0 && (size_t)n < len) {
		va_start(ap, fmt);
		vsnprintf(err + n, len - n, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* The state directory must exist and be writable: WAL creates smsgw.db-wal
 * and smsgw.db-shm beside the database. */
static int check_dir(const char *dir, char *err, size_t len)
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return refuse(err, len, -errno, dir, "state directory: %s%s",
			      strerror(errno), errno == ENOENT ? " (create it "
			      "first: the daemon does not)" : "");
	if (!S_ISDIR(sb.st_mode))
		return refuse(err, len, -ENOTDIR, dir,
			      "state directory: not a directory");
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0)
		return refuse(err, len, -EROFS, dir,
			      "state directory is not writable (%s): a WAL "
			      "database needs to create its -wal and -shm "
			      "files there", strerror(errno));
	return 0;
}

/* Reads what we need of the 100-byte SQLite header, before SQLite sees the
 * file: anything that is not an SQLite 3 database is refused untouched. An
 * empty file is a database SQLite has not written yet (a crash during the
 * first migration leaves one, with the data in the -wal). */
static int check_header(const char *path, off_t size, char *err, size_t len)
{
	static const char magic[16] = "SQLite format 3";
	unsigned char h[SQLITE_HEADER_LEN];
	unsigned page;
	ssize_t n;
	int fd;

	if (size == 0)
		return 0;
	if (size < SQLITE_HEADER_LEN)
		return refuse(err, len, -EUCLEAN, path,
			      "damaged: truncated to %lld bytes (the SQLite "
			      "header alone is 100); refusing to touch it",
			      (long long)size);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return refuse(err, len, -errno, path, "%s", strerror(errno));
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, magic, sizeof(magic)) != 0)
		return refuse(err, len, -EUCLEAN, path,
			      "not an SQLite 3 database (bad header); refusing "
			      "to touch it");
	page = (unsigned)h[16] << 8 | h[17];
	page = page == 1 ? 65536 : page;
	if (page < 512 || (page & (page - 1)) || size % page)
		return refuse(err, len, -EUCLEAN, path,
			      "damaged: size %lld is not a whole number of "
			      "%u-byte pages (truncated?); refusing to touch it",
			      (long long)size, page);
	return 0;
}

/* *exists: whether the database file is there. It must be a writable
 * regular file with an SQLite header. */
static int check_file(const char *path, bool *exists, char *err, size_t len)
{
	struct stat sb;

	if (lstat(path, &sb) < 0) {
		if (errno != ENOENT)
			return refuse(err, len, -errno, path, "%s",
				      strerror(errno));
		*exists = false;
		return 0;
	}
	*exists = true;
	if (!S_ISREG(sb.st_mode))
		return refuse(err, len, -EINVAL, path,
			      "not a regular file (symlinks are refused)");
	if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0)
		return refuse(err, len, -EROFS, path,
			      "database file is not writable (%s)",
			      strerror(errno));
	return check_header(path, sb.st_size, err, len);
}

static int db_connect(struct store *s, bool exists, char *err, size_t len)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		    SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW;
	int rc;

	if (!exists)
		flags |= SQLITE_OPEN_CREATE;
	/* Memory statistics take a global mutex on every allocation; nothing
	 * here reads them. Only possible before SQLite initialises (the first
	 * open); a later call is refused harmlessly. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
	if (rc != SQLITE_OK)
		return refuse(err, len, rc_to_errno(rc), s->path, "%s",
			      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (sqlite3_db_readonly(s->db, "main") == 1)
		return refuse(err, len, -EROFS, s->path,
			      "database opened read-only; refusing");
	return 0;
}

/* Reads the header fields and checks the pages, writing nothing. A
 * database at user_version 0 must be empty (else it is someone else's). */
static int db_inspect(struct store *s, char *err, size_t len)
{
	int64_t app, ver, objects, ok = 1;
	int r;

	r = query_int(s, "PRAGMA application_id", &app);
	if (!r)
		r = query_int(s, "PRAGMA user_version", &ver);
	if (!r)
		r = query_int(s, "SELECT count(*) FROM sqlite_schema", &objects);
	if (r)
		return refuse(err, len, r, s->path, "damaged or unreadable "
			      "(%s); refusing to touch it", sqlite3_errmsg(s->db));
	if (app != 0 && app != STORE_APP_ID)
		return refuse(err, len, -EPROTO, s->path,
			      "not an smsgw database (application_id %lld)",
			      (long long)app);
	if (ver > N_MIGRATIONS)
		return refuse(err, len, -ENOTSUP, s->path,
			      "schema version %lld is newer than this smsgwd "
			      "knows (%d): refusing to open it (downgrade?)",
			      (long long)ver, N_MIGRATIONS);
	if (ver == 0 && objects > 0)
		return refuse(err, len, -EPROTO, s->path,
			      "not an smsgw database (it has tables but no "
			      "schema version)");
	if (objects > 0)
		r = query_int(s, "SELECT quick_check = 'ok' FROM "
			      "pragma_quick_check(1)", &ok);
	if (r || !ok)
		return refuse(err, len, r ? r : -EUCLEAN, s->path,
			      "damaged (PRAGMA quick_check failed%s%s); "
			      "refusing to touch it", r ? ": " : "",
			      r ? sqlite3_errmsg(s->db) : "");
	return 0;
}

/* WAL + synchronous=FULL: every commit is fsynced (see store.h). */
static int db_configure(struct store *s, char *err, size_t len)
{
	static const char *const pragmas[] = {
		"PRAGMA synchronous = FULL",
		"PRAGMA foreign_keys = ON",
		"PRAGMA trusted_schema = OFF",
	};
	sqlite3_stmt *st;
	bool wal = false;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
				NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		wal = strcmp(col_text(st, 0) ? col_text(st, 0) : "", "wal") == 0;
	sqlite3_finalize(st);
	if (!wal)
		return refuse(err, len, -EIO, s->path,
			      "cannot switch to WAL mode: %s",
			      sqlite3_errmsg(s->db));
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		rc = sqlite3_exec(s->db, pragmas[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return refuse(err, len, rc_to_errno(rc), s->path,
				      "%s: %s", pragmas[i],
				      sqlite3_errmsg(s->db));
	}
	return 0;
}

/* Applies migration `ver` (0-based) if user_version still says so: the
 * version is re-read under the write lock, in case another process
 * migrated in between. 1 applied, 0 nothing left, -errno. */
static int migrate_one(struct store *s, char *err, size_t len)
{
	char sql[64];
	int64_t ver;
	int rc, r;

	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return refuse(err, len, rc_to_errno(rc), s->path,
			      "cannot start migration: %s", sqlite3_errmsg(s->db));
	r = query_int(s, "PRAGMA user_version", &ver);
	if (r || ver >= N_MIGRATIONS) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r ? refuse(err, len, r, s->path, "unreadable") : 0;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
		 (long long)ver + 1);
	rc = sqlite3_exec(s->db, store_migrations[ver].sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = refuse(err, len, rc_to_errno(rc), s->path,
			   "migration %lld (%s) failed: %s", (long long)ver + 1,
			   store_migrations[ver].name, sqlite3_errmsg(s->db));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	log_info("store: %s: schema migrated to version %lld (%s)", s->path,
		 (long long)ver + 1, store_migrations[ver].name);
	return 1;
}

static int migrate(struct store *s, char *err, size_t len)
{
	int r;

	while ((r = migrate_one(s, err, len)) == 1)
		;
	return r;
}

static int prepare_all(struct store *s, char *err, size_t len)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(s->db, st_defs[i].sql, -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &s->st[i], NULL);
		if (rc != SQLITE_OK)
			return refuse(err, len, rc_to_errno(rc), s->path,
				      "statement %s: %s", st_defs[i].name,
				      sqlite3_errmsg(s->db));
	}
	return 0;
}

/* Remembers the SMS a previous run left in 'sending' (it crashed or was
 * killed mid-send): store_sms_next_due() hands them out first. */
static int load_orphans(struct store *s)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "SELECT id FROM sms WHERE status = "
				"'sending' ORDER BY id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "orphans");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (s->norphans == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			int64_t *n = realloc(s->orphans, ncap * sizeof(*n));

			if (!n) {
				rc = SQLITE_NOMEM;
				break;
			}
			s->orphans = n;
			cap = ncap;
		}
		s->orphans[s->norphans++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(s, rc, "orphans");
}

static char *path_join(const char *dir, const char *file)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

int store_open(const char *state_dir, struct store **out, char *err,
	       size_t errlen)
{
	struct store *s;
	bool exists = false;
	int r;

	r = check_dir(state_dir, err, errlen);
	if (r)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = path_join(state_dir, STORE_FILE))) {
		free(s);
		return refuse(err, errlen, -ENOMEM, state_dir, "out of memory");
	}
	r = check_file(s->path, &exists, err, errlen);
	if (!r)
		r = db_connect(s, exists, err, errlen);
	if (!r)
		r = db_inspect(s, err, errlen);
	if (!r)
		r = db_configure(s, err, errlen);
	if (!r)
		r = migrate(s, err, errlen);
	if (!r)
		r = prepare_all(s, err, errlen);
	if (!r && (r = load_orphans(s)) < 0)
		refuse(err, errlen, r, s->path, "%s", sqlite3_errmsg(s->db));
	if (r) {
		store_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->depth)
		log_warn("store: %s: closed inside a transaction (rolled back)",
			 s->path);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	if (s->db && sqlite3_close(s->db) != SQLITE_OK) {
		log_err("store: %s: statements still open at close", s->path);
		sqlite3_close_v2(s->db);
	}
	free(s->orphans);
	free(s->path);
	free(s);
}

const char *store_path(const struct store *s)
{
	return s->path;
}

int store_schema_version(void)
{
	return N_MIGRATIONS;
}

/* --- outbox: queue --------------------------------------------------------- */

static bool outgoing_valid(const struct store_outgoing *m)
{
	if (!m->peer || !*m->peer || !m->text || !m->parts ||
	    m->nparts < 1 || m->nparts > 255 ||
	    (unsigned)m->kind >= STORE_KIND_COUNT ||
	    (unsigned)m->priority >= STORE_PRIO_COUNT || m->account_id < 0)
		return false;
	for (size_t i = 0; i < m->nparts; i++)
		if (!m->parts[i].hex || !*m->parts[i].hex ||
		    m->parts[i].tpdu_len <= 0)
			return false;
	return true;
}

static int sms_insert(struct store *s, const struct store_outgoing *m,
		      int64_t *id)
{
	sqlite3_stmt *ins = s->st[ST_SMS_INSERT], *part = s->st[ST_PART_INSERT];
	int r;

	r = bindv(s, ins, "ssssisNsiI", "out", m->peer, m->text, "queued",
		 (int)m->priority, kind_names[m->kind], m->account_id,
		 m->encoding, 0, store_now_ms());
	if (!r)
		r = run(s, ins);
	if (r)
		return r;
	*id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < m->nparts && !r; i++) {
		r = bindv(s, part, "Iisi", *id, (int)i + 1, m->parts[i].hex,
			 m->parts[i].tpdu_len);
		if (!r)
			r = run(s, part);
	}
	return r;
}

int store_sms_queue(struct store *s, const struct store_outgoing *m,
		    int64_t *id)
{
	int64_t new_id = 0;
	int r;

	if (!outgoing_valid(m))
		return -EINVAL;
	r = store_tx_begin(s);
	if (r)
		return r;
	r = tx_leave(s, sms_insert(s, m, &new_id));
	if (!r)
		*id = new_id;
	return r;
}

/* --- outbox: picking the next SMS ----------------------------------------- */

void store_sms_clear(struct store_sms *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nparts; i++)
		free(m->parts[i].pdu);
	free(m->parts);
	free(m->peer);
	memset(m, 0, sizeof(*m));
}

/* Status of an outbound SMS: 0 and *st, or -ENOENT. */
static int sms_status(struct store *s, int64_t id, enum store_status *st)
{
	sqlite3_stmt *q = s->st[ST_SMS_STATUS];
	int r = bindv(s, q, "I", id);

	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	*st = (enum store_status)index_of(status_names, STORE_STATUS_COUNT,
					  col_text(q, 0));
	sqlite3_reset(q);
	return 0;
}

/* The next orphan still 'sending': 1 and *id, or 0. */
static int next_orphan(struct store *s, int64_t *id)
{
	enum store_status st;

	while (s->next_orphan < s->norphans) {
		int64_t cand = s->orphans[s->next_orphan++];
		int r = sms_status(s, cand, &st);

		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0 && st == STORE_SENDING) {
			*id = cand;
			return 1;
		}
	}
	return 0;
}

/* The due queued SMS of the highest priority: one index seek per
 * priority level. 1 and *id, 0 none, -errno. */
static int next_queued(struct store *s, int64_t now, int64_t *id)
{
	sqlite3_stmt *q = s->st[ST_DUE];

	for (int p = STORE_PRIO_COUNT - 1; p >= 0; p--) {
		int r = bindv(s, q, "iI", p, now);

		if (!r)
			r = step(s, q);
		if (r < 0)
			return r;
		if (r == 1) {
			*id = sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
			return 1;
		}
	}
	return 0;
}

static int parts_load(struct store *s, struct store_sms *m)
{
	sqlite3_stmt *q = s->st[ST_PARTS_LOAD];
	size_t cap = 0;
	int r = bindv(s, q, "I", m->id);

	while (!r && (r = step(s, q)) == 1) {
		struct store_part *p;

		if (m->nparts == cap) {
			cap = cap ? cap * 2 : 4;
			p = realloc(m->parts, cap * sizeof(*p));
			if (!p) {
				sqlite3_reset(q);
				return -ENOMEM;
			}
			m->parts = p;
		}
		p = &m->parts[m->nparts];
		p->seq = sqlite3_column_int(q, 0);
		p->pdu = col_dup(q, 1);
		p->tpdu_len = sqlite3_column_int(q, 2);
		p->status = (enum store_part_status)index_of(
			part_status_names, STORE_PART_STATUS_COUNT, col_text(q, 3));
		p->mr = sqlite3_column_type(q, 4) == SQLITE_NULL
				? -1 : sqlite3_column_int(q, 4);
		m->nparts++;
		r = p->pdu ? 0 : -ENOMEM;
	}
	if (r)
		sqlite3_reset(q);
	return r;
}

/* Fills m (zeroed by the caller) with SMS id and its parts. */
static int sms_load(struct store *s, int64_t id, struct store_sms *m)
{
	sqlite3_stmt *q = s->st[ST_SMS_LOAD];
	int r = bindv(s, q, "I", id);

	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	m->id = id;
	m->peer = col_dup(q, 0);
	m->kind = (enum store_kind)index_of(kind_names, STORE_KIND_COUNT,
					    col_text(q, 1));
	m->priority = (enum store_priority)sqlite3_column_int(q, 2);
	m->account_id = sqlite3_column_int64(q, 3);
	m->attempts = sqlite3_column_int(q, 4);
	sqlite3_reset(q);
	if (!m->peer)
		return -ENOMEM;
	r = parts_load(s, m);
	if (r)
		return r;
	for (m->next_part = 0; m->next_part < m->nparts; m->next_part++)
		if (m->parts[m->next_part].mr < 0)
			break;
	return 0;
}

int store_sms_next_due(struct store *s, int64_t now, struct store_sms *out)
{
	struct store_sms m = { 0 };
	int64_t id;
	int r;

	r = next_orphan(s, &id);
	m.resumed = r == 1;
	if (r == 0)
		r = next_queued(s, now, &id);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = sms_load(s, id, &m);
	if (r) {
		store_sms_clear(&m);
		return r;
	}
	*out = m;
	return 0;
}

int store_sms_next_attempt(struct store *s, int64_t *at)
{
	sqlite3_stmt *q = s->st[ST_NEXT_AT];
	int64_t best = INT64_MAX;
	bool found = false;

	for (int p = 0; p < STORE_PRIO_COUNT; p++) {
		int r = bindv(s, q, "i", p);

		if (!r)
			r = step(s, q);
		if (r < 0)
			return r;
		if (r == 1) {
			int64_t t = sqlite3_column_int64(q, 0);

			best = t < best ? t : best;
			found = true;
			sqlite3_reset(q);
		}
	}
	if (!found)
		return -ENOENT;
	*at = best;
	return 0;
}

/* --- outbox: state changes ------------------------------------------------- */

/* Runs a bound single-statement write (atomic by itself: no savepoint
 * needed) and returns 0, -ENOENT when it changed no row, or -errno. */
static int write1(struct store *s, sqlite3_stmt *st, int bound)
{
	int r = bound ? bound : run(s, st);

	if (r)
		return r;
	return sqlite3_changes(s->db) ? 0 : -ENOENT;
}

/* A write whose loss in a power cut costs nothing: its own commit skips the
 * fsync (synchronous=NORMAL in WAL mode still survives a process crash), and
 * the next durable commit carries it to disk anyway. Inside a caller's
 * transaction it is simply part of that transaction. */
static int write1_relaxed(struct store *s, sqlite3_stmt *st, int bound)
{
	int r;

	batch_guard(s);
	if (s->depth > 0 || bound)
		return write1(s, st, bound);
	tx_exec(s, ST_SYNC_NORMAL);
	r = write1(s, st, 0);
	tx_exec(s, ST_SYNC_FULL);
	return r;
}

/* 'sending' is bookkeeping: after a crash an SMS left queued or sending is
 * resumed the same way, so this commit need not be durable. */
int store_sms_mark_sending(struct store *s, int64_t id, const char *modem)
{
	sqlite3_stmt *u = s->st[ST_MARK_SENDING];

	if (!modem)
		return -EINVAL;
	return write1_relaxed(s, u, bindv(s, u, "IsI", id, modem,
					  store_now_ms()));
}

int store_part_sent(struct store *s, int64_t sms_id, int seq,
		    const char *modem, int mr, int64_t now)
{
	sqlite3_stmt *u = s->st[ST_PART_SENT];

	if (!modem || mr < 0 || mr > 255)
		return -EINVAL;
	return write1(s, u, bindv(s, u, "IiisI", sms_id, seq, mr, modem, now));
}

int store_sms_sent(struct store *s, int64_t id)
{
	sqlite3_stmt *u = s->st[ST_SMS_SENT];
	enum store_status st;
	int r;

	r = write1(s, u, bindv(s, u, "II", id, store_now_ms()));
	if (r != -ENOENT)
		return r;
	r = sms_status(s, id, &st);
	if (r)
		return r;
	return st == STORE_SENT || st == STORE_DELIVERED || st == STORE_FAILED
		       ? 0 : -EINVAL;
}

int store_sms_retry(struct store *s, int64_t id, int64_t next_attempt_at,
		    const char *error)
{
	sqlite3_stmt *u = s->st[ST_RETRY];

	return write1(s, u, bindv(s, u, "IIsI", id, next_attempt_at, error,
				 store_now_ms()));
}

/* queued/sending -> failed, and its unsent parts with it. */
static int sms_fail(struct store *s, int64_t id, const char *error)
{
	sqlite3_stmt *u = s->st[ST_FAIL], *p = s->st[ST_PARTS_FAIL];
	int r;

	r = write1(s, u, bindv(s, u, "IsI", id, error, store_now_ms()));
	if (!r)
		r = bindv(s, p, "Is", id, error);
	return r ? r : run(s, p);
}

int store_sms_failed(struct store *s, int64_t id, const char *error)
{
	int r;

	if (!error)
		return -EINVAL;
	r = store_tx_begin(s);
	return r ? r : tx_leave(s, sms_fail(s, id, error));
}

/* Appends v to a growing array. */
static int ids_push(int64_t **ids, size_t *n, size_t *cap, int64_t v)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		int64_t *a = realloc(*ids, ncap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		*ids = a;
		*cap = ncap;
	}
	(*ids)[(*n)++] = v;
	return 0;
}

static int expire_ids(struct store *s, int64_t older_than, int64_t **ids,
		      size_t *n)
{
	sqlite3_stmt *q = s->st[ST_EXPIRE_LIST];
	size_t cap = 0;
	int r = bindv(s, q, "I", older_than);

	while (!r && (r = step(s, q)) == 1)
		r = ids_push(ids, n, &cap, sqlite3_column_int64(q, 0));
	if (r)
		sqlite3_reset(q);
	for (size_t i = 0; i < *n && !r; i++)
		r = sms_fail(s, (*ids)[i], "expired");
	return r;
}

int store_sms_expire(struct store *s, int64_t older_than, int64_t **ids,
		     size_t *n)
{
	int64_t *list = NULL;
	size_t count = 0;
	int r;

	r = store_tx_begin(s);
	if (r)
		return r;
	r = tx_leave(s, expire_ids(s, older_than, &list, &count));
	if (r) {
		free(list);
		return r;
	}
	*ids = list;
	*n = count;
	return 0;
}

/* --- status reports --------------------------------------------------------- */

static int report_find(struct store *s, const struct store_report *rep,
		       int64_t window_ms, int64_t now, struct store_match *m)
{
	sqlite3_stmt *q = s->st[ST_REPORT_FIND];
	int r = bindv(s, q, "siIIs", rep->modem, rep->mr, now - window_ms, now,
		     rep->recipient);

	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	m->sms_id = sqlite3_column_int64(q, 0);
	m->seq = sqlite3_column_int(q, 1);
	sqlite3_reset(q);
	return 0;
}

/* Records the report on the part; a pending report only notes TP-ST. */
static int report_part(struct store *s, const struct store_report *rep,
		       const struct store_match *m, int64_t now)
{
	static const char *const part_state[] = {
		[STORE_REPORT_DELIVERED] = "delivered",
		[STORE_REPORT_PENDING] = "sent",
		[STORE_REPORT_FAILED] = "failed",
	};
	sqlite3_stmt *u = s->st[ST_REPORT_PART];
	char why[64];

	snprintf(why, sizeof(why), "status report: TP-ST 0x%02x", rep->st & 0xff);
	return write1(s, u, bindv(s, u, "IisiIs", m->sms_id, m->seq,
				 part_state[rep->cls], rep->st, now,
				 rep->cls == STORE_REPORT_FAILED ? why : NULL));
}

/* Derives the SMS's status from its parts: failed when one failed,
 * delivered when all were delivered. */
static int report_settle(struct store *s, struct store_match *m)
{
	sqlite3_stmt *q = s->st[ST_PART_TALLY], *u = s->st[ST_SMS_FINAL];
	int64_t all, delivered, failed;
	enum store_status now_st, st;
	char why[64];
	int r;

	r = sms_status(s, m->sms_id, &st);
	if (!r)
		r = bindv(s, q, "I", m->sms_id);
	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	all = sqlite3_column_int64(q, 0);
	delivered = (int64_t)sqlite3_column_double(q, 1);
	failed = (int64_t)sqlite3_column_double(q, 2);
	sqlite3_reset(q);
	now_st = failed ? STORE_FAILED : delivered == all ? STORE_DELIVERED : st;
	m->sms_status = st;
	if (now_st == st || st == STORE_FAILED || st == STORE_DELIVERED)
		return 0;
	snprintf(why, sizeof(why), "part %d was not delivered", m->seq);
	r = write1(s, u, bindv(s, u, "IssI", m->sms_id, status_names[now_st],
			      now_st == STORE_FAILED ? why : NULL,
			      store_now_ms()));
	if (!r) {
		m->sms_status = now_st;
		m->final = true;
	}
	return r;
}

static int report_apply(struct store *s, const struct store_report *rep,
			int64_t window_ms, int64_t now, struct store_match *m)
{
	int r = report_find(s, rep, window_ms, now, m);

	if (!r)
		r = report_part(s, rep, m, now);
	if (!r && rep->cls != STORE_REPORT_PENDING)
		r = report_settle(s, m);
	else if (!r)
		r = sms_status(s, m->sms_id, &m->sms_status);
	return r;
}

int store_report_match(struct store *s, const struct store_report *rep,
		       int64_t window_ms, int64_t now, struct store_match *out)
{
	struct store_match m = { 0 };
	int r;

	if (!rep->modem || !rep->recipient || rep->mr < 0 || rep->mr > 255 ||
	    (unsigned)rep->cls > STORE_REPORT_FAILED || window_ms < 0)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r)
		return r;
	r = tx_leave(s, report_apply(s, rep, window_ms, now, &m));
	if (!r)
		*out = m;
	return r;
}

/* --- inbox ------------------------------------------------------------------ */

int store_sms_receive(struct store *s, const char *peer, const char *text,
		      bool incomplete, int64_t account_id, int64_t *id)
{
	sqlite3_stmt *ins = s->st[ST_SMS_INSERT];
	int r;

	if (!peer || !*peer || !text || account_id < 0)
		return -EINVAL;
	r = bindv(s, ins, "ssssisNsiI", "in", peer, text, "received", 0,
		 NULL, account_id, NULL, incomplete ? 1 : 0, store_now_ms());
	r = write1(s, ins, r);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(s->db);
	return r;
}

int store_inbox_seen(struct store *s, const char *pdu_hex, int64_t now,
		     bool *seen)
{
	sqlite3_stmt *ins = s->st[ST_SEEN_ADD];
	int r;

	if (!pdu_hex || !*pdu_hex)
		return -EINVAL;
	if (s->depth == 0)
		return -EINVAL; /* must commit with what it guards */
	r = bindv(s, ins, "sI", pdu_hex, now);
	r = r ? r : run(s, ins);
	if (r == 0)
		*seen = sqlite3_changes(s->db) == 0;
	return r;
}

int store_inbox_seen_prune(struct store *s, int64_t older_than)
{
	sqlite3_stmt *del = s->st[ST_SEEN_PRUNE];
	int r = bindv(s, del, "I", older_than);

	return r ? r : run(s, del);
}

/* Binds (sender, ref, total) as parameters 1..3 plus extras. */
static int bind_set(struct store *s, sqlite3_stmt *st, const char *sender,
		    int ref, int total)
{
	return bindv(s, st, "sii", sender, ref, total);
}

/* Joins the undone parts of a set in seq order, a gap marker where parts
 * are missing. *out malloc'd. */
static int inbox_join(struct store *s, const char *sender, int ref,
		      int total, char **out)
{
	sqlite3_stmt *q = s->st[ST_INBOX_TEXTS];
	char *buf = NULL;
	size_t len = 0;
	int expect = 1, r;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	r = bind_set(s, q, sender, ref, total);
	while (!r && (r = step(s, q)) == 1) {
		int seq = sqlite3_column_int(q, 0);

		if (seq > expect)
			fputs(INBOX_GAP, f);
		fputs(col_text(q, 1) ? col_text(q, 1) : "", f);
		expect = seq + 1;
		r = 0;
	}
	if (!r && expect <= total)
		fputs(INBOX_GAP, f);
	if (r)
		sqlite3_reset(q);
	if (fclose(f) != 0 && !r)
		r = -ENOMEM;
	if (r) {
		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

/* 1 when this exact part is already stored (a duplicate), 0 when it is new
 * (an older done set with the same key but other text is dropped: the
 * sender's reference wrapped around), -errno. */
static int inbox_seen(struct store *s, const struct store_inbox_part *p)
{
	sqlite3_stmt *q = s->st[ST_INBOX_FIND], *d = s->st[ST_INBOX_DROP];
	bool same, done;
	int r = bindv(s, q, "siii", p->sender, p->ref, p->total, p->seq);

	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r;
	same = strcmp(col_text(q, 0) ? col_text(q, 0) : "", p->text) == 0;
	done = sqlite3_column_int(q, 1) != 0;
	sqlite3_reset(q);
	if (same || !done)
		return 1;
	r = bind_set(s, d, p->sender, p->ref, p->total);
	return r ? r : run(s, d);
}

static int inbox_add(struct store *s, const struct store_inbox_part *p,
		     enum store_inbox_result *res, char **text)
{
	sqlite3_stmt *ins = s->st[ST_INBOX_INSERT], *cnt = s->st[ST_INBOX_COUNT];
	sqlite3_stmt *done = s->st[ST_INBOX_DONE];
	int64_t now = store_now_ms(), have;
	int r = inbox_seen(s, p);

	if (r) {
		*res = STORE_INBOX_DUPLICATE;
		return r < 0 ? r : 0;
	}
	r = bindv(s, ins, "siiisI", p->sender, p->ref, p->total, p->seq,
		 p->text, now);
	if (!r)
		r = run(s, ins);
	if (!r)
		r = bind_set(s, cnt, p->sender, p->ref, p->total);
	if (!r)
		r = step(s, cnt);
	if (r < 0)
		return r;
	have = sqlite3_column_int64(cnt, 0);
	sqlite3_reset(cnt);
	*res = have < p->total ? STORE_INBOX_PENDING : STORE_INBOX_COMPLETE;
	if (*res == STORE_INBOX_PENDING)
		return 0;
	r = inbox_join(s, p->sender, p->ref, p->total, text);
	if (!r)
		r = bindv(s, done, "siiI", p->sender, p->ref, p->total, now);
	return r ? r : run(s, done);
}

int store_inbox_part_add(struct store *s, const struct store_inbox_part *p,
			 enum store_inbox_result *res, char **text)
{
	enum store_inbox_result result = STORE_INBOX_PENDING;
	char *joined = NULL;
	int r;

	if (!s->depth)
		return -EINVAL;
	if (!p->sender || !*p->sender || !p->text || p->ref < 0 ||
	    p->ref > 65535 || p->total < 1 || p->total > 255 || p->seq < 1 ||
	    p->seq > p->total)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r)
		return r;
	r = tx_leave(s, inbox_add(s, p, &result, &joined));
	if (r) {
		free(joined);
		return r;
	}
	*res = result;
	if (result == STORE_INBOX_COMPLETE)
		*text = joined;
	return 0;
}

void store_inbox_sets_free(struct store_inbox_set *sets, size_t n)
{
	for (size_t i = 0; sets && i < n; i++) {
		free(sets[i].sender);
		free(sets[i].text);
	}
	free(sets);
}

struct set_key {
	char *sender;
	int ref, total;
};

/* The stale sets' keys, collected before any of them is deleted. */
static int stale_keys(struct store *s, int64_t older_than,
		      struct set_key **keys, size_t *n)
{
	sqlite3_stmt *q = s->st[ST_INBOX_STALE];
	size_t cap = 0;
	int r = bindv(s, q, "I", older_than);

	while (!r && (r = step(s, q)) == 1) {
		if (*n == cap) {
			struct set_key *k;

			cap = cap ? cap * 2 : 8;
			k = realloc(*keys, cap * sizeof(*k));
			if (!k) {
				r = -ENOMEM;
				break;
			}
			*keys = k;
		}
		(*keys)[*n].sender = col_dup(q, 0);
		(*keys)[*n].ref = sqlite3_column_int(q, 1);
		(*keys)[*n].total = sqlite3_column_int(q, 2);
		r = (*keys)[(*n)++].sender ? 0 : -ENOMEM;
	}
	if (r)
		sqlite3_reset(q);
	return r;
}

/* Turns each stale set into an inbox set and deletes its parts, then
 * forgets done sets older than older_than. */
static int inbox_expire(struct store *s, int64_t older_than,
			struct store_inbox_set *sets, struct set_key *keys,
			size_t n)
{
	sqlite3_stmt *d = s->st[ST_INBOX_DROP], *purge = s->st[ST_INBOX_PURGE];
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		r = inbox_join(s, keys[i].sender, keys[i].ref, keys[i].total,
			       &sets[i].text);
		if (!r)
			r = bind_set(s, d, keys[i].sender, keys[i].ref,
				     keys[i].total);
		if (!r)
			r = run(s, d);
		sets[i].sender = keys[i].sender;
		keys[i].sender = NULL;
	}
	if (!r)
		r = bindv(s, purge, "I", older_than);
	return r ? r : run(s, purge);
}

int store_inbox_expire(struct store *s, int64_t older_than,
		       struct store_inbox_set **sets, size_t *n)
{
	struct set_key *keys = NULL;
	struct store_inbox_set *out = NULL;
	size_t count = 0;
	int r;

	if (!s->depth)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r)
		return r;
	r = stale_keys(s, older_than, &keys, &count);
	if (!r && count && !(out = calloc(count, sizeof(*out))))
		r = -ENOMEM;
	if (!r)
		r = inbox_expire(s, older_than, out, keys, count);
	r = tx_leave(s, r);
	for (size_t i = 0; i < count; i++)
		free(keys[i].sender);
	free(keys);
	if (r) {
		store_inbox_sets_free(out, out ? count : 0);
		return r;
	}
	*sets = out;
	*n = count;
	return 0;
}

/* --- JSON views ------------------------------------------------------------ */

static json_t *json_text_or_null(sqlite3_stmt *q, int col)
{
	return sqlite3_column_type(q, col) == SQLITE_NULL
		       ? json_null() : json_string(col_text(q, col));
}

static json_t *parts_json(struct store *s, int64_t id)
{
	sqlite3_stmt *q = s->st[ST_PARTS_GET];
	json_t *arr = json_array();
	int r = bindv(s, q, "I", id);

	while (arr && !r && (r = step(s, q)) == 1) {
		json_t *mr = sqlite3_column_type(q, 2) == SQLITE_NULL
			? json_null() : json_integer(sqlite3_column_int(q, 2));

		r = json_array_append_new(arr, json_pack("{si ss so so so}",
			"seq", sqlite3_column_int(q, 0),
			"status", col_text(q, 1), "mr", mr,
			"modem", json_text_or_null(q, 3),
			"error", json_text_or_null(q, 4))) ? -ENOMEM : 0;
	}
	if (r || !arr) {
		sqlite3_reset(q);
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* A row of SMS_COLS as the DESIGN's `sms` object. */
static json_t *sms_json(struct store *s, sqlite3_stmt *q)
{
	char c[STORE_ISO_MAX], u[STORE_ISO_MAX];
	int64_t id = sqlite3_column_int64(q, 0);
	bool out = strcmp(col_text(q, 1), "out") == 0;
	json_t *o, *parts = parts_json(s, id);

	if (!parts)
		return NULL;
	o = json_pack("{sI ss ss ss ss so so ss ss}", "id", (json_int_t)id,
		      "direction", col_text(q, 1), "peer", col_text(q, 2),
		      "text", col_text(q, 3), "status", col_text(q, 4),
		      "error", json_text_or_null(q, 7), "parts", parts,
		      "created_at", store_time_iso(sqlite3_column_int64(q, 8), c),
		      "updated_at", store_time_iso(sqlite3_column_int64(q, 9), u));
	if (o && out)
		json_object_set_new(o, "kind", json_string(col_text(q, 5)));
	else if (o)
		json_object_set_new(o, "incomplete",
				    json_boolean(sqlite3_column_int(q, 6)));
	return o;
}

int store_sms_get(struct store *s, int64_t id, struct json_t **out)
{
	sqlite3_stmt *q = s->st[ST_SMS_GET];
	json_t *o;
	int r = bindv(s, q, "I", id);

	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	o = sms_json(s, q);
	sqlite3_reset(q);
	if (!o)
		return -ENOMEM;
	*out = o;
	return 0;
}

static int page_limit(int limit)
{
	if (limit <= 0)
		return STORE_LIST_DEFAULT;
	return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

typedef json_t *(*row_fn)(struct store *s, sqlite3_stmt *q);

/* Steps a bound page query (LIMIT limit + 1) into a JSON array; *next is
 * the last id of the page when there is a further row. */
static int page(struct store *s, sqlite3_stmt *q, int limit, row_fn fn,
		json_t **list, int64_t *next)
{
	json_t *arr = json_array();
	int64_t last = 0;
	bool more = false;
	int r = arr ? 0 : -ENOMEM;

	while (!r && (r = step(s, q)) == 1) {
		if (json_array_size(arr) == (size_t)limit) {
			more = true;
			r = 0;
			break;
		}
		last = sqlite3_column_int64(q, 0);
		r = json_array_append_new(arr, fn(s, q)) ? -ENOMEM : 0;
	}
	sqlite3_reset(q);
	if (r) {
		json_decref(arr);
		return r;
	}
	*list = arr;
	*next = more ? last : 0;
	return 0;
}

int store_sms_list(struct store *s, enum store_direction dir, int limit,
		   int64_t after, struct json_t **list, int64_t *next)
{
	sqlite3_stmt *q = s->st[ST_SMS_LIST];
	int r;

	limit = page_limit(limit);
	r = bindv(s, q, "sIi", dir == STORE_IN ? "in" : "out",
		 after > 0 ? after : INT64_MAX, limit + 1);
	return r ? r : page(s, q, limit, sms_json, list, next);
}

int store_counts(struct store *s, struct store_counts *c)
{
	sqlite3_stmt *q = s->st[ST_COUNT_STATUS];
	struct store_counts n = { 0 };
	int r = 0;

	for (int i = 0; i < STORE_STATUS_COUNT && !r; i++) {
		r = bindv(s, q, "s", status_names[i]);
		if (!r && (r = step(s, q)) == 1) {
			n.sms[i] = sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
			r = 0;
		}
	}
	q = s->st[ST_COUNT_PARTIAL];
	if (!r && (r = step(s, q)) == 1) {
		n.inbox_partial = sqlite3_column_int64(q, 0);
		sqlite3_reset(q);
		r = 0;
	}
	if (!r)
		*c = n;
	return r;
}

/* --- audit ------------------------------------------------------------------- */

static const char *const secret_keys[] = {
	"password", "new_password", "token", "code", "recovery_code", "pin",
	"secret",
};

static bool is_secret_key(const char *k)
{
	return index_of(secret_keys, sizeof(secret_keys) / sizeof(*secret_keys),
			k) >= 0;
}

/* A deep copy of v with every member named like a secret replaced. */
static json_t *redacted(const json_t *v)
{
	json_t *o, *x;
	const char *k;
	size_t i;

	if (json_is_object(v)) {
		o = json_object();
		json_object_foreach((json_t *)v, k, x)
			json_object_set_new(o, k, is_secret_key(k)
				? json_string("[redacted]") : redacted(x));
		return o;
	}
	if (json_is_array(v)) {
		o = json_array();
		json_array_foreach(v, i, x)
			json_array_append_new(o, redacted(x));
		return o;
	}
	return json_deep_copy(v);
}

int store_audit_add(struct store *s, long uid, const char *role,
		    const char *op, int64_t account_id,
		    const struct json_t *detail, int64_t *id)
{
	sqlite3_stmt *ins = s->st[ST_AUDIT_INSERT];
	json_t *clean;
	char *text;
	int r;

	if (!role || !op || account_id < 0 || (detail && !json_is_object(detail)))
		return -EINVAL;
	clean = detail ? redacted(detail) : json_object();
	text = clean ? json_dumps(clean, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(clean);
	if (!text)
		return -ENOMEM;
	r = bindv(s, ins, "IIssNs", store_now_ms(), (int64_t)uid, role, op,
		 account_id, text);
	free(text);
	r = write1(s, ins, r);
	if (!r && id)
		*id = sqlite3_last_insert_rowid(s->db);
	return r;
}

static json_t *audit_json(struct store *s, sqlite3_stmt *q)
{
	char at[STORE_ISO_MAX];
	json_t *detail = json_loads(col_text(q, 6), 0, NULL);

	(void)s;
	return json_pack("{sI ss sI ss ss so so}",
			 "id", (json_int_t)sqlite3_column_int64(q, 0),
			 "at", store_time_iso(sqlite3_column_int64(q, 1), at),
			 "uid", (json_int_t)sqlite3_column_int64(q, 2),
			 "role", col_text(q, 3), "op", col_text(q, 4),
			 "account_id", sqlite3_column_type(q, 5) == SQLITE_NULL
				? json_null()
				: json_integer(sqlite3_column_int64(q, 5)),
			 "detail", detail ? detail : json_object());
}

int store_audit_list(struct store *s, int limit, int64_t after,
		     struct json_t **entries, int64_t *next)
{
	sqlite3_stmt *q = s->st[ST_AUDIT_LIST];
	int r;

	limit = page_limit(limit);
	r = bindv(s, q, "Ii", after > 0 ? after : INT64_MAX, limit + 1);
	return r ? r : page(s, q, limit, audit_json, entries, next);
}

/* --- settings ---------------------------------------------------------------- */

int store_setting_get(struct store *s, const char *key, char **value)
{
	sqlite3_stmt *q = s->st[ST_SETTING_GET];
	char *v;
	int r;

	if (!key)
		return -EINVAL;
	r = bindv(s, q, "s", key);
	if (!r)
		r = step(s, q);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	v = col_dup(q, 0);
	sqlite3_reset(q);
	if (!v)
		return -ENOMEM;
	*value = v;
	return 0;
}

int store_setting_set(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *u = s->st[ST_SETTING_SET];

	if (!key || !value)
		return -EINVAL;
	return write1(s, u, bindv(s, u, "ss", key, value));
}

/* --- statements for other modules ------------------------------------------- */

int store_stmt_prepare(struct store *s, const char *sql,
		       struct store_stmt **out)
{
	struct store_stmt *st = calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return -ENOMEM;
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&st->st, NULL);
	if (rc != SQLITE_OK) {
		free(st);
		return fail(s, rc, sql);
	}
	st->s = s;
	*out = st;
	return 0;
}

void store_stmt_free(struct store_stmt *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->st);
	free(st);
}

static int bind_rc(struct store_stmt *st, int rc)
{
	return rc == SQLITE_OK ? 0 : fail(st->s, rc, sqlite3_sql(st->st));
}

int store_stmt_bind_int64(struct store_stmt *st, int idx, int64_t v)
{
	return bind_rc(st, sqlite3_bind_int64(st->st, idx, v));
}

int store_stmt_bind_text(struct store_stmt *st, int idx, const char *v)
{
	return bind_rc(st, sqlite3_bind_text(st->st, idx, v, -1,
					     SQLITE_TRANSIENT));
}

int store_stmt_bind_blob(struct store_stmt *st, int idx, const void *v,
			 size_t len)
{
	return bind_rc(st, sqlite3_bind_blob64(st->st, idx, v, len,
					       SQLITE_TRANSIENT));
}

int store_stmt_bind_null(struct store_stmt *st, int idx)
{
	return bind_rc(st, sqlite3_bind_null(st->st, idx));
}

int store_stmt_step(struct store_stmt *st)
{
	return step(st->s, st->st);
}

void store_stmt_reset(struct store_stmt *st)
{
	sqlite3_reset(st->st);
}

bool store_stmt_column_null(struct store_stmt *st, int col)
{
	return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

int64_t store_stmt_column_int64(struct store_stmt *st, int col)
{
	return sqlite3_column_int64(st->st, col);
}

const char *store_stmt_column_text(struct store_stmt *st, int col)
{
	return col_text(st->st, col);
}

const void *store_stmt_column_blob(struct store_stmt *st, int col,
				   size_t *len)
{
	const void *b = sqlite3_column_blob(st->st, col);

	*len = (size_t)sqlite3_column_bytes(st->st, col);
	return b;
}

int64_t store_changes(struct store *s)
{
	return sqlite3_changes64(s->db);
}

int64_t store_last_insert_id(struct store *s)
{
	return sqlite3_last_insert_rowid(s->db);
}

int store_exec(struct store *s, const char *sql)
{
	int rc;

	batch_guard(s);
	if (s->aborted)
		return s->aborted;
	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fail(s, rc, sql);
}

/* --- group commit ------------------------------------------------------------ */

int store_batch_enter(struct store *s, store_flush_fn *flush, void *ctx)
{
	int r;

	if (s->batch) {
		if (s->batch_flush != flush || s->batch_ctx != ctx)
			return -EBUSY;
		s->batch_inside = true;
		return 0;
	}
	if (s->depth > 0)
		return -EBUSY;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	s->batch = true;
	s->batch_inside = true;
	s->batch_flush = flush;
	s->batch_ctx = ctx;
	return 0;
}

void store_batch_leave(struct store *s)
{
	s->batch_inside = false;
}

bool store_batch_open(const struct store *s)
{
	return s->batch;
}

int store_batch_commit(struct store *s)
{
	if (!s->batch)
		return 0;
	s->batch = false;
	s->batch_inside = false;
	return store_tx_commit(s);
}

int store_query_plan(struct store *s, const char *name, char **plan)
{
	const char *sql = NULL;
	char *text, *buf = NULL;
	size_t len = 0;
	sqlite3_stmt *q;
	FILE *f;
	int rc;

	for (int i = 0; i < ST_COUNT && !sql; i++)
		if (strcmp(st_defs[i].name, name) == 0)
			sql = st_defs[i].sql;
	if (!sql || asprintf(&text, "EXPLAIN QUERY PLAN %s", sql) < 0)
		return sql ? -ENOMEM : -ENOENT;
	rc = sqlite3_prepare_v2(s->db, text, -1, &q, NULL);
	free(text);
	if (rc != SQLITE_OK)
		return fail(s, rc, name);
	f = open_memstream(&buf, &len);
	while (f && sqlite3_step(q) == SQLITE_ROW)
		fprintf(f, "%s\n", col_text(q, 3) ? col_text(q, 3) : "");
	sqlite3_finalize(q);
	if (!f || fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*plan = buf;
	return 0;
}
