/* accounts — see accounts.h.
 *
 * Every op runs on the loop thread. The synchronous ones (settings.*,
 * invite, get, list, update, resend, unclaim, deactivate, reactivate) do
 * their checks and writes in one store transaction and answer before
 * returning. The ones that hash (claim, login, recovery_code,
 * recovery_reset) validate what is cheap, hand argon2id to the hasher's
 * worker threads, and answer from the hasher's callback on the loop; the
 * transaction that depends on the hash re-reads the account then, since
 * anything may have happened meanwhile.
 *
 * Unknown phones: login, recovery_code and recovery_reset run a verify
 * against the hasher's dummy hash, count the failure under the phone
 * number, and answer with the same code and message as a wrong secret, so
 * neither the answer nor its timing nor the throttle tells whether the
 * number has an account.
 *
 * Secrets: tokens, codes and passwords live in buffers wiped after use;
 * they reach no log, no error message and no audit entry. The SMS texts
 * that carry them go to the outbox (see the report: the outbox stores the
 * text it was given). */
#include "daemon/accounts.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include "config/config.h"
#include "daemon/acctdb.h"
#include "daemon/ctl.h"
#include "daemon/hasher.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/phone.h"
#include "daemon/secret.h"
#include "daemon/store.h"

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define NAME_MAX_CHARS 100
#define FIELDS_MAX_BYTES 4096
#define INVITE_MANY_MAX 1000
#define HASH_QUEUE_MAX 64
#define SMS_TEXT_MAX 2048
#define MSG_MAX 256

#define SETTING_PHONE_PROFILES "phone_profiles"
#define SETTING_DOMAIN_VERIFIED "domain_verified"

struct accounts {
	struct store *store;
	struct outbox *outbox;
	const struct config *cfg;
	struct acctdb *db;
	struct hasher *hasher;
	enum config_pwhash level;   /* the hasher's, fixed until restart */
	int threads;
	bool closing;               /* accounts_free() is cancelling jobs */
};

/* --- small helpers ----------------------------------------------------------- */

/* hash_threads = 0: one fewer than the CPUs we may run on, at least 1, so a
 * core stays free for the event loop while passwords hash. */
static unsigned hash_threads(int configured)
{
	cpu_set_t set;
	int n;

	if (configured > 0)
		return (unsigned)configured;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set) - 1;
	return n < 1 ? 1 : (unsigned)n;
}

static const char *iso(int64_t ms, char buf[STORE_ISO_MAX])
{
	return store_time_iso(ms, buf);
}

/* Replies `unavailable` for a store or hasher error and logs the
 * unexpected ones once. */
static void reply_unavailable(struct ctl_req *req, int r)
{
	if (r == -EAGAIN) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "busy, try again");
		return;
	}
	if (r == -ECANCELED || r == -ESHUTDOWN) {
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "shutting down");
		return;
	}
	if (!store_error_unavailable(r))
		log_err("accounts: %s: unexpected error: %s", ctl_req_op(req),
			strerror(-r));
	ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "the store is unavailable: %s",
		      strerror(-r));
}

/* A write that failed: a text the SMS could not carry (err says why) is
 * the caller's mistake, anything else the store's. */
static void reply_failure(struct ctl_req *req, int r, const char *err)
{
	if (r == -EINVAL || r == -E2BIG)
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "%s", err);
	else
		reply_unavailable(req, r);
}

static int audit(struct accounts *a, struct ctl_req *req, int64_t account_id,
		 json_t *detail)
{
	int r = store_audit_add(a->store, (long)ctl_req_peer_uid(req),
				ctl_role_name(ctl_req_role(req)),
				ctl_req_op(req), account_id, detail, NULL);

	json_decref(detail);
	return r;
}

/* The DESIGN's `account` object. Never a hash, token or code. */
static json_t *account_json(const struct acct *ac)
{
	char created[STORE_ISO_MAX], claimed[STORE_ISO_MAX];
	json_t *o;

	o = json_pack("{sI ss ss ss ss so sI sI}", "id", (json_int_t)ac->id,
		      "phone", ac->phone, "name", ac->name, "state",
		      acctdb_state_name(ac->state), "created_at",
		      iso(ac->created_at, created), "claimed_at",
		      ac->claimed_at ? json_string(iso(ac->claimed_at, claimed))
				     : json_null(),
		      "session_epoch", (json_int_t)ac->session_epoch,
		      "claim_sms_sent_24h", (json_int_t)ac->claim_sms_24h);
	if (o && ac->fields) {
		json_t *f = json_loads(ac->fields, 0, NULL);

		if (f)
			json_object_set_new(o, "fields", f);
	}
	return o;
}

static bool setting_bool(struct accounts *a, const char *key)
{
	char *v = NULL;
	bool on;

	if (store_setting_get(a->store, key, &v) < 0)
		return false;
	on = strcmp(v, "true") == 0;
	free(v);
	return on;
}

static int64_t invite_cap(struct accounts *a)
{
	return setting_bool(a, SETTING_DOMAIN_VERIFIED)
		       ? a->cfg->accounts.invites_per_day_verified
		       : a->cfg->accounts.invites_per_day;
}

/* --- arguments ------------------------------------------------------------------ */

enum arg_type { ARG_STRING, ARG_OBJECT, ARG_OBJECT_OR_NULL, ARG_BOOL,
		ARG_INT, ARG_ARRAY };

struct arg_spec {
	const char *name;
	enum arg_type type;
	bool required;
};

static const char *const arg_type_names[] = {
	[ARG_STRING] = "a string", [ARG_OBJECT] = "an object",
	[ARG_OBJECT_OR_NULL] = "an object or null", [ARG_BOOL] = "a boolean",
	[ARG_INT] = "an integer", [ARG_ARRAY] = "an array",
};

static bool arg_type_ok(const json_t *v, enum arg_type t)
{
	switch (t) {
	case ARG_STRING: return json_is_string(v);
	case ARG_OBJECT: return json_is_object(v);
	case ARG_OBJECT_OR_NULL: return json_is_object(v) || json_is_null(v);
	case ARG_BOOL: return json_is_boolean(v);
	case ARG_INT: return json_is_integer(v);
	case ARG_ARRAY: return json_is_array(v);
	}
	return false;
}

/* Checks args against spec (n entries): known keys only, right types,
 * required ones present. On failure writes the reason to msg. */
static bool args_valid(json_t *args, const struct arg_spec *spec, size_t n,
		       char *msg, size_t msglen)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		size_t i;

		for (i = 0; i < n && strcmp(key, spec[i].name) != 0; i++)
			;
		if (i == n) {
			snprintf(msg, msglen, "unknown argument \"%.64s\"", key);
			return false;
		}
		if (!arg_type_ok(v, spec[i].type)) {
			snprintf(msg, msglen, "\"%s\" must be %s", key,
				 arg_type_names[spec[i].type]);
			return false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (spec[i].required && !json_object_get(args, spec[i].name)) {
			snprintf(msg, msglen, "\"%s\" is required",
				 spec[i].name);
			return false;
		}
	}
	return true;
}

/* args_valid(), answering bad_request itself when they are not. */
static bool args_check(struct ctl_req *req, json_t *args,
		       const struct arg_spec *spec, size_t n)
{
	char msg[MSG_MAX];

	if (args_valid(args, spec, n, msg, sizeof(msg)))
		return true;
	ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "%s", msg);
	return false;
}

#define ARGS_CHECK(req, args, spec) \
	args_check(req, args, spec, sizeof(spec) / sizeof(spec[0]))

static const char *arg_str(json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

/* Normalizes args.phone; answers invalid_phone itself on failure. */
static bool arg_phone(struct ctl_req *req, json_t *args,
		      char out[PHONE_E164_MAX])
{
	const char *why = NULL;

	if (phone_normalize(arg_str(args, "phone"), out, &why) == 0)
		return true;
	ctl_reply_err(req, CTL_ERR_INVALID_PHONE, "phone: %s", why);
	return false;
}

/* Counts UTF-8 characters; control characters make it -1. */
static long text_chars(const char *s)
{
	long n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return -1;
		if ((*p & 0xc0) != 0x80)
			n++;
	}
	return n;
}

