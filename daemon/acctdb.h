/* acctdb — the accounts tables (daemon/accounts_schema.h), through the
 * store's statement API.
 *
 * Synchronous, loop thread only, like the store. Every call runs in the
 * caller's store transaction when it holds one: daemon/accounts groups a
 * check and the writes that depend on it (the daily cap and the insert,
 * the claim SMS count and the log) in one transaction.
 *
 * Returns: 0 or -errno from the store (store_error_unavailable() tells
 * which mean "try again"); -ENOENT when no row matched; -EEXIST for a
 * phone or token hash that is taken. Out-parameters are untouched on
 * failure. */
#ifndef SMSGW_ACCTDB_H
#define SMSGW_ACCTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/phone.h"

struct store;
struct acctdb;

enum acct_state {
	ACCT_INVITED,
	ACCT_ACTIVE,
	ACCT_DEACTIVATED,
	ACCT_STATE_COUNT,
};

/* "invited", "active", "deactivated"; "?" out of range. */
const char *acctdb_state_name(enum acct_state st);
/* 0, or -EINVAL for a name that is not a state. */
int acctdb_state_parse(const char *name, enum acct_state *out);

/* One account row; strings are owned (acct_clear frees them). */
struct acct {
	int64_t id;
	char phone[PHONE_E164_MAX];
	char *name;             /* never NULL once read */
	char *fields;           /* JSON object text, or NULL */
	enum acct_state state;
	enum acct_state prev_state; /* meaningful when deactivated */
	int64_t session_epoch;
	int64_t created_at;
	int64_t claimed_at;     /* 0: never / not now */
	int64_t updated_at;
	int64_t claim_sms_24h;  /* claim SMS in the 24 h before `now` */
	char *password_hash;    /* NULL: no password (invited) */
	char *recovery_hash;    /* NULL: no recovery code */
	bool has_token;
	int64_t token_expires_at;
};

/* Frees the strings of a and zeroes it; NULL is fine. */
void acct_clear(struct acct *a);

/* Prepares the statements. Fails (-ENOENT style store errors, with a
 * message in err) when the schema is missing. */
struct acctdb *acctdb_new(struct store *s, char *err, size_t errlen);
void acctdb_free(struct acctdb *db);

/* Lookups; `now` anchors claim_sms_24h. -ENOENT when none. */
int acctdb_by_phone(struct acctdb *db, const char *e164, int64_t now,
		    struct acct *out);
int acctdb_by_token(struct acctdb *db, const char *token_hash, int64_t now,
		    struct acct *out);
int acctdb_by_id(struct acctdb *db, int64_t id, int64_t now,
		 struct acct *out);

/* A page of accounts with id > after, in id order, at most limit (1..);
 * state NULL: all states. *rows (acctdb_rows_free) holds *n of them;
 * *more is true when further rows exist. */
int acctdb_list(struct acctdb *db, const enum acct_state *state,
		int64_t after, int limit, int64_t now, struct acct **rows,
		size_t *n, bool *more);
void acctdb_rows_free(struct acct *rows, size_t n);

/* A new invited account. -EEXIST when the phone (or token hash) exists. */
struct acctdb_new_account {
	const char *phone;
	const char *name;        /* NULL: "" */
	const char *fields;      /* JSON text or NULL */
	const char *token_hash;
	int64_t token_expires_at;
};
int acctdb_insert(struct acctdb *db, const struct acctdb_new_account *na,
		  int64_t now, int64_t *id);

/* Accounts created in (since, ...]: how many, and the oldest's time (0
 * when none): the rolling daily cap. */
int acctdb_created_since(struct acctdb *db, int64_t since, int64_t *count,
			 int64_t *oldest);

/* Claim SMS of an account in (since, ...]: count and oldest time. */
int acctdb_claim_sms_since(struct acctdb *db, int64_t id, int64_t since,
			   int64_t *count, int64_t *oldest);
/* Logs a claim SMS, and forgets this account's older than a day. */
int acctdb_claim_sms_add(struct acctdb *db, int64_t id, int64_t sms_id,
			 int64_t now);

/* name NULL keeps it; set_fields false keeps fields (fields NULL clears). */
int acctdb_update_profile(struct acctdb *db, int64_t id, const char *name,
			  bool set_fields, const char *fields, int64_t now);

/* A new claim token for an invited account. */
int acctdb_set_token(struct acctdb *db, int64_t id, const char *token_hash,
		     int64_t expires_at, int64_t now);

/* invited -> active: password and recovery code set, token burned. */
int acctdb_claim(struct acctdb *db, int64_t id, const char *password_hash,
		 const char *recovery_hash, int64_t now);

/* active -> invited: password and recovery code cleared, session_epoch
 * + 1, a new token. */
int acctdb_unclaim(struct acctdb *db, int64_t id, const char *token_hash,
		   int64_t expires_at, int64_t now);

/* -> deactivated, remembering `from`; sessions end (session_epoch + 1). */
int acctdb_deactivate(struct acctdb *db, int64_t id, enum acct_state from,
		      int64_t now);
/* deactivated -> its previous state. */
int acctdb_reactivate(struct acctdb *db, int64_t id, int64_t now);

/* A new recovery code hash (the old one stops working). */
int acctdb_set_recovery(struct acctdb *db, int64_t id,
			const char *recovery_hash, int64_t now);

/* Recovery: new password, code burned, session_epoch + 1 when logout. */
int acctdb_reset_password(struct acctdb *db, int64_t id,
			  const char *password_hash, bool logout, int64_t now);

/* A rehash at a new cost: replaces the hash only if it is still `old`. */
int acctdb_rehash(struct acctdb *db, int64_t id, const char *old,
		  const char *password_hash);

/* Throttles: failures of kind "login" / "recovery" for key (E.164). */
int acctdb_failures_since(struct acctdb *db, const char *kind,
			  const char *key, int64_t since, int64_t *count,
			  int64_t *oldest);
/* Logs one failure; also forgets every failure older than `expire`. */
int acctdb_failure_add(struct acctdb *db, const char *kind, const char *key,
		       int64_t now, int64_t expire);
int acctdb_failures_clear(struct acctdb *db, const char *kind,
			  const char *key);

#endif
