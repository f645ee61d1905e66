/* acctdb — see acctdb.h. */
#include "daemon/acctdb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store.h"

#define DAY_MS (24LL * 3600 * 1000)

static const char *const state_names[] = {
	[ACCT_INVITED] = "invited",
	[ACCT_ACTIVE] = "active",
	[ACCT_DEACTIVATED] = "deactivated",
};

const char *acctdb_state_name(enum acct_state st)
{
	return (unsigned)st < ACCT_STATE_COUNT ? state_names[st] : "?";
}

int acctdb_state_parse(const char *name, enum acct_state *out)
{
	for (unsigned i = 0; i < ACCT_STATE_COUNT; i++) {
		if (name && strcmp(name, state_names[i]) == 0) {
			*out = (enum acct_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The columns of an account, read by read_acct(). ?1 is the start of the
 * 24 h window for claim_sms_24h. */
#define ACCT_SELECT                                                          \
	"SELECT a.id, a.phone, a.name, a.fields, a.state, a.prev_state,"    \
	" a.session_epoch, a.created_at, a.claimed_at, a.updated_at,"        \
	" (SELECT COUNT(*) FROM account_claim_sms c"                         \
	"   WHERE c.account_id = a.id AND c.at > ?1),"                       \
	" a.password_hash, a.recovery_code_hash,"                            \
	" a.claim_token_hash IS NOT NULL, a.claim_token_expires_at"         \
	" FROM accounts a "

enum q {
	Q_BY_PHONE,
	Q_BY_TOKEN,
	Q_BY_ID,
	Q_LIST,
	Q_LIST_STATE,
	Q_INSERT,
	Q_CREATED_SINCE,
	Q_CLAIM_SINCE,
	Q_CLAIM_ADD,
	Q_CLAIM_PRUNE,
	Q_PROFILE,
	Q_SET_TOKEN,
	Q_CLAIM,
	Q_UNCLAIM,
	Q_DEACTIVATE,
	Q_REACTIVATE,
	Q_SET_RECOVERY,
	Q_RESET_PW,
	Q_REHASH,
	Q_FAIL_SINCE,
	Q_FAIL_ADD,
	Q_FAIL_PRUNE,
	Q_FAIL_CLEAR,
	Q_COUNT
};

static const char *const q_sql[Q_COUNT] = {
	[Q_BY_PHONE] = ACCT_SELECT "WHERE a.phone = ?2",
	[Q_BY_TOKEN] = ACCT_SELECT "WHERE a.claim_token_hash = ?2",
	[Q_BY_ID] = ACCT_SELECT "WHERE a.id = ?2",
	[Q_LIST] = ACCT_SELECT "WHERE a.id > ?2 ORDER BY a.id LIMIT ?3",
	[Q_LIST_STATE] = ACCT_SELECT
	"WHERE a.state = ?4 AND a.id > ?2 ORDER BY a.id LIMIT ?3",
	[Q_INSERT] = "INSERT INTO accounts (phone, name, fields, state,"
		     " claim_token_hash, claim_token_expires_at, created_at,"
		     " updated_at) VALUES (?1, ?2, ?3, 'invited', ?4, ?5, ?6, ?6)",
	[Q_CREATED_SINCE] = "SELECT COUNT(*), MIN(created_at) FROM accounts"
			    " WHERE created_at > ?1",
	[Q_CLAIM_SINCE] = "SELECT COUNT(*), MIN(at) FROM account_claim_sms"
			  " WHERE account_id = ?1 AND at > ?2",
	[Q_CLAIM_ADD] = "INSERT INTO account_claim_sms (account_id, at, sms_id)"
			" VALUES (?1, ?2, ?3)",
	[Q_CLAIM_PRUNE] = "DELETE FROM account_claim_sms"
			  " WHERE account_id = ?1 AND at <= ?2",
	[Q_PROFILE] = "UPDATE accounts SET name = COALESCE(?2, name),"
		      " fields = CASE WHEN ?3 THEN ?4 ELSE fields END,"
		      " updated_at = ?5 WHERE id = ?1",
	[Q_SET_TOKEN] = "UPDATE accounts SET claim_token_hash = ?2,"
			" claim_token_expires_at = ?3, updated_at = ?4"
			" WHERE id = ?1 AND state = 'invited'",
	[Q_CLAIM] = "UPDATE accounts SET state = 'active', password_hash = ?2,"
		    " recovery_code_hash = ?3, claim_token_hash = NULL,"
		    " claim_token_expires_at = NULL, claimed_at = ?4,"
		    " updated_at = ?4 WHERE id = ?1 AND state = 'invited'",
	[Q_UNCLAIM] = "UPDATE accounts SET state = 'invited',"
		      " password_hash = NULL, recovery_code_hash = NULL,"
		      " session_epoch = session_epoch + 1,"
		      " claim_token_hash = ?2, claim_token_expires_at = ?3,"
		      " claimed_at = NULL, updated_at = ?4"
		      " WHERE id = ?1 AND state = 'active'",
	[Q_DEACTIVATE] = "UPDATE accounts SET state = 'deactivated',"
			 " prev_state = ?2, session_epoch = session_epoch + 1,"
			 " updated_at = ?3"
			 " WHERE id = ?1 AND state <> 'deactivated'",
	[Q_REACTIVATE] = "UPDATE accounts SET state = prev_state,"
			 " prev_state = NULL, updated_at = ?2"
			 " WHERE id = ?1 AND state = 'deactivated'",
	[Q_SET_RECOVERY] = "UPDATE accounts SET recovery_code_hash = ?2,"
			   " updated_at = ?3 WHERE id = ?1 AND state = 'active'",
	[Q_RESET_PW] = "UPDATE accounts SET password_hash = ?2,"
		       " recovery_code_hash = NULL,"
		       " session_epoch = session_epoch + ?3, updated_at = ?4"
		       " WHERE id = ?1 AND state = 'active'",
	[Q_REHASH] = "UPDATE accounts SET password_hash = ?3"
		     " WHERE id = ?1 AND password_hash = ?2",
	[Q_FAIL_SINCE] = "SELECT COUNT(*), MIN(at) FROM account_failure"
			 " WHERE kind = ?1 AND key = ?2 AND at > ?3",
	[Q_FAIL_ADD] = "INSERT INTO account_failure (kind, key, at)"
		       " VALUES (?1, ?2, ?3)",
	[Q_FAIL_PRUNE] = "DELETE FROM account_failure WHERE at <= ?1",
	[Q_FAIL_CLEAR] = "DELETE FROM account_failure"
			 " WHERE kind = ?1 AND key = ?2",
};

struct acctdb {
	struct store *store;
	struct store_stmt *q[Q_COUNT];
};

void acct_clear(struct acct *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->fields);
	free(a->password_hash);
	free(a->recovery_hash);
	memset(a, 0, sizeof(*a));
}

void acctdb_free(struct acctdb *db)
{
	if (!db)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		store_stmt_free(db->q[i]);
	free(db);
}

struct acctdb *acctdb_new(struct store *s, char *err, size_t errlen)
{
	struct acctdb *db = calloc(1, sizeof(*db));

	if (!db) {
		snprintf(err, errlen, "accounts: out of memory");
		return NULL;
	}
	db->store = s;
	for (int i = 0; i < Q_COUNT; i++) {
		int r = store_stmt_prepare(s, q_sql[i], &db->q[i]);

		if (r < 0) {
			snprintf(err, errlen,
				 "accounts: cannot prepare statement %d (%s); "
				 "is the accounts migration in the store's "
				 "list (daemon/accounts_schema.h)?",
				 i, strerror(-r));
			acctdb_free(db);
			return NULL;
		}
	}
	return db;
}

/* --- binding helpers --------------------------------------------------------- */

/* Binds parameters 1.. from a type string: 'I' int64_t, 's' text (NULL
 * binds NULL). Returns 0 or -errno. */
static int bindv(struct store_stmt *st, const char *types, ...)
{
	va_list ap;
	int r = 0;

	va_start(ap, types);
	for (int i = 1; *types && r == 0; types++, i++) {
		if (*types == 'I')
			r = store_stmt_bind_int64(st, i, va_arg(ap, int64_t));
		else
			r = store_stmt_bind_text(st, i, va_arg(ap, const char *));
	}
	va_end(ap);
	if (r < 0)
		store_stmt_reset(st);
	return r;
}

/* Runs a write bound by the caller: 0, -ENOENT when no row changed, or
 * the store's -errno. */
static int write_one(struct acctdb *db, struct store_stmt *st, int bound)
{
	int r = bound < 0 ? bound : store_stmt_step(st);

	if (r == 1) {
		store_stmt_reset(st);
		r = 0;
	}
	if (r < 0)
		return r;
	return store_changes(db->store) > 0 ? 0 : -ENOENT;
}

/* Runs a write that may change no row (pruning): 0 or -errno. */
static int write_any(struct store_stmt *st, int bound)
{
	int r = bound < 0 ? bound : store_stmt_step(st);

	if (r == 1)
		store_stmt_reset(st);
	return r < 0 ? r : 0;
}

/* A COUNT(*), MIN(x) query bound by the caller. */
static int count_min(struct store_stmt *st, int bound, int64_t *count,
		     int64_t *oldest)
{
	int r = bound < 0 ? bound : store_stmt_step(st);

	if (r < 0)
		return r;
	if (r == 0)
		return -EIO;   /* an aggregate always has a row */
	*count = store_stmt_column_int64(st, 0);
	*oldest = store_stmt_column_null(st, 1)
			  ? 0
			  : store_stmt_column_int64(st, 1);
	store_stmt_reset(st);
	return 0;
}

static char *dup_col(struct store_stmt *st, int col)
{
	const char *t;

	if (store_stmt_column_null(st, col))
		return NULL;
	t = store_stmt_column_text(st, col);
	return strdup(t ? t : "");
}

/* Fills a from the current row of an ACCT_SELECT statement. */
static int read_acct(struct store_stmt *st, struct acct *a)
{
	const char *phone = store_stmt_column_text(st, 1);
	char *name;

	memset(a, 0, sizeof(*a));
	a->id = store_stmt_column_int64(st, 0);
	snprintf(a->phone, sizeof(a->phone), "%s", phone ? phone : "");
	name = dup_col(st, 2);
	a->name = name ? name : strdup("");
	a->fields = dup_col(st, 3);
	if (acctdb_state_parse(store_stmt_column_text(st, 4), &a->state) < 0)
		a->state = ACCT_DEACTIVATED;   /* the CHECK forbids it */
	if (acctdb_state_parse(store_stmt_column_text(st, 5), &a->prev_state) <
	    0)
		a->prev_state = ACCT_INVITED;
	a->session_epoch = store_stmt_column_int64(st, 6);
	a->created_at = store_stmt_column_int64(st, 7);
	a->claimed_at = store_stmt_column_int64(st, 8);
	a->updated_at = store_stmt_column_int64(st, 9);
	a->claim_sms_24h = store_stmt_column_int64(st, 10);
	a->password_hash = dup_col(st, 11);
	a->recovery_hash = dup_col(st, 12);
	a->has_token = store_stmt_column_int64(st, 13) != 0;
	a->token_expires_at = store_stmt_column_int64(st, 14);
	if (!a->name || (!store_stmt_column_null(st, 3) && !a->fields) ||
	    (!store_stmt_column_null(st, 11) && !a->password_hash) ||
	    (!store_stmt_column_null(st, 12) && !a->recovery_hash)) {
		acct_clear(a);
		return -ENOMEM;
	}
	return 0;
}

/* One account by an ACCT_SELECT query whose ?2 is already bound. */
static int get_one(struct store_stmt *st, int bound, struct acct *out)
{
	struct acct a;
	int r = bound < 0 ? bound : store_stmt_step(st);

	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = read_acct(st, &a);
	store_stmt_reset(st);
	if (r == 0)
		*out = a;
	return r;
}

int acctdb_by_phone(struct acctdb *db, const char *e164, int64_t now,
		    struct acct *out)
{
	struct store_stmt *st = db->q[Q_BY_PHONE];

	return get_one(st, bindv(st, "Is", now - DAY_MS, e164), out);
}

int acctdb_by_token(struct acctdb *db, const char *token_hash, int64_t now,
		    struct acct *out)
{
	struct store_stmt *st = db->q[Q_BY_TOKEN];

	return get_one(st, bindv(st, "Is", now - DAY_MS, token_hash), out);
}

int acctdb_by_id(struct acctdb *db, int64_t id, int64_t now,
		 struct acct *out)
{
	struct store_stmt *st = db->q[Q_BY_ID];

	return get_one(st, bindv(st, "II", now - DAY_MS, id), out);
}

void acctdb_rows_free(struct acct *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		acct_clear(&rows[i]);
	free(rows);
}

int acctdb_list(struct acctdb *db, const enum acct_state *state,
		int64_t after, int limit, int64_t now, struct acct **rows,
		size_t *n, bool *more)
{
	struct store_stmt *st = db->q[state ? Q_LIST_STATE : Q_LIST];
	struct acct *v = calloc((size_t)limit + 1, sizeof(*v));
	size_t k = 0;
	int r;

	if (!v)
		return -ENOMEM;
	r = state ? bindv(st, "IIIs", now - DAY_MS, after, (int64_t)limit + 1,
			 acctdb_state_name(*state))
		  : bindv(st, "III", now - DAY_MS, after, (int64_t)limit + 1);
	while (r == 0 && (r = store_stmt_step(st)) == 1) {
		r = read_acct(st, &v[k]);
		if (r == 0)
			k++;
	}
	if (r < 0) {
		store_stmt_reset(st);
		acctdb_rows_free(v, k);
		return r;
	}
	*more = k > (size_t)limit;
	if (*more)
		acct_clear(&v[--k]);
	*rows = v;
	*n = k;
	return 0;
}

int acctdb_insert(struct acctdb *db, const struct acctdb_new_account *na,
		  int64_t now, int64_t *id)
{
	struct store_stmt *st = db->q[Q_INSERT];
	int r = bindv(st, "ssssII", na->phone, na->name ? na->name : "",
		     na->fields, na->token_hash, na->token_expires_at, now);

	r = write_one(db, st, r);
	if (r == 0)
		*id = store_last_insert_id(db->store);
	return r;
}

int acctdb_created_since(struct acctdb *db, int64_t since, int64_t *count,
			 int64_t *oldest)
{
	struct store_stmt *st = db->q[Q_CREATED_SINCE];

	return count_min(st, bindv(st, "I", since), count, oldest);
}

int acctdb_claim_sms_since(struct acctdb *db, int64_t id, int64_t since,
			   int64_t *count, int64_t *oldest)
{
	struct store_stmt *st = db->q[Q_CLAIM_SINCE];

	return count_min(st, bindv(st, "II", id, since), count, oldest);
}

int acctdb_claim_sms_add(struct acctdb *db, int64_t id, int64_t sms_id,
			 int64_t now)
{
	struct store_stmt *add = db->q[Q_CLAIM_ADD];
	struct store_stmt *prune = db->q[Q_CLAIM_PRUNE];
	int r = write_any(prune, bindv(prune, "II", id, now - DAY_MS));

	return r ? r : write_one(db, add, bindv(add, "III", id, now, sms_id));
}

int acctdb_update_profile(struct acctdb *db, int64_t id, const char *name,
			  bool set_fields, const char *fields, int64_t now)
{
	struct store_stmt *st = db->q[Q_PROFILE];

	return write_one(db, st, bindv(st, "IsIsI", id, name,
				      (int64_t)set_fields, fields, now));
}

int acctdb_set_token(struct acctdb *db, int64_t id, const char *token_hash,
		     int64_t expires_at, int64_t now)
{
	struct store_stmt *st = db->q[Q_SET_TOKEN];

	return write_one(db, st,
			 bindv(st, "IsII", id, token_hash, expires_at, now));
}

int acctdb_claim(struct acctdb *db, int64_t id, const char *password_hash,
		 const char *recovery_hash, int64_t now)
{
	struct store_stmt *st = db->q[Q_CLAIM];

	return write_one(db, st, bindv(st, "IssI", id, password_hash,
				      recovery_hash, now));
}

int acctdb_unclaim(struct acctdb *db, int64_t id, const char *token_hash,
		   int64_t expires_at, int64_t now)
{
	struct store_stmt *st = db->q[Q_UNCLAIM];

	return write_one(db, st,
			 bindv(st, "IsII", id, token_hash, expires_at, now));
}

int acctdb_deactivate(struct acctdb *db, int64_t id, enum acct_state from,
		      int64_t now)
{
	struct store_stmt *st = db->q[Q_DEACTIVATE];

	if (from == ACCT_DEACTIVATED)
		return -EINVAL;
	return write_one(db, st,
			 bindv(st, "IsI", id, acctdb_state_name(from), now));
}

int acctdb_reactivate(struct acctdb *db, int64_t id, int64_t now)
{
	struct store_stmt *st = db->q[Q_REACTIVATE];

	return write_one(db, st, bindv(st, "II", id, now));
}

int acctdb_set_recovery(struct acctdb *db, int64_t id,
			const char *recovery_hash, int64_t now)
{
	struct store_stmt *st = db->q[Q_SET_RECOVERY];

	return write_one(db, st, bindv(st, "IsI", id, recovery_hash, now));
}

int acctdb_reset_password(struct acctdb *db, int64_t id,
			  const char *password_hash, bool logout, int64_t now)
{
	struct store_stmt *st = db->q[Q_RESET_PW];

	return write_one(db, st, bindv(st, "IsII", id, password_hash,
				      (int64_t)logout, now));
}

int acctdb_rehash(struct acctdb *db, int64_t id, const char *old,
		  const char *password_hash)
{
	struct store_stmt *st = db->q[Q_REHASH];

	return write_one(db, st, bindv(st, "Iss", id, old, password_hash));
}

int acctdb_failures_since(struct acctdb *db, const char *kind,
			  const char *key, int64_t since, int64_t *count,
			  int64_t *oldest)
{
	struct store_stmt *st = db->q[Q_FAIL_SINCE];

	return count_min(st, bindv(st, "ssI", kind, key, since), count, oldest);
}

int acctdb_failure_add(struct acctdb *db, const char *kind, const char *key,
		       int64_t now, int64_t expire)
{
	struct store_stmt *add = db->q[Q_FAIL_ADD];
	struct store_stmt *prune = db->q[Q_FAIL_PRUNE];
	int r = write_any(prune, bindv(prune, "I", expire));

	return r ? r : write_one(db, add, bindv(add, "ssI", kind, key, now));
}

int acctdb_failures_clear(struct acctdb *db, const char *kind,
			  const char *key)
{
	struct store_stmt *st = db->q[Q_FAIL_CLEAR];

	return write_any(st, bindv(st, "ss", kind, key));
}