/* Validates a name and a fields object for storage; *fields_text is
 * malloc'd JSON (NULL for null/absent). msg gets the reason. */
static bool profile_valid(json_t *name, json_t *fields, char **fields_text,
			  char *msg, size_t msglen)
{
	long chars = name ? text_chars(json_string_value(name)) : 0;

	*fields_text = NULL;
	if (chars < 0 || chars > NAME_MAX_CHARS) {
		snprintf(msg, msglen, "name: at most %d characters, no control"
			 " characters", NAME_MAX_CHARS);
		return false;
	}
	if (!json_is_object(fields))
		return true;
	*fields_text = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
	if (*fields_text && strlen(*fields_text) <= FIELDS_MAX_BYTES)
		return true;
	snprintf(msg, msglen, "fields: at most %d bytes of JSON",
		 FIELDS_MAX_BYTES);
	free(*fields_text);
	*fields_text = NULL;
	return false;
}

/* --- SMS ------------------------------------------------------------------------ */

static const enum store_kind tmpl_store_kind[CONFIG_TMPL_COUNT] = {
	[CONFIG_TMPL_INVITE] = STORE_KIND_INVITE,
	[CONFIG_TMPL_RECOVERY] = STORE_KIND_RECOVERY,
	[CONFIG_TMPL_UNCLAIMED] = STORE_KIND_UNCLAIMED,
};

/* claim_url with {token} replaced (config guarantees exactly one). */
static int make_link(const struct config *cfg, const char *token, char *out,
		     size_t outlen)
{
	const char *url = cfg->accounts.claim_url;
	const char *at = strstr(url, "{token}");
	int n;

	if (!at)
		return -EINVAL;
	n = snprintf(out, outlen, "%.*s%s%s", (int)(at - url), url, token,
		     at + strlen("{token}"));
	return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

/* Renders template `kind` for the account's SMS into out. */
static int render(const struct config *cfg, enum config_template_kind kind,
		  const char *name, const char *token, const char *code,
		  char *out, size_t outlen)
{
	char link[1024] = "";
	struct config_template_vars v = {
		.org = cfg->accounts.organization,
		.name = name,
		.link = link,
		.code = code,
	};
	int r = token ? make_link(cfg, token, link, sizeof(link)) : 0;

	if (r == 0)
		r = config_template_render(config_template(cfg, NULL, kind), &v,
					   out, outlen);
	secret_wipe(link, sizeof(link));
	return r < 0 ? r : 0;
}

#define REDACTED "[redacted]"

/* Renders and queues an account SMS in the caller's transaction; the copy
 * admins can read (sms.get) shows REDACTED for the token or code. Returns
 * 0 with *sms_id, or -errno with the reason in err. */
static int queue_sms(struct accounts *a, const struct acct *ac,
		     enum config_template_kind kind, const char *token,
		     const char *code, int64_t *sms_id, char *err,
		     size_t errlen)
{
	char text[SMS_TEXT_MAX], shown[SMS_TEXT_MAX];
	struct outbox_queued q;
	int r;

	r = render(a->cfg, kind, ac->name, token, code, text, sizeof(text));
	if (r == 0)
		r = render(a->cfg, kind, ac->name, token ? REDACTED : NULL,
			   code ? REDACTED : NULL, shown, sizeof(shown));
	if (r < 0) {
		secret_wipe(text, sizeof(text));
		snprintf(err, errlen, "the %s template cannot be rendered: %s",
			 config_template_kind_name(kind), strerror(-r));
		return r;
	}
	r = outbox_queue_text(a->outbox, ac->phone, text, shown,
			      tmpl_store_kind[kind], ac->id, &q, err, errlen);
	secret_wipe(text, sizeof(text));
	if (r == 0)
		*sms_id = q.id;
	return r;
}

/* The claim SMS budget: 0 when one more may go out; 1 when not, with the
 * time the next one may in *next_at. */
static int claim_sms_blocked(struct accounts *a, const struct acct *ac,
			     int64_t now, int64_t *next_at)
{
	int64_t count = 0, oldest = 0;
	int r = acctdb_claim_sms_since(a->db, ac->id, now - DAY_MS, &count,
				       &oldest);

	if (r < 0)
		return r;
	if (count < a->cfg->accounts.claim_sms_per_day)
		return 0;
	*next_at = oldest + DAY_MS;
	return 1;
}

/* Queues a claim SMS (invite or unclaimed) with a fresh token already set
 * on the account, and logs it against the budget. */
static int send_claim_sms(struct accounts *a, const struct acct *ac,
			  enum config_template_kind kind, const char *token,
			  int64_t now, int64_t *sms_id, char *err,
			  size_t errlen)
{
	int r = queue_sms(a, ac, kind, token, NULL, sms_id, err, errlen);

	if (r == 0)
		r = acctdb_claim_sms_add(a->db, ac->id, *sms_id, now);
	return r;
}

static int64_t token_expiry(struct accounts *a, int64_t now)
{
	return now + (int64_t)a->cfg->accounts.claim_token_ttl_hours * HOUR_MS;
}

/* --- transactions ------------------------------------------------------------------ */

/* Ends the request's outermost transaction: commit when r == 0, else roll
 * back; the outbox announces or forgets its SMS accordingly. Returns the
 * commit's error or r. */
static int tx_end(struct accounts *a, int r)
{
	if (r == 0) {
		r = store_tx_commit(a->store);
		if (r == 0) {
			outbox_kick(a->outbox);
			return 0;
		}
	} else {
		store_tx_rollback(a->store);
	}
	outbox_rollback(a->outbox);
	return r;
}

/* Looks the account up by args.phone inside a new transaction. Answers
 * itself (invalid_phone, not_found, unavailable) and returns false on
 * failure, with no transaction left open. */
static bool tx_lookup(struct accounts *a, struct ctl_req *req, json_t *args,
		      int64_t now, struct acct *ac)
{
	char phone[PHONE_E164_MAX];
	int r;

	if (!arg_phone(req, args, phone))
		return false;
	r = store_tx_begin(a->store);
	if (r == 0)
		r = acctdb_by_phone(a->db, phone, now, ac);
	if (r == 0)
		return true;
	if (store_in_tx(a->store))
		store_tx_rollback(a->store);
	if (r == -ENOENT)
		ctl_reply_err(req, CTL_ERR_NOT_FOUND,
			      "no account has this phone number");
	else
		reply_unavailable(req, r);
	return false;
}

/* After the writes of a synchronous op: commit and answer with the
 * re-read account (plus sms_id when > 0), or answer the error. */
static void finish_account(struct accounts *a, struct ctl_req *req,
			   int64_t id, int64_t sms_id, int r, const char *err)
{
	struct acct ac;
	json_t *res;

	if (r == 0)
		r = tx_end(a, 0);
	else
		tx_end(a, r);
	if (r < 0) {
		reply_failure(req, r, err);
		return;
	}
	r = acctdb_by_id(a->db, id, store_now_ms(), &ac);
	if (r < 0) {
		reply_unavailable(req, r);
		return;
	}
	res = json_pack("{so}", "account", account_json(&ac));
	if (res && sms_id > 0)
		json_object_set_new(res, "sms_id", json_integer(sms_id));
	acct_clear(&ac);
	ctl_reply_ok(req, res);
}

/* --- settings ------------------------------------------------------------------ */

static json_t *settings_json(struct accounts *a)
{
	return json_pack("{sb sb}", SETTING_PHONE_PROFILES,
			 setting_bool(a, SETTING_PHONE_PROFILES),
			 SETTING_DOMAIN_VERIFIED,
			 setting_bool(a, SETTING_DOMAIN_VERIFIED));
}

static void op_settings_get(struct ctl_req *req, json_t *args, void *ctx)
{
	if (!args_check(req, args, NULL, 0))   /* takes no arguments */
		return;
	ctl_reply_ok(req, settings_json(ctx));
}

static void op_settings_set(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ SETTING_PHONE_PROFILES, ARG_BOOL, false },
		{ SETTING_DOMAIN_VERIFIED, ARG_BOOL, false },
	};
	struct accounts *a = ctx;
	const char *key;
	json_t *v;
	int r;

	if (!ARGS_CHECK(req, args, spec))
		return;
	if (json_object_size(args) == 0) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "nothing to set: give "
			      "phone_profiles and/or domain_verified");
		return;
	}
	r = store_tx_begin(a->store);
	json_object_foreach(args, key, v) {
		if (r == 0)
			r = store_setting_set(a->store, key,
					      json_is_true(v) ? "true" : "false");
	}
	if (r == 0)
		r = audit(a, req, 0, json_deep_copy(args));
	r = store_in_tx(a->store) ? tx_end(a, r) : r;
	if (r < 0) {
		reply_unavailable(req, r);
		return;
	}
	log_notice("accounts: settings changed by uid %ld",
		   (long)ctl_req_peer_uid(req));
	ctl_reply_ok(req, settings_json(a));
}

