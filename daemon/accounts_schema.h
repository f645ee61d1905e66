/* accounts_schema — the accounts module's tables, as store migrations.
 *
 * daemon/store.c keeps the one ordered list of migrations (PRAGMA
 * user_version counts them); it includes this header and appends
 *	{ "accounts", ACCOUNTS_SCHEMA_V1 },
 * after its own first entry. Like every released migration, this text is
 * never edited once shipped: a change is a new ACCOUNTS_SCHEMA_V2.
 *
 * Times are ms since the epoch (store.h). Every hot query has an index:
 *   by phone          accounts.phone UNIQUE (implicit index)
 *   by claim token    accounts.claim_token_hash UNIQUE (implicit index)
 *   list by state     accounts_state (state, id)
 *   daily invite cap  accounts_created (created_at)
 *   claim SMS 24 h    account_claim_sms (account_id, at)
 *   throttles         account_failure (kind, key, at) and (at) for pruning
 */
#ifndef SMSGW_ACCOUNTS_SCHEMA_H
#define SMSGW_ACCOUNTS_SCHEMA_H

#define ACCOUNTS_SCHEMA_V1 \
	/* One row per phone account. phone: E.164, never updated. fields: \
	 * a JSON object of extra admin fields, or NULL. prev_state: the \
	 * state to restore on reactivate. Hashes: argon2id strings \
	 * (password, recovery code) and hex BLAKE2b-256 (claim token); NULL \
	 * when there is none. */ \
	"CREATE TABLE accounts (\n" \
	"  id INTEGER PRIMARY KEY,\n" \
	"  phone TEXT NOT NULL UNIQUE,\n" \
	"  name TEXT NOT NULL DEFAULT '',\n" \
	"  fields TEXT,\n" \
	"  state TEXT NOT NULL CHECK (state IN ('invited', 'active'," \
	" 'deactivated')),\n" \
	"  prev_state TEXT CHECK (prev_state IN ('invited', 'active')),\n" \
	"  password_hash TEXT,\n" \
	"  session_epoch INTEGER NOT NULL DEFAULT 0,\n" \
	"  claim_token_hash TEXT UNIQUE,\n" \
	"  claim_token_expires_at INTEGER,\n" \
	"  recovery_code_hash TEXT,\n" \
	"  created_at INTEGER NOT NULL,\n" \
	"  claimed_at INTEGER,\n" \
	"  updated_at INTEGER NOT NULL,\n" \
	"  CHECK ((state = 'deactivated') = (prev_state IS NOT NULL))\n" \
	");\n" \
	"CREATE INDEX accounts_state ON accounts (state, id);\n" \
	"CREATE INDEX accounts_created ON accounts (created_at);\n" \
	/* Every claim SMS (invite, resend, unclaim) for the rolling 24 h \
	 * limit per account. */ \
	"CREATE TABLE account_claim_sms (\n" \
	"  account_id INTEGER NOT NULL REFERENCES accounts (id)" \
	" ON DELETE CASCADE,\n" \
	"  at INTEGER NOT NULL,\n" \
	"  sms_id INTEGER NOT NULL\n" \
	");\n" \
	"CREATE INDEX account_claim_sms_at ON account_claim_sms" \
	" (account_id, at);\n" \
	/* Wrong passwords (kind 'login') and wrong recovery codes \
	 * ('recovery'), keyed by E.164 phone whether or not an account \
	 * has it, so that throttling reveals nothing. Kept one hour. */ \
	"CREATE TABLE account_failure (\n" \
	"  kind TEXT NOT NULL CHECK (kind IN ('login', 'recovery')),\n" \
	"  key TEXT NOT NULL,\n" \
	"  at INTEGER NOT NULL\n" \
	");\n" \
	"CREATE INDEX account_failure_key ON account_failure" \
	" (kind, key, at);\n" \
	"CREATE INDEX account_failure_at ON account_failure (at);\n"

#endif