/* --- invite ------------------------------------------------------------------------ */

/* One invitation's outcome: ok, a per-person refusal, or a store error
 * that sinks the whole request. */
struct invite_result {
	enum ctl_err code;     /* when refused */
	char msg[MSG_MAX];
	int64_t account_id;
	int64_t sms_id;
};

/* The daily cap as one request sees it: today's new accounts are counted
 * once per request (an index range, so the count costs what the day has
 * invited), then kept up to date as its rows go in. Exact: the loop is
 * single-threaded and the request is one transaction. */
struct invite_budget {
	int64_t cap;
	bool counted;
	int64_t count;  /* new phone accounts in the last 24 h */
	int64_t oldest; /* the oldest of them */
};

/* 0: may insert; 1: refused (res filled). */
static int invite_allowed(struct accounts *a, const char *phone, int64_t now,
			  struct invite_budget *b, struct invite_result *res)
{
	char at[STORE_ISO_MAX];
	struct acct ex;
	int r = acctdb_by_phone(a->db, phone, now, &ex);

	if (r == 0) {
		acct_clear(&ex);
		res->code = CTL_ERR_ALREADY_EXISTS;
		snprintf(res->msg, sizeof(res->msg),
			 "an account with this phone number exists");
		return 1;
	}
	if (r != -ENOENT)
		return r;
	if (!b->counted) {
		r = acctdb_created_since(a->db, now - DAY_MS, &b->count,
					 &b->oldest);
		if (r < 0)
			return r;
		b->counted = true;
	}
	if (b->count < b->cap)
		return 0;
	res->code = CTL_ERR_DAILY_INVITE_LIMIT;
	snprintf(res->msg, sizeof(res->msg),
		 "%lld new phone accounts in 24 h is the limit; the next one "
		 "can be invited at %s", (long long)b->cap,
		 iso(b->oldest + DAY_MS, at));
	return 1;
}

/* Creates the account and queues its invite SMS, in a savepoint of the
 * caller's transaction. Returns 0 (res ids set), 1 (refused, nothing
 * written, res->code/msg), or -errno (res->msg says what). */
static int invite_one(struct accounts *a, struct ctl_req *req,
		      json_t *person, int64_t now, struct invite_budget *b,
		      struct invite_result *res)
{
	char phone[PHONE_E164_MAX], token[SECRET_TOKEN_MAX];
	char hash[SECRET_HASH_HEX], *fields = NULL;
	const char *why = NULL;
	struct acct ac = { 0 };
	int r;

	if (phone_normalize(arg_str(person, "phone"), phone, &why) < 0) {
		res->code = CTL_ERR_INVALID_PHONE;
		snprintf(res->msg, sizeof(res->msg), "phone: %s", why);
		return 1;
	}
	if (!profile_valid(json_object_get(person, "name"),
			   json_object_get(person, "fields"), &fields,
			   res->msg, sizeof(res->msg))) {
		res->code = CTL_ERR_BAD_REQUEST;
		return 1;
	}
	r = store_tx_begin(a->store);
	if (r < 0) {
		free(fields);
		return r;
	}
	r = invite_allowed(a, phone, now, b, res);
	if (r == 0)
		r = secret_token_new(token, hash);
	if (r == 0) {
		struct acctdb_new_account na = {
			phone, arg_str(person, "name"), fields, hash,
			token_expiry(a, now),
		};
		r = acctdb_insert(a->db, &na, now, &res->account_id);
	}
	if (r == 0)
		r = acctdb_by_id(a->db, res->account_id, now, &ac);
	if (r == 0)
		r = send_claim_sms(a, &ac, CONFIG_TMPL_INVITE, token, now,
				   &res->sms_id, res->msg, sizeof(res->msg));
	secret_wipe(token, sizeof(token));
	if (r == 0)
		r = audit(a, req, ac.id,
			  json_pack("{ss ss sI}", "phone", phone, "name",
				    ac.name, "sms_id", (json_int_t)res->sms_id));
	free(fields);
	acct_clear(&ac);
	if (r == -EEXIST) {   /* the UNIQUE index agrees with the lookup */
		res->code = CTL_ERR_ALREADY_EXISTS;
		snprintf(res->msg, sizeof(res->msg),
			 "an account with this phone number exists");
		r = 1;
	}
	if (r != 0) {
		store_tx_rollback(a->store);   /* the savepoint only */
		return r;
	}
	r = store_tx_commit(a->store);
	if (r == 0 && b->count++ == 0)
		b->oldest = now;
	if (r == 0)
		log_info("accounts: invited %s (account %lld) by uid %ld",
			 log_phone(LOG_LVL_INFO, phone,
				   (char[LOG_PHONE_MAX]){ 0 }),
			 (long long)res->account_id,
			 (long)ctl_req_peer_uid(req));
	return r;
}

static bool phone_profiles_on(struct accounts *a, struct ctl_req *req)
{
	if (setting_bool(a, SETTING_PHONE_PROFILES))
		return true;
	ctl_reply_err(req, CTL_ERR_PHONE_PROFILES_DISABLED,
		      "profile creation with a mobile number is off "
		      "(settings.set phone_profiles=true turns it on)");
	return false;
}

static const struct arg_spec invite_spec[] = {
	{ "phone", ARG_STRING, true },
	{ "name", ARG_STRING, false },
	{ "fields", ARG_OBJECT_OR_NULL, false },
};

static void op_invite(struct ctl_req *req, json_t *args, void *ctx)
{
	struct accounts *a = ctx;
	struct invite_result res = { 0 };
	int64_t now = store_now_ms();
	int r;

	if (!ARGS_CHECK(req, args, invite_spec) || !phone_profiles_on(a, req))
		return;
	r = store_tx_begin(a->store);
	if (r == 0)
		r = invite_one(a, req, args, now,
			       &(struct invite_budget){ .cap = invite_cap(a) },
			       &res);
	if (r == 1) {
		tx_end(a, -EPERM);
		ctl_reply_err(req, res.code, "%s", res.msg);
		return;
	}
	finish_account(a, req, res.account_id, res.sms_id, r, res.msg);
}

/* One row of invite_many's answer. */
static json_t *invite_row_json(struct accounts *a, json_t *person, int rc,
			       const struct invite_result *res)
{
	json_t *phone = json_object_get(person, "phone");
	json_t *row = json_pack("{sO sb}", "phone",
				phone ? phone : json_null(), "ok", rc == 0);
	struct acct ac;

	if (!row)
		return NULL;
	if (rc != 0) {
		json_object_set_new(row, "error",
				    ctl_error_object(res->code, "%s", res->msg));
		return row;
	}
	if (acctdb_by_id(a->db, res->account_id, store_now_ms(), &ac) == 0) {
		json_object_set_new(row, "account", account_json(&ac));
		acct_clear(&ac);
	}
	json_object_set_new(row, "sms_id", json_integer(res->sms_id));
	return row;
}

/* Invites every row in one transaction (a savepoint each); returns 0 and
 * the rows' results, or -errno (store) with nothing kept. */
static int invite_rows(struct accounts *a, struct ctl_req *req,
		       json_t *people, json_t *results, char *err,
		       size_t errlen)
{
	int64_t now = store_now_ms();
	struct invite_budget budget = { .cap = invite_cap(a) };
	size_t i;
	json_t *person;
	int r = store_tx_begin(a->store);

	json_array_foreach(people, i, person) {
		struct invite_result res = { 0 };
		char msg[MSG_MAX];
		int rc = 1;

		if (r < 0)
			break;
		if (!json_is_object(person)) {
			res.code = CTL_ERR_BAD_REQUEST;
			snprintf(res.msg, sizeof(res.msg), "not an object");
		} else if (!args_valid(person, invite_spec,
				       sizeof(invite_spec) /
					       sizeof(invite_spec[0]),
				       msg, sizeof(msg))) {
			res.code = CTL_ERR_BAD_REQUEST;
			snprintf(res.msg, sizeof(res.msg), "%s", msg);
		} else {
			rc = invite_one(a, req, person, now, &budget, &res);
		}
		if (rc < 0) {
			r = rc;
			snprintf(err, errlen, "%s", res.msg);
			break;
		}
		json_array_append_new(results,
				      invite_row_json(a, person, rc, &res));
	}
	return tx_end(a, r);
}

static void op_invite_many(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ "people", ARG_ARRAY, true },
	};
	struct accounts *a = ctx;
	json_t *people = json_object_get(args, "people");
	json_t *results;
	char err[MSG_MAX] = "";
	int r;

	if (!ARGS_CHECK(req, args, spec) || !phone_profiles_on(a, req))
		return;
	if (json_array_size(people) > INVITE_MANY_MAX) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "at most %d people per request", INVITE_MANY_MAX);
		return;
	}
	results = json_array();
	r = results ? invite_rows(a, req, people, results, err, sizeof(err))
		    : -ENOMEM;
	if (r < 0) {
		json_decref(results);
		if (r == -EINVAL || r == -E2BIG)
			ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
				      "nobody was invited: %s", err);
		else
			reply_unavailable(req, r);
		return;
	}
	ctl_reply_ok(req, json_pack("{so}", "results", results));
}

/* --- get, list, update --------------------------------------------------------------- */

static const struct arg_spec phone_spec[] = {
	{ "phone", ARG_STRING, true },
};

static void op_get(struct ctl_req *req, json_t *args, void *ctx)
{
	struct accounts *a = ctx;
	struct acct ac;

	if (!ARGS_CHECK(req, args, phone_spec) ||
	    !tx_lookup(a, req, args, store_now_ms(), &ac))
		return;
	store_tx_rollback(a->store);   /* read only */
	ctl_reply_ok(req, json_pack("{so}", "account", account_json(&ac)));
	acct_clear(&ac);
}

static void op_list(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ "state", ARG_STRING, false },
		{ "limit", ARG_INT, false },
		{ "after", ARG_INT, false },
	};
	struct accounts *a = ctx;
	enum acct_state st;
	const char *state = arg_str(args, "state");
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	json_int_t after = json_integer_value(json_object_get(args, "after"));
	struct acct *rows = NULL;
	size_t n = 0;
	bool more = false;
	json_t *list, *res;
	int r;

	if (!ARGS_CHECK(req, args, spec))
		return;
	if (state && acctdb_state_parse(state, &st) < 0) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "state: one of invited, "
			      "active, deactivated");
		return;
	}
	if (limit < 0 || limit > STORE_LIST_MAX || after < 0) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "limit: 1..%d; after: "
			      "an account id", STORE_LIST_MAX);
		return;
	}
	r = acctdb_list(a->db, state ? &st : NULL, after,
			limit ? (int)limit : STORE_LIST_DEFAULT, store_now_ms(),
			&rows, &n, &more);
	if (r < 0) {
		reply_unavailable(req, r);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, account_json(&rows[i]));
	res = json_pack("{so}", "accounts", list);
	if (res && more)
		json_object_set_new(res, "next", json_integer(rows[n - 1].id));
	acctdb_rows_free(rows, n);
	ctl_reply_ok(req, res);
}

static void op_update(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ "phone", ARG_STRING, true },
		{ "name", ARG_STRING, false },
		{ "fields", ARG_OBJECT_OR_NULL, false },
	};
	struct accounts *a = ctx;
	json_t *name = json_object_get(args, "name");
	json_t *fields = json_object_get(args, "fields");
	char msg[MSG_MAX], *text = NULL;
	struct acct ac;
	int r;

	if (json_object_get(args, "new_phone")) {
		ctl_reply_err(req, CTL_ERR_PHONE_IMMUTABLE,
			      "the phone number of an account never changes; "
			      "invite the new number as a new account");
		return;
	}
	if (!ARGS_CHECK(req, args, spec))
		return;
	if (!name && !fields) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST,
			      "nothing to update: give name and/or fields");
		return;
	}
	if (!profile_valid(name, fields, &text, msg, sizeof(msg))) {
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "%s", msg);
		return;
	}
	if (!tx_lookup(a, req, args, store_now_ms(), &ac)) {
		free(text);
		return;
	}
	r = acctdb_update_profile(a->db, ac.id, json_string_value(name),
				  fields != NULL, text, store_now_ms());
	if (r == 0)
		r = audit(a, req, ac.id,
			  json_pack("{sO* sO*}", "name", name, "fields",
				    fields));
	free(text);
	finish_account(a, req, ac.id, 0, r, "");
	acct_clear(&ac);
}

/* --- resend, unclaim, deactivate, reactivate ----------------------------------------- */

/* Answers wrong_state unless the account is in `want`; returns whether
 * it is. Leaves the caller's transaction to the caller. */
static bool state_is(struct ctl_req *req, const struct acct *ac,
		     enum acct_state want)
{
	static const char *const why[ACCT_STATE_COUNT] = {
		[ACCT_INVITED] = "the account is invited (not claimed yet)",
		[ACCT_ACTIVE] = "the account is active (claimed)",
		[ACCT_DEACTIVATED] = "the account is deactivated",
	};

	if (ac->state == want)
		return true;
	ctl_reply_err(req, CTL_ERR_WRONG_STATE, "%s; this needs it %s",
		      why[ac->state], acctdb_state_name(want));
	return false;
}

/* Answers claim_sms_limit when the budget is spent; true if one may go. */
static bool claim_budget(struct accounts *a, struct ctl_req *req,
			 const struct acct *ac, int64_t now)
{
	char at[STORE_ISO_MAX];
	int64_t next_at = 0;
	int r = claim_sms_blocked(a, ac, now, &next_at);

	if (r == 0)
		return true;
	if (r < 0) {
		reply_unavailable(req, r);
		return false;
	}
	ctl_reply_err(req, CTL_ERR_CLAIM_SMS_LIMIT,
		      "this account got %d claim SMS in the last 24 h; the "
		      "next one can be sent at %s",
		      a->cfg->accounts.claim_sms_per_day,
		      iso(next_at, at));
	return false;
}

/* How resend and unclaim differ: the state they start from, the update
 * that puts a fresh claim token in place, and the SMS that carries it. */
struct reissue {
	enum acct_state from;
	int (*update)(struct acctdb *db, int64_t id, const char *token_hash,
		      int64_t expires_at, int64_t now);
	enum config_template_kind tmpl;
};

#define REISSUE_ANSWERED 1 /* refused, req answered, transaction ended */

/* Gives the account in args a fresh claim token and queues the SMS with its
 * link, audited, in the transaction tx_lookup() opened. Returns 0 or -errno
 * with that transaction still open (the caller ends it), or
 * REISSUE_ANSWERED. */
static int reissue_claim(struct accounts *a, struct ctl_req *req,
			 json_t *args, const struct reissue *how,
			 struct acct *ac, int64_t *sms_id, char *err,
			 size_t errlen)
{
	char token[SECRET_TOKEN_MAX], hash[SECRET_HASH_HEX];
	int64_t now = store_now_ms();
	int r;

	if (!ARGS_CHECK(req, args, phone_spec) ||
	    !tx_lookup(a, req, args, now, ac))
		return REISSUE_ANSWERED;
	if (!state_is(req, ac, how->from) || !claim_budget(a, req, ac, now)) {
		tx_end(a, -EPERM);
		acct_clear(ac);
		return REISSUE_ANSWERED;
	}
	r = secret_token_new(token, hash);
	if (r == 0)
		r = how->update(a->db, ac->id, hash, token_expiry(a, now), now);
	if (r == 0)
		r = send_claim_sms(a, ac, how->tmpl, token, now, sms_id, err,
				   errlen);
	secret_wipe(token, sizeof(token));
	if (r == 0)
		r = audit(a, req, ac->id, json_pack("{sI}", "sms_id",
						    (json_int_t)*sms_id));
	return r;
}

static void op_resend(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct reissue how = { ACCT_INVITED, acctdb_set_token,
					    CONFIG_TMPL_INVITE };
	struct accounts *a = ctx;
	char err[MSG_MAX] = "";
	int64_t sms_id = 0;
	struct acct ac;
	int r = reissue_claim(a, req, args, &how, &ac, &sms_id, err,
			      sizeof(err));

	if (r == REISSUE_ANSWERED)
		return;
	r = tx_end(a, r);
	acct_clear(&ac);
	if (r < 0) {
		reply_failure(req, r, err);
		return;
	}
	ctl_reply_ok(req, json_pack("{sI}", "sms_id", (json_int_t)sms_id));
}

static void op_unclaim(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct reissue how = { ACCT_ACTIVE, acctdb_unclaim,
					    CONFIG_TMPL_UNCLAIMED };
	struct accounts *a = ctx;
	char err[MSG_MAX] = "";
	int64_t sms_id = 0;
	struct acct ac;
	int r = reissue_claim(a, req, args, &how, &ac, &sms_id, err,
			      sizeof(err));

	if (r == REISSUE_ANSWERED)
		return;
	if (r == 0) {
		char buf[LOG_PHONE_MAX];

		log_info("accounts: %s unclaimed by uid %ld",
			 log_phone(LOG_LVL_INFO, ac.phone, buf),
			 (long)ctl_req_peer_uid(req));
	}
	finish_account(a, req, ac.id, sms_id, r, err);
	acct_clear(&ac);
}

static void op_deactivate(struct ctl_req *req, json_t *args, void *ctx)
{
	struct accounts *a = ctx;
	int64_t now = store_now_ms();
	struct acct ac;
	int r;

	if (!ARGS_CHECK(req, args, phone_spec) ||
	    !tx_lookup(a, req, args, now, &ac))
		return;
	if (ac.state == ACCT_DEACTIVATED) {
		state_is(req, &ac, ACCT_ACTIVE);
		tx_end(a, -EPERM);
		acct_clear(&ac);
		return;
	}
	r = acctdb_deactivate(a->db, ac.id, ac.state, now);
	if (r == 0)
		r = audit(a, req, ac.id, json_pack("{ss}", "from",
						   acctdb_state_name(ac.state)));
	finish_account(a, req, ac.id, 0, r, "");
	acct_clear(&ac);
}

static void op_reactivate(struct ctl_req *req, json_t *args, void *ctx)
{
	struct accounts *a = ctx;
	int64_t now = store_now_ms();
	struct acct ac;
	int r;

	if (!ARGS_CHECK(req, args, phone_spec) ||
	    !tx_lookup(a, req, args, now, &ac))
		return;
	if (!state_is(req, &ac, ACCT_DEACTIVATED)) {
		tx_end(a, -EPERM);
		acct_clear(&ac);
		return;
	}
	r = acctdb_reactivate(a->db, ac.id, now);
	if (r == 0)
		r = audit(a, req, ac.id, json_pack("{ss}", "to",
						   acctdb_state_name(ac.prev_state)));
	finish_account(a, req, ac.id, 0, r, "");
	acct_clear(&ac);
}

/* --- claim, login, recovery: the ops that hash ------------------------------------- */

enum job_op { JOB_CLAIM, JOB_LOGIN, JOB_NEW_CODE, JOB_RESET, JOB_REHASH };

/* One request waiting for the hasher. Owned by the hasher callbacks while
 * pending > 0; the last one runs the op's next step, which frees it. */
struct job {
	struct accounts *a;
	struct ctl_req *req;       /* NULL for a background rehash */
	enum job_op op;
	int64_t account_id;        /* 0: no account to check (dummy verify) */
	char phone[PHONE_E164_MAX];
	char *verified;            /* the hash the secret matched: re-checked
				      in the transaction that acts on it */
	bool deactivated;          /* verified against a deactivated account */
	bool logout;               /* recovery_reset: logout_other_devices */
	char *secret;              /* a password to hash after the verify
				      (reset: the new one; login: for a
				      rehash); wiped */
	size_t secret_len;
	char code[SECRET_CODE_LEN + 1];   /* a new recovery code; wiped */
	char token_hash[SECRET_HASH_HEX]; /* claim */
	char *password_hash;       /* results of hashing */
	char *code_hash;
	int pending;               /* hasher callbacks still due */
	int status;                /* the first hasher error */
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->secret) {
		secret_wipe(j->secret, j->secret_len);
		free(j->secret);
	}
	secret_wipe(j->code, sizeof(j->code));
	free(j->verified);
	free(j->password_hash);
	free(j->code_hash);
	free(j);
}

static struct job *job_new(struct accounts *a, struct ctl_req *req,
			   enum job_op op, const char *phone)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->a = a;
	j->req = req;
	j->op = op;
	if (phone)
		snprintf(j->phone, sizeof(j->phone), "%s", phone);
	return j;
}

static int job_keep_secret(struct job *j, const char *secret)
{
	j->secret_len = strlen(secret);
	j->secret = malloc(j->secret_len + 1);
	if (!j->secret)
		return -ENOMEM;
	memcpy(j->secret, secret, j->secret_len + 1);
	return 0;
}

/* Ends a job that cannot go on, answering `unavailable`. */
static void job_abort(struct job *j, int r)
{
	if (j->req)
		reply_unavailable(j->req, r);
	job_free(j);
}

/* A job that could not be created or started: answers for it. */
static void job_start_failed(struct ctl_req *req, struct job *j, int r)
{
	if (j)
		job_abort(j, r);
	else
		reply_unavailable(req, r);
}

static void claim_hashed(struct job *j);
static void login_verified(struct job *j, bool match);
static void newcode_verified(struct job *j, bool match);
static void newcode_hashed(struct job *j);
static void reset_verified(struct job *j, bool match);
static void reset_hashed(struct job *j);
static void rehash_hashed(struct job *j);

/* What each op does once its verify matched (or not), and once its
 * hashes are all back. */
static const struct {
	void (*verified)(struct job *j, bool match);
	void (*hashed)(struct job *j);
} flows[] = {
	[JOB_CLAIM] = { NULL, claim_hashed },
	[JOB_LOGIN] = { login_verified, NULL },
	[JOB_NEW_CODE] = { newcode_verified, newcode_hashed },
	[JOB_RESET] = { reset_verified, reset_hashed },
	[JOB_REHASH] = { NULL, rehash_hashed },
};

static void job_hash_done(struct job *j, char **slot, int status,
			  const char *hash)
{
	if (status == 0 && !(*slot = strdup(hash)))
		status = -ENOMEM;
	if (status != 0 && j->status == 0)
		j->status = status;
	if (--j->pending > 0)
		return;
	if (j->status != 0 || j->a->closing)
		job_abort(j, j->status ? j->status : -ECANCELED);
	else
		flows[j->op].hashed(j);
}

static void on_password_hash(int status, const char *hash, void *ud)
{
	struct job *j = ud;

	job_hash_done(j, &j->password_hash, status, hash);
}

static void on_code_hash(int status, const char *hash, void *ud)
{
	struct job *j = ud;

	job_hash_done(j, &j->code_hash, status, hash);
}

static void on_verified(int status, void *ud)
{
	struct job *j = ud;

	j->pending--;
	if ((status != 0 && status != -EACCES) || j->a->closing)
		job_abort(j, status ? status : -ECANCELED);
	else
		flows[j->op].verified(j, status == 0);
}

static int job_hash(struct job *j, const char *secret, size_t len,
		    hasher_hash_cb *cb)
{
	int r = hasher_hash(j->a->hasher, secret, len, cb, j);

	if (r == 0)
		j->pending++;
	return r;
}

/* Verifies secret against hash (NULL: the dummy, which never matches). */
static int job_verify(struct job *j, const char *hash, const char *secret)
{
	int r = hasher_verify(j->a->hasher, hash, secret, strlen(secret),
			      on_verified, j);

	if (r == 0)
		j->pending++;
	return r;
}

/* --- throttles --- */

static const char *const fail_kind[] = {
	[JOB_LOGIN] = "login",
	[JOB_NEW_CODE] = "login",
	[JOB_RESET] = "recovery",
};

/* 0: not locked; 1: locked until *until; -errno. */
static int throttled(struct accounts *a, const char *kind, const char *phone,
		     int max, int64_t now, int64_t *until, int64_t *count)
{
	int64_t oldest = 0;
	int r = acctdb_failures_since(a->db, kind, phone, now - HOUR_MS, count,
				      &oldest);

	if (r < 0)
		return r;
	if (*count < max)
		return 0;
	*until = oldest + HOUR_MS;
	return 1;
}

/* Answers the lock and returns true when phone's `kind` is locked. The
 * unlock time is when the oldest counted failure leaves the hour. */
static bool locked(struct accounts *a, struct ctl_req *req, enum job_op op,
		   const char *phone, int64_t now)
{
	char at[STORE_ISO_MAX];
	bool recovery = op == JOB_RESET;
	int max = recovery ? a->cfg->accounts.recovery_attempts
			   : a->cfg->accounts.login_attempts;
	int64_t until = 0, count = 0;
	int r = throttled(a, fail_kind[op], phone, max, now, &until, &count);

	if (r == 0)
		return false;
	if (r < 0)
		reply_unavailable(req, r);
	else if (recovery)
		ctl_reply_err(req, CTL_ERR_RECOVERY_LOCKED,
			      "recovery is locked after %d wrong codes in an "
			      "hour; it unlocks at %s", max, iso(until, at));
	else
		ctl_reply_err(req, CTL_ERR_LOGIN_LOCKED,
			      "too many wrong passwords for this number; try "
			      "again at %s", iso(until, at));
	return true;
}

/* A wrong secret (or an unknown number): counts it, audits it, answers.
 * The answer is the same whether the number has an account or not. */
static void auth_failed(struct job *j)
{
	struct accounts *a = j->a;
	bool recovery = j->op == JOB_RESET;
	int64_t now = store_now_ms(), until = 0, count = 0;
	int max = a->cfg->accounts.recovery_attempts;
	int r = store_tx_begin(a->store);

	if (r == 0)
		r = acctdb_failure_add(a->db, fail_kind[j->op], j->phone, now,
				       now - HOUR_MS);
	if (r == 0)
		r = audit(a, j->req, j->account_id,
			  json_pack("{ss ss}", "phone", j->phone, "result",
				    recovery ? "invalid_code"
					     : "invalid_password"));
	if (r == 0 && recovery) {
		int t = throttled(a, "recovery", j->phone, max, now, &until,
				  &count);
		r = t < 0 ? t : 0;
	}
	r = tx_end(a, r);
	if (r < 0)
		reply_unavailable(j->req, r);
	else if (!recovery)
		ctl_reply_err(j->req, CTL_ERR_INVALID_PASSWORD,
			      "wrong phone number or password");
	else if (count < max)
		ctl_reply_err(j->req, CTL_ERR_INVALID_CODE,
			      "wrong recovery code; %lld more wrong codes "
			      "lock recovery for an hour",
			      (long long)(max - count));
	else
		ctl_reply_err(j->req, CTL_ERR_INVALID_CODE,
			      "wrong recovery code; recovery is now locked "
			      "for an hour");
	job_free(j);
}

/* Re-reads a job's account in a new transaction and checks that it is
 * still what the verify was about: active, with `verified` as its
 * password (recovery false) or recovery code hash (true). Returns 0 with
 * the transaction open and *ac filled; 1 when the account changed
 * meanwhile, or -errno; nothing is left open then. */
static int job_reload(struct job *j, bool recovery, int64_t now,
		      struct acct *ac)
{
	const char *cur;
	int r = store_tx_begin(j->a->store);

	if (r == 0)
		r = acctdb_by_id(j->a->db, j->account_id, now, ac);
	if (r < 0) {
		tx_end(j->a, r);
		return r == -ENOENT ? 1 : r;
	}
	cur = recovery ? ac->recovery_hash : ac->password_hash;
	if (ac->state == ACCT_ACTIVE && cur && j->verified &&
	    strcmp(cur, j->verified) == 0)
		return 0;
	acct_clear(ac);
	tx_end(j->a, -EPERM);
	return 1;
}

/* --- account.claim --- */

/* The account of a token may be claimed now; answers itself and returns
 * false when not. Checked before hashing and again after. */
static bool claim_state_ok(struct ctl_req *req, const struct acct *ac,
			   int64_t now)
{
	char at[STORE_ISO_MAX];

	if (ac->state == ACCT_DEACTIVATED) {
		ctl_reply_err(req, CTL_ERR_WRONG_STATE,
			      "the account is deactivated");
		return false;
	}
	if (ac->state != ACCT_INVITED || !ac->has_token) {
		ctl_reply_err(req, CTL_ERR_INVALID_TOKEN,
			      "unknown or already used claim link");
		return false;
	}
	if (ac->token_expires_at <= now) {
		ctl_reply_err(req, CTL_ERR_TOKEN_EXPIRED,
			      "this claim link expired at %s; ask for a new "
			      "one", iso(ac->token_expires_at, at));
		return false;
	}
	return true;
}

/* The password policy; answers weak_password and returns false. */
static bool password_ok(struct ctl_req *req, const char *password,
			const char *phone)
{
	const char *why = NULL;

	if (secret_password_check(password, phone, &why) == 0)
		return true;
	ctl_reply_err(req, CTL_ERR_WEAK_PASSWORD, "%s", why);
	return false;
}

/* Finds the account of a claim token; answers and returns false when it
 * is malformed, unknown, or the store fails. */
static bool claim_lookup(struct accounts *a, struct ctl_req *req,
			 const char *token, int64_t now,
			 char hash[SECRET_HASH_HEX], struct acct *ac)
{
	int r = secret_token_hash(token, hash);

	if (r == 0)
		r = acctdb_by_token(a->db, hash, now, ac);
	if (r == 0)
		return true;
	if (r == -EINVAL || r == -ENOENT)
		ctl_reply_err(req, CTL_ERR_INVALID_TOKEN,
			      "unknown or already used claim link");
	else
		reply_unavailable(req, r);
	return false;
}

static void op_claim(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ "token", ARG_STRING, true },
		{ "password", ARG_STRING, true },
	};
	struct accounts *a = ctx;
	const char *pw = arg_str(args, "password");
	char hash[SECRET_HASH_HEX];
	int64_t now = store_now_ms();
	struct acct ac;
	struct job *j;
	int r;

	if (!ARGS_CHECK(req, args, spec) ||
	    !claim_lookup(a, req, arg_str(args, "token"), now, hash, &ac))
		return;
	if (!claim_state_ok(req, &ac, now) || !password_ok(req, pw, ac.phone)) {
		acct_clear(&ac);
		return;
	}
	j = job_new(a, req, JOB_CLAIM, ac.phone);
	r = j ? secret_code_new(j->code) : -ENOMEM;
	if (r == 0) {
		j->account_id = ac.id;
		memcpy(j->token_hash, hash, sizeof(hash));
		r = job_hash(j, pw, strlen(pw), on_password_hash);
	}
	acct_clear(&ac);
	if (r < 0) {
		job_start_failed(req, j, r);
		return;
	}
	/* the password job is out: its callback answers if this fails */
	r = job_hash(j, j->code, SECRET_CODE_LEN, on_code_hash);
	if (r < 0)
		j->status = r;
}

/* The claim's transaction, once both hashes are back: the token must
 * still be this account's, unexpired. */
static void claim_hashed(struct job *j)
{
	struct accounts *a = j->a;
	char shown[SECRET_CODE_MAX], err[MSG_MAX] = "";
	int64_t now = store_now_ms(), sms_id = 0;
	struct acct ac;
	int r = store_tx_begin(a->store);

	if (r == 0)
		r = acctdb_by_token(a->db, j->token_hash, now, &ac);
	if (r == 0 && ac.id != j->account_id) {
		acct_clear(&ac);
		r = -ENOENT;
	}
	if (r == -ENOENT) {   /* claimed by a concurrent request */
		tx_end(a, r);
		ctl_reply_err(j->req, CTL_ERR_INVALID_TOKEN,
			      "unknown or already used claim link");
		job_free(j);
		return;
	}
	if (r < 0) {
		tx_end(a, r);
		job_abort(j, r);
		return;
	}
	if (!claim_state_ok(j->req, &ac, now)) {
		tx_end(a, -EPERM);
		acct_clear(&ac);
		job_free(j);
		return;
	}
	r = acctdb_claim(a->db, ac.id, j->password_hash, j->code_hash, now);
	secret_code_display(j->code, shown);
	if (r == 0)
		r = queue_sms(a, &ac, CONFIG_TMPL_RECOVERY, NULL, shown,
			      &sms_id, err, sizeof(err));
	secret_wipe(shown, sizeof(shown));
	if (r == 0)
		r = audit(a, j->req, ac.id,
			  json_pack("{sI}", "sms_id", (json_int_t)sms_id));
	if (r == 0) {
		char buf[LOG_PHONE_MAX];

		log_info("accounts: %s claimed",
			 log_phone(LOG_LVL_INFO, ac.phone, buf));
	}
	finish_account(a, j->req, ac.id, sms_id, r, err);
	acct_clear(&ac);
	job_free(j);
}

/* --- account.login, account.recovery_code --- */

/* Common start of the password-authenticated ops: throttle, lookup, and
 * a verify against the account's hash or, for a number without a usable
 * password, the dummy. */
static void auth_start(struct accounts *a, struct ctl_req *req, json_t *args,
		       enum job_op op)
{
	static const struct arg_spec spec[] = {
		{ "phone", ARG_STRING, true },
		{ "password", ARG_STRING, true },
	};
	const char *pw = arg_str(args, "password");
	char phone[PHONE_E164_MAX];
	int64_t now = store_now_ms();
	struct acct ac = { 0 };
	struct job *j;
	int r;

	if (!ARGS_CHECK(req, args, spec) || !arg_phone(req, args, phone) ||
	    locked(a, req, op, phone, now))
		return;
	r = acctdb_by_phone(a->db, phone, now, &ac);
	if (r < 0 && r != -ENOENT) {
		reply_unavailable(req, r);
		return;
	}
	j = job_new(a, req, op, phone);
	r = j ? 0 : -ENOMEM;
	if (r == 0 && ac.password_hash) {   /* active or deactivated */
		j->account_id = ac.id;
		j->deactivated = ac.state == ACCT_DEACTIVATED;
		j->verified = strdup(ac.password_hash);
		r = j->verified ? 0 : -ENOMEM;
		if (r == 0 && op == JOB_LOGIN &&
		    hasher_needs_rehash(a->hasher, ac.password_hash))
			r = job_keep_secret(j, pw);
	}
	if (r == 0)
		r = job_verify(j, j->verified, pw);
	acct_clear(&ac);
	if (r < 0)
		job_start_failed(req, j, r);
}

static void op_login(struct ctl_req *req, json_t *args, void *ctx)
{
	auth_start(ctx, req, args, JOB_LOGIN);
}

static void op_recovery_code(struct ctl_req *req, json_t *args, void *ctx)
{
	auth_start(ctx, req, args, JOB_NEW_CODE);
}

/* Answers wrong_state for a deactivated account whose secret matched
 * (only its owner learns the state) and returns true. */
static bool refuse_deactivated(struct job *j)
{
	if (!j->deactivated)
		return false;
	ctl_reply_err(j->req, CTL_ERR_WRONG_STATE,
		      "the account is deactivated");
	job_free(j);
	return true;
}

/* Starts a background rehash of a login's password at today's cost. */
static void rehash_start(struct job *login)
{
	struct job *j = job_new(login->a, NULL, JOB_REHASH, login->phone);

	if (!j)
		return;
	j->account_id = login->account_id;
	j->verified = login->verified;
	login->verified = NULL;
	if (job_hash(j, login->secret, login->secret_len, on_password_hash) <
	    0)
		job_free(j);   /* busy: the next login tries again */
}

static void rehash_hashed(struct job *j)
{
	int r = acctdb_rehash(j->a->db, j->account_id, j->verified,
			      j->password_hash);

	if (r < 0 && r != -ENOENT)
		log_warn("accounts: password rehash failed: %s", strerror(-r));
	job_free(j);
}

static void login_verified(struct job *j, bool match)
{
	struct accounts *a = j->a;
	struct acct ac;
	int r;

	if (!match) {
		auth_failed(j);
		return;
	}
	if (refuse_deactivated(j))
		return;
	r = job_reload(j, false, store_now_ms(), &ac);
	if (r == 1) {   /* unclaimed or reset meanwhile */
		auth_failed(j);
		return;
	}
	if (r < 0) {
		job_abort(j, r);
		return;
	}
	r = acctdb_failures_clear(a->db, "login", j->phone);
	if (r == 0)
		r = audit(a, j->req, ac.id, json_pack("{ss}", "result", "ok"));
	r = tx_end(a, r);
	if (r == 0)
		ctl_reply_ok(j->req,
			     json_pack("{sI sI}", "account_id",
				       (json_int_t)ac.id, "session_epoch",
				       (json_int_t)ac.session_epoch));
	acct_clear(&ac);
	if (r < 0) {
		job_abort(j, r);
		return;
	}
	if (j->secret)
		rehash_start(j);
	job_free(j);
}

static void newcode_verified(struct job *j, bool match)
{
	int r;

	if (!match) {
		auth_failed(j);
		return;
	}
	if (refuse_deactivated(j))
		return;
	r = secret_code_new(j->code);
	if (r == 0)
		r = job_hash(j, j->code, SECRET_CODE_LEN, on_code_hash);
	if (r < 0)
		job_abort(j, r);
}

static void newcode_hashed(struct job *j)
{
	struct accounts *a = j->a;
	char shown[SECRET_CODE_MAX];
	int64_t now = store_now_ms();
	struct acct ac;
	int r = job_reload(j, false, now, &ac);

	if (r == 1) {   /* unclaimed or reset meanwhile */
		auth_failed(j);
		return;
	}
	if (r < 0) {
		job_abort(j, r);
		return;
	}
	r = acctdb_set_recovery(a->db, ac.id, j->code_hash, now);
	if (r == 0)
		r = acctdb_failures_clear(a->db, "login", j->phone);
	if (r == 0)
		r = audit(a, j->req, ac.id, json_pack("{ss}", "result", "ok"));
	r = tx_end(a, r);
	acct_clear(&ac);
	if (r < 0) {
		job_abort(j, r);
		return;
	}
	secret_code_display(j->code, shown);
	ctl_reply_ok(j->req, json_pack("{ss}", "code", shown));
	secret_wipe(shown, sizeof(shown));
	job_free(j);
}

/* --- account.recovery_reset --- */

static void op_recovery_reset(struct ctl_req *req, json_t *args, void *ctx)
{
	static const struct arg_spec spec[] = {
		{ "phone", ARG_STRING, true },
		{ "code", ARG_STRING, true },
		{ "new_password", ARG_STRING, true },
		{ "logout_other_devices", ARG_BOOL, false },
	};
	struct accounts *a = ctx;
	char phone[PHONE_E164_MAX], code[SECRET_CODE_LEN + 1];
	int64_t now = store_now_ms();
	struct acct ac = { 0 };
	struct job *j;
	int r;

	if (!ARGS_CHECK(req, args, spec) || !arg_phone(req, args, phone))
		return;
	if (secret_code_normalize(arg_str(args, "code"), code) < 0) {
		ctl_reply_err(req, CTL_ERR_INVALID_CODE, "a recovery code is "
			      "10 letters and digits, like 7K3M9-QXD2P");
		return;
	}
	if (locked(a, req, JOB_RESET, phone, now) ||
	    !password_ok(req, arg_str(args, "new_password"), phone))
		goto out;
	r = acctdb_by_phone(a->db, phone, now, &ac);
	if (r < 0 && r != -ENOENT) {
		reply_unavailable(req, r);
		goto out;
	}
	j = job_new(a, req, JOB_RESET, phone);
	r = j ? job_keep_secret(j, arg_str(args, "new_password")) : -ENOMEM;
	if (r == 0) {
		j->logout = json_is_true(json_object_get(args,
							 "logout_other_devices"));
		if (ac.recovery_hash) {
			j->account_id = ac.id;
			j->deactivated = ac.state == ACCT_DEACTIVATED;
			j->verified = strdup(ac.recovery_hash);
			r = j->verified ? 0 : -ENOMEM;
		}
	}
	if (r == 0)
		r = job_verify(j, j->verified, code);
	if (r < 0)
		job_start_failed(req, j, r);
out:
	acct_clear(&ac);
	secret_wipe(code, sizeof(code));
}

static void reset_verified(struct job *j, bool match)
{
	int r;

	if (!match) {
		auth_failed(j);
		return;
	}
	if (refuse_deactivated(j))
		return;
	r = job_hash(j, j->secret, j->secret_len, on_password_hash);
	if (r < 0)
		job_abort(j, r);
}

static void reset_hashed(struct job *j)
{
	struct accounts *a = j->a;
	int64_t now = store_now_ms();
	struct acct ac;
	int r = job_reload(j, true, now, &ac);

	if (r == 1) {   /* the code was used or replaced meanwhile */
		ctl_reply_err(j->req, CTL_ERR_INVALID_CODE,
			      "this recovery code is no longer valid");
		job_free(j);
		return;
	}
	if (r < 0) {
		job_abort(j, r);
		return;
	}
	r = acctdb_reset_password(a->db, ac.id, j->password_hash, j->logout,
				  now);
	if (r == 0)
		r = acctdb_failures_clear(a->db, "recovery", j->phone);
	if (r == 0)
		r = acctdb_failures_clear(a->db, "login", j->phone);
	if (r == 0)
		r = audit(a, j->req, ac.id,
			  json_pack("{sb}", "logout_other_devices", j->logout));
	if (r == 0) {
		char buf[LOG_PHONE_MAX];

		log_info("accounts: %s reset its password with a recovery code",
			 log_phone(LOG_LVL_INFO, ac.phone, buf));
	}
	finish_account(a, j->req, ac.id, 0, r, "");
	acct_clear(&ac);
	job_free(j);
}

/* --- the module ---------------------------------------------------------------------- */

static const struct ctl_op accounts_ops[] = {
	{ "settings.get", op_settings_get, CTL_ROLE_ADMIN },
	{ "settings.set", op_settings_set, CTL_ROLE_ADMIN },
	{ "account.invite", op_invite, CTL_ROLE_ADMIN },
	{ "account.invite_many", op_invite_many, CTL_ROLE_ADMIN },
	{ "account.get", op_get, CTL_ROLE_ADMIN },
	{ "account.list", op_list, CTL_ROLE_ADMIN },
	{ "account.update", op_update, CTL_ROLE_ADMIN },
	{ "account.resend_invite", op_resend, CTL_ROLE_ADMIN },
	{ "account.unclaim", op_unclaim, CTL_ROLE_ADMIN },
	{ "account.deactivate", op_deactivate, CTL_ROLE_ADMIN },
	{ "account.reactivate", op_reactivate, CTL_ROLE_ADMIN },
	{ "account.claim", op_claim, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.login", op_login, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.recovery_code", op_recovery_code,
	  CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.recovery_reset", op_recovery_reset,
	  CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
};

/* Renders each template with typical values and warns when one needs
 * more than one SMS part: people get it split, and each part costs. */
static void check_templates(struct accounts *a)
{
	static const char *const kinds[] = { "invite", "recovery",
					     "unclaimed" };
	char text[SMS_TEXT_MAX];

	for (int k = 0; k < CONFIG_TMPL_COUNT; k++) {
		/* a 24-character token, a name of typical length */
		int r = render(a->cfg, (enum config_template_kind)k,
			       "Maria Fernandez", "AbCdEfGhIjKlMnOpQrStUvWx",
			       "7K3M9-QXD2P", text, sizeof(text));
		int parts = r < 0 ? r : outbox_count_parts(a->outbox, text);

		if (parts < 0)
			log_warn("accounts: the %s template cannot be "
				 "rendered: %s", kinds[k], strerror(-parts));
		else if (parts > 1)
			log_warn("accounts: the %s template (language %s) "
				 "needs %d SMS parts with typical values; "
				 "shorten it or the claim_url to fit one SMS",
				 kinds[k], a->cfg->accounts.language, parts);
	}
}

static const enum hasher_level pwhash_levels[] = {
	[CONFIG_PWHASH_INTERACTIVE] = HASHER_INTERACTIVE,
	[CONFIG_PWHASH_MODERATE] = HASHER_MODERATE,
	[CONFIG_PWHASH_SENSITIVE] = HASHER_SENSITIVE,
};

struct accounts *accounts_new(struct ev_loop *loop, struct store *store,
			      struct ctl_server *ctl, struct outbox *outbox,
			      const struct config *cfg, char *err,
			      size_t errlen)
{
	struct accounts *a = calloc(1, sizeof(*a));
	int r;

	if (!a || secret_init() < 0) {
		snprintf(err, errlen, "accounts: %s",
			 a ? "libsodium failed to initialise" : "out of memory");
		free(a);
		return NULL;
	}
	*a = (struct accounts){ .store = store, .outbox = outbox, .cfg = cfg,
				.level = cfg->accounts.password_hash,
				.threads = cfg->accounts.hash_threads };
	a->db = acctdb_new(store, err, errlen);
	if (!a->db)
		goto fail;
	a->hasher = hasher_new(loop, hash_threads(a->threads),
			       pwhash_levels[a->level], HASH_QUEUE_MAX);
	if (!a->hasher) {
		snprintf(err, errlen, "accounts: cannot start %d hashing "
			 "threads: %s", a->threads, strerror(errno));
		goto fail;
	}
	r = ctl_register(ctl, accounts_ops,
			 sizeof(accounts_ops) / sizeof(accounts_ops[0]), a);
	if (r < 0) {
		snprintf(err, errlen, "accounts: cannot register the ops: %s",
			 strerror(-r));
		goto fail;
	}
	check_templates(a);
	return a;
fail:
	accounts_free(a);
	return NULL;
}

/* Jobs still with the hasher are cancelled: their requests are answered
 * `unavailable` ("shutting down") from inside hasher_free(). */
void accounts_free(struct accounts *a)
{
	if (!a)
		return;
	a->closing = true;
	hasher_free(a->hasher);
	acctdb_free(a->db);
	free(a);
}

void accounts_set_config(struct accounts *a, const struct config *cfg)
{
	if (!a)
		return;
	if (cfg->accounts.password_hash != a->level ||
	    cfg->accounts.hash_threads != a->threads)
		log_warn("accounts: password_hash and hash_threads changes take "
			 "effect at the next start");
	a->cfg = cfg;
	check_templates(a);
}

int64_t accounts_lookup_phone(void *ctx, const char *e164)
{
	struct accounts *a = ctx;
	struct acct ac;
	int64_t id;

	if (!a || !e164 || acctdb_by_phone(a->db, e164, store_now_ms(), &ac))
		return 0;
	id = ac.id;
	acct_clear(&ac);
	return id;
}
