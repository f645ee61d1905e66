/* Tests for daemon/accounts: the real module on a real store (a temp
 * directory), a real control socket and the real outbox (its modem is
 * never started, so SMS stay queued and their PDUs can be read back).
 * Requests go over the socket as JSON lines, like the portal's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "at/pdu.h"
#include "config/config.h"
#include "daemon/accounts.h"
#include "daemon/ctl.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/pool.h"
#include "daemon/store.h"

#define WAIT_SECS 60.0
#define URL "https://portal.test/claim/"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- fixture ------------------------------------------------------------------ */

struct fx {
	char dir[64];
	char sock[100];
	struct config *cfg;
	struct ev_loop *loop;
	struct store *store;
	struct ctl_server *ctl;
	struct pool *pool;
	struct outbox *outbox;
	struct accounts *acc;
	int fd;
	char *in;          /* bytes received, not yet split into lines */
	size_t len, cap;
	json_t *early;     /* responses that arrived before asked for */
	int next_id;
};

/* Limits for a fixture's [accounts] section. */
struct limits {
	int claim_sms_per_day, invites_per_day, invites_per_day_verified;
	int recovery_attempts, login_attempts;
	const char *templates;   /* extra config text, or NULL */
};

static const struct limits defaults = { 5, 100, 1000, 5, 10, NULL };

static void write_config(struct fx *f, const struct limits *l)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/smsgwd.conf", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp,
		"[daemon]\nstate_dir = %s/state\nsocket = %s\n"
		"admin_group =\nportal_group =\nlog_level = error\n\n"
		"[modem.t]\ndevice = %s/no-such-tty\n\n"
		"[accounts]\norganization = Test Org\n"
		"claim_url = " URL "{token}\n"
		"claim_sms_per_day = %d\ninvites_per_day = %d\n"
		"invites_per_day_verified = %d\nrecovery_attempts = %d\n"
		"login_attempts = %d\nhash_threads = 2\n"
		"password_hash = interactive\n\n%s\n",
		f->dir, f->sock, f->dir, l->claim_sms_per_day,
		l->invites_per_day, l->invites_per_day_verified,
		l->recovery_attempts, l->login_attempts,
		l->templates ? l->templates : "");
	fclose(fp);
}

static void client_connect(struct fx *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(connect(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static struct fx *fx_new(const struct limits *l)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct config_errors errs = { 0 };
	struct ctl_server_opts o;
	char path[128], state[128], err[512] = "";

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/smsgw-acc-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/ctl.sock", f->dir);
	snprintf(state, sizeof(state), "%s/state", f->dir);
	assert_int_equal(mkdir(state, 0700), 0);
	write_config(f, l);
	snprintf(path, sizeof(path), "%s/smsgwd.conf", f->dir);
	if (config_load(path, &f->cfg, &errs) < 0) {
		config_errors_print(&errs, stderr);
		fail();
	}
	config_errors_free(&errs);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	if (store_open(state, &f->store, err, sizeof(err)) < 0)
		fail_msg("store: %s", err);
	ctl_server_opts_default(&o);
	o.path = f->sock;
	f->ctl = ctl_server_new(f->loop, &o, err, sizeof(err));
	if (!f->ctl)
		fail_msg("ctl: %s", err);
	f->pool = pool_new(f->loop, f->ctl, f->cfg, "/nonexistent", err,
			   sizeof(err));
	if (!f->pool)
		fail_msg("pool: %s", err);
	f->outbox = outbox_new(f->loop, f->store, f->ctl, f->pool, f->cfg,
			       err, sizeof(err));
	if (!f->outbox)
		fail_msg("outbox: %s", err);
	f->acc = accounts_new(f->loop, f->store, f->ctl, f->outbox, f->cfg,
			      err, sizeof(err));
	if (!f->acc)
		fail_msg("accounts: %s", err);
	f->early = json_array();
	client_connect(f);
	return f;
}

static void fx_free(struct fx *f)
{
	char cmd[128];

	close(f->fd);
	pool_free(f->pool);
	accounts_free(f->acc);
	outbox_free(f->outbox);
	ctl_server_free(f->ctl);
	store_free(f->store);
	config_free(f->cfg);
	ev_loop_destroy(f->loop);
	json_decref(f->early);
	free(f->in);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* --- the client side ------------------------------------------------------------ */

static void noop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* One round of the daemon's loop, at most `max` seconds. */
static void pump(struct fx *f, double max)
{
	ev_timer t;

	ev_timer_init(&t, noop_cb, max, 0.);
	ev_timer_start(f->loop, &t);
	ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &t);
}

static int send_req(struct fx *f, const char *op, json_t *args)
{
	int id = ++f->next_id;
	json_t *req = json_pack("{si ss so}", "id", id, "op", op, "args",
				args ? args : json_object());
	char *line = json_dumps(req, JSON_COMPACT);
	size_t n = strlen(line);

	line = realloc(line, n + 2);
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(f->fd, line + off, n - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	free(line);
	json_decref(req);
	return id;
}

/* Reads what is there without blocking; false at EOF. */
static bool client_read(struct fx *f)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN };

	while (poll(&p, 1, 0) == 1) {
		if (f->cap - f->len < 65536) {
			f->cap = f->cap * 2 + 65536;
			f->in = realloc(f->in, f->cap);
		}
		ssize_t r = read(f->fd, f->in + f->len, f->cap - f->len);
		if (r <= 0)
			return false;
		f->len += (size_t)r;
	}
	return true;
}

/* The next complete line as JSON, or NULL. */
static json_t *client_line(struct fx *f)
{
	char *nl = f->in ? memchr(f->in, '\n', f->len) : NULL;
	json_t *msg;

	if (!nl)
		return NULL;
	*nl = '\0';
	msg = json_loads(f->in, 0, NULL);
	assert_non_null(msg);
	f->len -= (size_t)(nl + 1 - f->in);
	memmove(f->in, nl + 1, f->len);
	return msg;
}

static json_t *take_early(struct fx *f, int id)
{
	size_t i;
	json_t *m;

	json_array_foreach(f->early, i, m) {
		if (json_integer_value(json_object_get(m, "id")) == id) {
			json_incref(m);
			json_array_remove(f->early, i);
			return m;
		}
	}
	return NULL;
}

/* Waits for the response to request `id` while running the loop. */
static json_t *wait_resp(struct fx *f, int id)
{
	double end = now_s() + WAIT_SECS;
	json_t *m = take_early(f, id);

	while (!m && now_s() < end) {
		pump(f, 0.005);
		assert_true(client_read(f));
		while (!m && (m = client_line(f))) {
			if (json_object_get(m, "event") ||
			    json_integer_value(json_object_get(m, "id")) != id) {
				if (!json_object_get(m, "event"))
					json_array_append(f->early, m);
				json_decref(m);
				m = NULL;
			}
		}
	}
	if (!m)
		fail_msg("no response to request %d", id);
	return m;
}

static json_t *call(struct fx *f, const char *op, json_t *args)
{
	return wait_resp(f, send_req(f, op, args));
}

/* Asserts success; returns the result (a new reference). */
static json_t *ok(struct fx *f, const char *op, json_t *args)
{
	json_t *r = call(f, op, args), *res;

	if (!json_is_true(json_object_get(r, "ok"))) {
		char *s = json_dumps(r, 0);
		fail_msg("%s failed: %s", op, s);
	}
	res = json_incref(json_object_get(r, "result"));
	json_decref(r);
	return res;
}

/* Asserts failure with `code`; returns the error's message (static
 * copy, valid until the next call). */
static const char *err(struct fx *f, const char *op, json_t *args,
		       const char *code)
{
	static char msg[600];
	json_t *r = call(f, op, args);
	json_t *e = json_object_get(r, "error");
	const char *c = json_string_value(json_object_get(e, "code"));

	if (json_is_true(json_object_get(r, "ok")) || !c || strcmp(c, code)) {
		char *s = json_dumps(r, 0);
		fail_msg("%s: expected %s, got %s", op, code, s);
	}
	snprintf(msg, sizeof(msg), "%s",
		 json_string_value(json_object_get(e, "message")));
	json_decref(r);
	return msg;
}

/* --- reading what was queued ------------------------------------------------------ */

/* The text an SMS carries, decoded from its queued PDUs (what the phone
 * would show); malloc'd. */
static char *sms_text(struct fx *f, int64_t sms_id)
{
	struct store_stmt *st;
	char *text = calloc(1, 4096);
	int r;

	assert_int_equal(store_stmt_prepare(f->store,
					    "SELECT pdu FROM sms_part WHERE "
					    "sms_id = ?1 ORDER BY seq", &st), 0);
	assert_int_equal(store_stmt_bind_int64(st, 1, sms_id), 0);
	while ((r = store_stmt_step(st)) == 1) {
		struct pdu_sms p;
		char e[PDU_ERR_MAX];

		assert_int_equal(pdu_decode_hex(store_stmt_column_text(st, 0),
						&p, e, sizeof(e)), 0);
		strncat(text, p.text, 4095 - strlen(text));
	}
	assert_int_equal(r, 0);
	store_stmt_free(st);
	assert_true(text[0] != '\0');
	return text;
}

/* The text sms.get shows admins for an SMS; malloc'd. */
static char *sms_shown(struct fx *f, int64_t sms_id)
{
	json_t *sms = NULL;
	char *t;

	assert_int_equal(store_sms_get(f->store, sms_id, &sms), 0);
	t = strdup(json_string_value(json_object_get(sms, "text")));
	json_decref(sms);
	return t;
}

static const char *sms_kind(struct fx *f, int64_t sms_id)
{
	static char kind[32];
	json_t *sms = NULL;

	assert_int_equal(store_sms_get(f->store, sms_id, &sms), 0);
	snprintf(kind, sizeof(kind), "%s",
		 json_string_value(json_object_get(sms, "kind")));
	json_decref(sms);
	return kind;
}

/* The claim token in an invite/unclaimed SMS. */
static void token_of(struct fx *f, int64_t sms_id, char token[32])
{
	char *t = sms_text(f, sms_id), *p = strstr(t, URL);

	assert_non_null(p);
	p += strlen(URL);
	memcpy(token, p, 24);
	token[24] = '\0';
	free(t);
}

/* The recovery code in a recovery SMS ("... code is 7K3M9-QXD2P."). */
static void code_of(struct fx *f, int64_t sms_id, char code[16])
{
	char *t = sms_text(f, sms_id), *p = strstr(t, "code is ");

	assert_non_null(p);
	memcpy(code, p + 8, 11);
	code[11] = '\0';
	assert_int_equal(code[5], '-');
	free(t);
}

static int64_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static void exec(struct fx *f, const char *sql)
{
	assert_int_equal(store_exec(f->store, sql), 0);
}

/* --- common steps ------------------------------------------------------------------- */

static void enable(struct fx *f)
{
	json_decref(ok(f, "settings.set",
		       json_pack("{sb}", "phone_profiles", 1)));
}

/* Invites phone; returns the sms_id and fills the token. */
static int64_t invite(struct fx *f, const char *phone, const char *name,
		      char token[32])
{
	json_t *r = ok(f, "account.invite",
		       json_pack("{ss ss}", "phone", phone, "name", name));
	int64_t sms = int_of(r, "sms_id");

	json_decref(r);
	if (token)
		token_of(f, sms, token);
	return sms;
}

/* Claims with token; returns the account and fills the recovery code. */
static json_t *claim(struct fx *f, const char *token, const char *pw,
		     char code[16])
{
	json_t *r = ok(f, "account.claim",
		       json_pack("{ss ss}", "token", token, "password", pw));
	json_t *acct = json_incref(json_object_get(r, "account"));

	assert_string_equal(sms_kind(f, int_of(r, "sms_id")), "recovery");
	char shown_code[16], *shown = sms_shown(f, int_of(r, "sms_id"));
	code_of(f, int_of(r, "sms_id"), shown_code);
	assert_null(strstr(shown, shown_code));
	assert_non_null(strstr(shown, "code is [redacted]"));
	free(shown);
	if (code)
		code_of(f, int_of(r, "sms_id"), code);
	json_decref(r);
	return acct;
}

static json_t *login_args(const char *phone, const char *pw)
{
	return json_pack("{ss ss}", "phone", phone, "password", pw);
}

/* Exactly the DESIGN's keys, and nothing secret. */
static void check_account_shape(json_t *a)
{
	static const char *const keys[] = {
		"id", "phone", "name", "state", "created_at", "claimed_at",
		"session_epoch", "claim_sms_sent_24h", "fields",
	};
	const char *k;
	json_t *v;
	char *dump = json_dumps(a, 0);

	json_object_foreach(a, k, v) {
		size_t i;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			fail_msg("unexpected key %s in %s", k, dump);
	}
	assert_null(strstr(dump, "argon2"));
	free(dump);
}

/* --- tests ---------------------------------------------------------------------------- */

static void test_settings_gate_invites(void **state)
{
	struct fx *f = fx_new(&defaults);
	json_t *s;

	(void)state;
	s = ok(f, "settings.get", NULL);
	assert_true(json_is_false(json_object_get(s, "phone_profiles")));
	assert_true(json_is_false(json_object_get(s, "domain_verified")));
	json_decref(s);
	err(f, "account.invite", json_pack("{ss}", "phone", "+34600111222"),
	    "phone_profiles_disabled");
	err(f, "account.invite_many",
	    json_pack("{s[{ss}]}", "people", "phone", "+34600111222"),
	    "phone_profiles_disabled");
	err(f, "settings.set", json_pack("{ss}", "phone_profiles", "yes"),
	    "bad_request");
	err(f, "settings.set", json_pack("{sb}", "color", 1), "bad_request");
	err(f, "settings.set", json_object(), "bad_request");
	s = ok(f, "settings.set", json_pack("{sb}", "phone_profiles", 1));
	assert_true(json_is_true(json_object_get(s, "phone_profiles")));
	json_decref(s);
	/* persisted in the store, and audited */
	char *v = NULL;
	assert_int_equal(store_setting_get(f->store, "phone_profiles", &v), 0);
	assert_string_equal(v, "true");
	free(v);
	json_t *entries = NULL;
	int64_t next = 0;
	assert_int_equal(store_audit_list(f->store, 10, 0, &entries, &next), 0);
	assert_int_equal(json_array_size(entries), 1);
	assert_string_equal(str_of(json_array_get(entries, 0), "op"),
			    "settings.set");
	json_decref(entries);
	json_decref(ok(f, "account.invite",
		       json_pack("{ss}", "phone", "+34600111222")));
	fx_free(f);
}

static void test_invite(void **state)
{
	struct fx *f = fx_new(&defaults);
	char token[32];
	json_t *r, *a;

	(void)state;
	enable(f);
	r = ok(f, "account.invite",
	       json_pack("{ss ss s{ss}}", "phone", "0034 600-111.222", "name",
			 "Ana", "fields", "dept", "QA"));
	a = json_object_get(r, "account");
	check_account_shape(a);
	assert_string_equal(str_of(a, "phone"), "+34600111222");
	assert_string_equal(str_of(a, "name"), "Ana");
	assert_string_equal(str_of(a, "state"), "invited");
	assert_int_equal(int_of(a, "claim_sms_sent_24h"), 1);
	assert_int_equal(int_of(a, "session_epoch"), 0);
	assert_true(json_is_null(json_object_get(a, "claimed_at")));
	assert_string_equal(str_of(json_object_get(a, "fields"), "dept"), "QA");
	/* the SMS is queued, of kind invite, to the number, with the link */
	int64_t sms = int_of(r, "sms_id");
	assert_string_equal(sms_kind(f, sms), "invite");
	char *text = sms_text(f, sms);
	assert_non_null(strstr(text, "Test Org: Ana, you are invited"));
	token_of(f, sms, token);
	assert_int_equal(strlen(token), 24);
	/* admins see the text without the token */
	char *shown = sms_shown(f, sms);
	assert_null(strstr(shown, token));
	assert_non_null(strstr(shown, URL "[redacted]"));
	assert_non_null(strstr(shown, "Test Org: Ana, you are invited"));
	free(shown);
	/* only the token's hash is stored */
	struct store_stmt *st;
	assert_int_equal(store_stmt_prepare(f->store,
		"SELECT claim_token_hash FROM accounts", &st), 0);
	assert_int_equal(store_stmt_step(st), 1);
	assert_null(strstr(store_stmt_column_text(st, 0), token));
	assert_int_equal(strlen(store_stmt_column_text(st, 0)), 64);
	store_stmt_reset(st);
	store_stmt_free(st);
	free(text);
	json_decref(r);

	/* the same number in another spelling exists already */
	err(f, "account.invite", json_pack("{ss}", "phone", "+34 600 111 222"),
	    "already_exists");
	const char *m = err(f, "account.invite",
			    json_pack("{ss}", "phone", "0600111222"),
			    "invalid_phone");
	assert_non_null(strstr(m, "no country code"));
	m = err(f, "account.invite", json_pack("{ss}", "phone", "+34 6OO"),
		"invalid_phone");
	assert_non_null(strstr(m, "letters"));
	err(f, "account.invite", json_pack("{si}", "phone", 34600111222),
	    "bad_request");
	err(f, "account.invite", json_pack("{ss ss}", "phone", "+34600111223",
					   "color", "red"), "bad_request");
	err(f, "account.invite", json_pack("{ss ss}", "phone", "+34600111223",
					   "name", "two\nlines"), "bad_request");
	err(f, "account.invite", json_object(), "bad_request");
	fx_free(f);
}

static void test_daily_cap(void **state)
{
	struct limits l = defaults;
	struct fx *f;
	char phone[32];

	(void)state;
	l.invites_per_day = 3;
	l.invites_per_day_verified = 5;
	f = fx_new(&l);
	enable(f);
	for (int i = 0; i < 3; i++) {
		snprintf(phone, sizeof(phone), "+3460000000%d", i);
		invite(f, phone, "x", NULL);
	}
	const char *m = err(f, "account.invite",
			    json_pack("{ss}", "phone", "+34600000009"),
			    "daily_invite_limit");
	assert_non_null(strstr(m, "T"));   /* names when: an ISO time */
	assert_non_null(strstr(m, "Z"));
	/* a verified domain raises the cap */
	json_decref(ok(f, "settings.set",
		       json_pack("{sb}", "domain_verified", 1)));
	invite(f, "+34600000003", "x", NULL);
	invite(f, "+34600000004", "x", NULL);
	err(f, "account.invite", json_pack("{ss}", "phone", "+34600000005"),
	    "daily_invite_limit");
	/* rolling 24 h: once the first ones are older, room again */
	exec(f, "UPDATE accounts SET created_at = created_at - 90000000"
		" WHERE phone IN ('+34600000000', '+34600000001')");
	invite(f, "+34600000005", "x", NULL);
	invite(f, "+34600000006", "x", NULL);
	err(f, "account.invite", json_pack("{ss}", "phone", "+34600000007"),
	    "daily_invite_limit");
	fx_free(f);
}

static void test_claim_sms_limit(void **state)
{
	struct fx *f = fx_new(&defaults);
	json_t *r;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", NULL);     /* 1 */
	for (int i = 0; i < 4; i++) {               /* 2..5 */
		r = ok(f, "account.resend_invite",
		       json_pack("{ss}", "phone", "+34600111222"));
		assert_string_equal(sms_kind(f, int_of(r, "sms_id")), "invite");
		json_decref(r);
	}
	const char *m = err(f, "account.resend_invite",
			    json_pack("{ss}", "phone", "+34600111222"),
			    "claim_sms_limit");
	assert_non_null(strstr(m, "next one can be sent at 20"));
	r = ok(f, "account.get", json_pack("{ss}", "phone", "+34600111222"));
	assert_int_equal(int_of(json_object_get(r, "account"),
				"claim_sms_sent_24h"), 5);
	json_decref(r);
	/* only the newest link works: a resend replaces the token */
	exec(f, "UPDATE account_claim_sms SET at = at - 90000000");
	r = ok(f, "account.resend_invite",
	       json_pack("{ss}", "phone", "+34600111222"));
	json_decref(r);
	err(f, "account.resend_invite", json_pack("{ss}", "phone", "+34699"),
	    "invalid_phone");
	err(f, "account.resend_invite",
	    json_pack("{ss}", "phone", "+34699000000"), "not_found");
	fx_free(f);
}

static void test_claim(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok1[32], tok2[32], code[16];
	json_t *a;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok1);
	json_decref(ok(f, "account.resend_invite",
		       json_pack("{ss}", "phone", "+34600111222")));
	/* the resend's SMS carries the new token; the first is dead */
	struct store_stmt *st;
	assert_int_equal(store_stmt_prepare(f->store,
		"SELECT MAX(sms_id) FROM account_claim_sms", &st), 0);
	assert_int_equal(store_stmt_step(st), 1);
	int64_t resent = store_stmt_column_int64(st, 0);
	store_stmt_reset(st);
	store_stmt_free(st);
	token_of(f, resent, tok2);
	assert_string_not_equal(tok1, tok2);
	err(f, "account.claim", json_pack("{ss ss}", "token", tok1, "password",
					  "a good passphrase"), "invalid_token");
	/* password policy, before any hashing */
	const char *m = err(f, "account.claim",
			    json_pack("{ss ss}", "token", tok2, "password",
				      "short"), "weak_password");
	assert_non_null(strstr(m, "too short"));
	m = err(f, "account.claim", json_pack("{ss ss}", "token", tok2,
					      "password", "600111222"),
		"weak_password");
	assert_non_null(strstr(m, "phone number"));
	err(f, "account.claim", json_pack("{ss ss}", "token", tok2, "password",
					  "Password1"), "weak_password");
	err(f, "account.claim", json_pack("{ss ss}", "token", "not a token",
					  "password", "a good passphrase"),
	    "invalid_token");
	err(f, "account.claim", json_pack("{ss}", "token", tok2),
	    "bad_request");

	a = claim(f, tok2, "a good passphrase", code);
	check_account_shape(a);
	assert_string_equal(str_of(a, "state"), "active");
	assert_true(json_is_string(json_object_get(a, "claimed_at")));
	json_decref(a);
	/* single use */
	err(f, "account.claim", json_pack("{ss ss}", "token", tok2, "password",
					  "another passphrase"),
	    "invalid_token");
	/* stored: argon2id for the password and the code, no token */
	assert_int_equal(store_stmt_prepare(f->store,
		"SELECT password_hash, recovery_code_hash, claim_token_hash"
		" FROM accounts", &st), 0);
	assert_int_equal(store_stmt_step(st), 1);
	assert_memory_equal(store_stmt_column_text(st, 0), "$argon2id$", 10);
	assert_memory_equal(store_stmt_column_text(st, 1), "$argon2id$", 10);
	assert_true(store_stmt_column_null(st, 2));
	store_stmt_reset(st);
	store_stmt_free(st);
	fx_free(f);
}

static void test_token_expired(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32];

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	exec(f, "UPDATE accounts SET claim_token_expires_at = 1000");
	const char *m = err(f, "account.claim",
			    json_pack("{ss ss}", "token", tok, "password",
				      "a good passphrase"), "token_expired");
	assert_non_null(strstr(m, "1970-01-01T00:00:01"));
	/* a resend issues a fresh one that works */
	json_t *r = ok(f, "account.resend_invite",
		       json_pack("{ss}", "phone", "+34600111222"));
	token_of(f, int_of(r, "sms_id"), tok);
	json_decref(r);
	json_decref(claim(f, tok, "a good passphrase", NULL));
	fx_free(f);
}

/* Wrong password and unknown number: the same answer, the same cost. */
static void test_login(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32];
	json_t *r, *e1, *e2;
	double t0, wrong = 1e9, unknown = 1e9;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	/* an invited account has no password yet */
	err(f, "account.login", login_args("+34600111222", "a good passphrase"),
	    "invalid_password");
	json_decref(claim(f, tok, "a good passphrase", NULL));
	r = ok(f, "account.login", login_args("0034600111222",
					      "a good passphrase"));
	assert_true(int_of(r, "account_id") > 0);
	assert_int_equal(int_of(r, "session_epoch"), 0);
	assert_int_equal(json_object_size(r), 2);
	json_decref(r);

	/* best of 5 each, alternating, to damp the neighbours' noise */
	for (int i = 0; i < 5; i++) {
		t0 = now_s();
		e1 = call(f, "account.login", login_args("+34600111222", "nope-nope"));
		double dt = now_s() - t0;
		wrong = dt < wrong ? dt : wrong;
		t0 = now_s();
		e2 = call(f, "account.login", login_args("+34600999999", "nope-nope"));
		dt = now_s() - t0;
		unknown = dt < unknown ? dt : unknown;
		/* byte-identical error objects */
		assert_true(json_equal(json_object_get(e1, "error"),
				       json_object_get(e2, "error")));
		assert_string_equal(str_of(json_object_get(e1, "error"), "code"),
				    "invalid_password");
		json_decref(e1);
		json_decref(e2);
	}
	printf("# login failure: wrong password %.1f ms, unknown number "
	       "%.1f ms\n", wrong * 1e3, unknown * 1e3);
	assert_true(unknown / wrong > 0.5 && unknown / wrong < 2.0);
	err(f, "account.login", login_args("+3460", "x"), "invalid_phone");
	fx_free(f);
}

static void test_login_throttle(void **state)
{
	struct limits l = defaults;
	struct fx *f;
	char tok[32];
	enum ctl_err code;
	const char *locked;

	(void)state;
	l.login_attempts = 3;
	f = fx_new(&l);
	locked = ctl_err_parse("login_locked", &code) == 0 ? "login_locked"
							    : "invalid_password";
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	json_decref(claim(f, tok, "a good passphrase", NULL));
	for (int i = 0; i < 3; i++) {
		err(f, "account.login", login_args("+34600111222", "wrong!!!"),
		    "invalid_password");
		err(f, "account.login", login_args("+34600999999", "wrong!!!"),
		    "invalid_password");
	}
	/* locked now, even with the right password; unknown numbers too */
	const char *m = err(f, "account.login",
			    login_args("+34600111222", "a good passphrase"),
			    locked);
	assert_non_null(strstr(m, "try again at"));
	err(f, "account.login", login_args("+34600999999", "a good passphrase"),
	    locked);
	err(f, "account.recovery_code",
	    login_args("+34600111222", "a good passphrase"), locked);
	/* an hour later it works, and success clears the count */
	exec(f, "UPDATE account_failure SET at = at - 3600000");
	json_decref(ok(f, "account.login",
		       login_args("+34600111222", "a good passphrase")));
	fx_free(f);
}

static void test_recovery(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32], code1[16], code2[16];
	json_t *r, *a;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	json_decref(claim(f, tok, "first passphrase", code1));
	/* a new code needs the password */
	err(f, "account.recovery_code", login_args("+34600111222", "wrong!!!"),
	    "invalid_password");
	err(f, "account.recovery_code", login_args("+34600999999", "wrong!!!"),
	    "invalid_password");
	r = ok(f, "account.recovery_code",
	       login_args("+34600111222", "first passphrase"));
	snprintf(code2, sizeof(code2), "%s", str_of(r, "code"));
	json_decref(r);
	assert_int_equal(strlen(code2), 11);
	assert_string_not_equal(code1, code2);
	/* the old code stopped working */
	const char *m = err(f, "account.recovery_reset",
			    json_pack("{ss ss ss sb}", "phone", "+34600111222",
				      "code", code1, "new_password",
				      "second passphrase",
				      "logout_other_devices", 1),
			    "invalid_code");
	assert_non_null(strstr(m, "4 more wrong codes"));
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600111222", "code", "12",
		      "new_password", "second passphrase"), "invalid_code");
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600111222", "code", code2,
		      "new_password", "password"), "weak_password");
	/* typed loosely: lower case, no dash, O for 0 */
	char typed[16];
	size_t n = 0;
	for (const char *p = code2; *p; p++) {
		if (*p == '-')
			continue;
		typed[n++] = *p == '0' ? 'o' : (char)(*p | 0x20);
	}
	typed[n] = '\0';
	a = ok(f, "account.recovery_reset",
	       json_pack("{ss ss ss sb}", "phone", "+34600111222", "code",
			 typed, "new_password", "second passphrase",
			 "logout_other_devices", 1));
	assert_int_equal(int_of(json_object_get(a, "account"), "session_epoch"),
			 1);
	check_account_shape(json_object_get(a, "account"));
	json_decref(a);
	/* burned */
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600111222", "code", code2,
		      "new_password", "third passphrase"), "invalid_code");
	err(f, "account.login", login_args("+34600111222", "first passphrase"),
	    "invalid_password");
	json_decref(ok(f, "account.login",
		       login_args("+34600111222", "second passphrase")));
	/* without logout the epoch stays */
	r = ok(f, "account.recovery_code",
	       login_args("+34600111222", "second passphrase"));
	snprintf(code2, sizeof(code2), "%s", str_of(r, "code"));
	json_decref(r);
	a = ok(f, "account.recovery_reset",
	       json_pack("{ss ss ss}", "phone", "+34600111222", "code", code2,
			 "new_password", "third passphrase"));
	assert_int_equal(int_of(json_object_get(a, "account"), "session_epoch"),
			 1);
	json_decref(a);
	fx_free(f);
}

static void test_recovery_lock(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32], code[16];

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	json_decref(claim(f, tok, "first passphrase", code));
	for (int i = 0; i < 5; i++)
		err(f, "account.recovery_reset",
		    json_pack("{ss ss ss}", "phone", "+34600111222", "code",
			      "00000-00000", "new_password", "x passphrase"),
		    "invalid_code");
	/* five wrong: the right code is refused too, with the unlock time */
	const char *m = err(f, "account.recovery_reset",
			    json_pack("{ss ss ss}", "phone", "+34600111222",
				      "code", code, "new_password",
				      "x passphrase"), "recovery_locked");
	assert_non_null(strstr(m, "unlocks at 20"));
	/* unknown numbers lock the same way */
	for (int i = 0; i < 5; i++)
		err(f, "account.recovery_reset",
		    json_pack("{ss ss ss}", "phone", "+34600999999", "code",
			      "00000-00000", "new_password", "x passphrase"),
		    "invalid_code");
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600999999", "code",
		      "00000-00000", "new_password", "x passphrase"),
	    "recovery_locked");
	/* after the hour the right code works */
	exec(f, "UPDATE account_failure SET at = at - 3600000");
	json_decref(ok(f, "account.recovery_reset",
		       json_pack("{ss ss ss}", "phone", "+34600111222", "code",
				 code, "new_password", "x passphrase")));
	fx_free(f);
}

static void test_unclaim(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32], code[16];
	json_t *r, *a;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	err(f, "account.unclaim", json_pack("{ss}", "phone", "+34600111222"),
	    "wrong_state");
	json_decref(claim(f, tok, "first passphrase", code));
	r = ok(f, "account.unclaim", json_pack("{ss}", "phone", "+34600111222"));
	a = json_object_get(r, "account");
	assert_string_equal(str_of(a, "state"), "invited");
	assert_int_equal(int_of(a, "session_epoch"), 1);
	assert_int_equal(int_of(a, "claim_sms_sent_24h"), 2);
	assert_true(json_is_null(json_object_get(a, "claimed_at")));
	int64_t sms = int_of(r, "sms_id");
	assert_string_equal(sms_kind(f, sms), "unclaimed");
	char *text = sms_text(f, sms);
	assert_non_null(strstr(text, "your password was reset"));
	free(text);
	token_of(f, sms, tok);
	json_decref(r);
	/* the password and the recovery code are gone */
	err(f, "account.login", login_args("+34600111222", "first passphrase"),
	    "invalid_password");
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600111222", "code", code,
		      "new_password", "x passphrase"), "invalid_code");
	a = claim(f, tok, "second passphrase", NULL);
	assert_int_equal(int_of(a, "session_epoch"), 1);
	json_decref(a);
	json_decref(ok(f, "account.login",
		       login_args("+34600111222", "second passphrase")));
	fx_free(f);
}

static void test_deactivate(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32], code[16];
	json_t *r;

	(void)state;
	enable(f);
	char tok2[32];

	invite(f, "+34600111222", "Ana", tok);
	invite(f, "+34600111333", "Bea", tok2);
	json_decref(claim(f, tok, "first passphrase", code));
	r = ok(f, "account.deactivate",
	       json_pack("{ss}", "phone", "+34600111222"));
	assert_string_equal(str_of(json_object_get(r, "account"), "state"),
			    "deactivated");
	assert_int_equal(int_of(json_object_get(r, "account"), "session_epoch"),
			 1);
	json_decref(r);
	err(f, "account.deactivate", json_pack("{ss}", "phone", "+34600111222"),
	    "wrong_state");
	/* no login, no recovery, no SMS; a wrong password stays anonymous */
	err(f, "account.login", login_args("+34600111222", "first passphrase"),
	    "wrong_state");
	err(f, "account.login", login_args("+34600111222", "wrong!!!"),
	    "invalid_password");
	err(f, "account.recovery_code",
	    login_args("+34600111222", "first passphrase"), "wrong_state");
	err(f, "account.recovery_reset",
	    json_pack("{ss ss ss}", "phone", "+34600111222", "code", code,
		      "new_password", "x passphrase"), "wrong_state");
	err(f, "account.unclaim", json_pack("{ss}", "phone", "+34600111222"),
	    "wrong_state");
	r = ok(f, "account.reactivate",
	       json_pack("{ss}", "phone", "+34600111222"));
	assert_string_equal(str_of(json_object_get(r, "account"), "state"),
			    "active");
	json_decref(r);
	err(f, "account.reactivate", json_pack("{ss}", "phone", "+34600111222"),
	    "wrong_state");
	json_decref(ok(f, "account.login",
		       login_args("+34600111222", "first passphrase")));
	/* an invited one comes back invited; meanwhile no claim, no resend */
	memcpy(tok, tok2, sizeof(tok));
	json_decref(ok(f, "account.deactivate",
		       json_pack("{ss}", "phone", "+34600111333")));
	err(f, "account.claim", json_pack("{ss ss}", "token", tok, "password",
					  "a good passphrase"), "wrong_state");
	err(f, "account.resend_invite",
	    json_pack("{ss}", "phone", "+34600111333"), "wrong_state");
	r = ok(f, "account.reactivate",
	       json_pack("{ss}", "phone", "+34600111333"));
	assert_string_equal(str_of(json_object_get(r, "account"), "state"),
			    "invited");
	json_decref(r);
	json_decref(claim(f, tok, "a good passphrase", NULL));
	fx_free(f);
}

static void test_update_get_list(void **state)
{
	struct fx *f = fx_new(&defaults);
	json_t *r, *list;
	char phone[32];

	(void)state;
	enable(f);
	for (int i = 0; i < 5; i++) {
		snprintf(phone, sizeof(phone), "+3460011100%d", i);
		invite(f, phone, "P", NULL);
	}
	err(f, "account.update", json_pack("{ss ss}", "phone", "+34600111000",
					   "new_phone", "+34600111999"),
	    "phone_immutable");
	err(f, "account.update", json_pack("{ss}", "phone", "+34600111000"),
	    "bad_request");
	err(f, "account.update", json_pack("{ss ss}", "phone", "+34600999000",
					   "name", "X"), "not_found");
	r = ok(f, "account.update",
	       json_pack("{ss ss s{si}}", "phone", "+34 600 111 000", "name",
			 "Ana Maria", "fields", "badge", 42));
	assert_string_equal(str_of(json_object_get(r, "account"), "name"),
			    "Ana Maria");
	assert_int_equal(int_of(json_object_get(json_object_get(r, "account"),
						"fields"), "badge"), 42);
	json_decref(r);
	r = ok(f, "account.update", json_pack("{ss sn}", "phone",
					      "+34600111000", "fields"));
	assert_null(json_object_get(json_object_get(r, "account"), "fields"));
	assert_string_equal(str_of(json_object_get(r, "account"), "name"),
			    "Ana Maria");
	json_decref(r);
	/* pages of 2 in id order */
	int64_t after = 0;
	int seen = 0, pages = 0;
	do {
		r = ok(f, "account.list", after
		       ? json_pack("{si sI}", "limit", 2, "after", (json_int_t)after)
		       : json_pack("{si}", "limit", 2));
		list = json_object_get(r, "accounts");
		seen += (int)json_array_size(list);
		pages++;
		after = json_integer_value(json_object_get(r, "next"));
		json_decref(r);
	} while (after && pages < 10);
	assert_int_equal(seen, 5);
	assert_int_equal(pages, 3);
	/* by state */
	json_decref(ok(f, "account.deactivate",
		       json_pack("{ss}", "phone", "+34600111003")));
	r = ok(f, "account.list", json_pack("{ss}", "state", "deactivated"));
	list = json_object_get(r, "accounts");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(str_of(json_array_get(list, 0), "phone"),
			    "+34600111003");
	assert_null(json_object_get(r, "next"));
	json_decref(r);
	err(f, "account.list", json_pack("{ss}", "state", "gone"), "bad_request");
	err(f, "account.list", json_pack("{si}", "limit", 5000), "bad_request");
	err(f, "account.get", json_pack("{ss}", "phone", "+34600999000"),
	    "not_found");
	fx_free(f);
}

static void test_invite_many(void **state)
{
	struct limits l = defaults;
	struct fx *f;
	json_t *r, *res;

	(void)state;
	l.invites_per_day = 4;
	f = fx_new(&l);
	enable(f);
	invite(f, "+34600111000", "Old", NULL);
	r = ok(f, "account.invite_many", json_pack(
		"{s[{ss ss} {ss} {ss} {ss} {si} s {ss} {ss} {ss}]}", "people",
		"phone", "+34600111001", "name", "A",
		"phone", "not a phone",
		"phone", "+34600111000",       /* exists */
		"phone", "0034600111001",      /* twice in one request */
		"phone", 5,
		"just a string",
		"phone", "+34600111002",
		"phone", "+34600111003",
		"phone", "+34600111004"));     /* over the cap of 4 */
	res = json_object_get(r, "results");
	assert_int_equal(json_array_size(res), 9);
	static const char *const want[] = {
		NULL, "invalid_phone", "already_exists", "already_exists",
		"bad_request", "bad_request", NULL, NULL, "daily_invite_limit",
	};
	for (size_t i = 0; i < 9; i++) {
		json_t *row = json_array_get(res, i);
		json_t *e = json_object_get(row, "error");

		if (!want[i]) {
			assert_true(json_is_true(json_object_get(row, "ok")));
			check_account_shape(json_object_get(row, "account"));
			assert_true(int_of(row, "sms_id") > 0);
		} else {
			assert_true(json_is_false(json_object_get(row, "ok")));
			assert_string_equal(str_of(e, "code"), want[i]);
		}
	}
	assert_string_equal(str_of(json_array_get(res, 0), "phone"),
			    "+34600111001");
	json_decref(r);
	/* the good rows are committed, the others left nothing */
	r = ok(f, "account.list", NULL);
	assert_int_equal(json_array_size(json_object_get(r, "accounts")), 4);
	json_decref(r);
	r = ok(f, "account.invite_many", json_pack("{s[]}", "people"));
	assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
	json_decref(r);
	fx_free(f);
}

/* Accounts free while a claim is with the hasher: the request is
 * answered `unavailable`, nothing leaks (ASan). */
static void test_shutdown_pending(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32];
	int id;
	json_t *r;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	id = send_req(f, "account.claim", json_pack("{ss ss}", "token", tok,
						    "password", "a passphrase"));
	/* until the request was dispatched (its hashes are queued) */
	for (int i = 0; i < 100; i++)
		pump(f, 0.001);
	accounts_free(f->acc);
	f->acc = NULL;
	r = wait_resp(f, id);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_string_equal(str_of(json_object_get(r, "error"), "code"),
			    "unavailable");
	assert_string_equal(str_of(json_object_get(r, "error"), "message"),
			    "shutting down");
	json_decref(r);
	fx_free(f);
}

/* Accounts logs a warning at start when a template needs two SMS. */
static void test_template_warning(void **state)
{
	struct limits l = defaults;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	struct fx *f;

	(void)state;
	l.templates = "[templates.en]\ninvite = {org}: {name}, you are "
		      "invited to the new staff portal of the plant, where you "
		      "will find shifts and payslips. Claim your account and "
		      "set a password here: {link}\n";
	log_init("test", LOG_LVL_WARN);
	log_set_stream(mem);
	f = fx_new(&l);
	fflush(mem);
	log_set_stream(NULL);
	log_init("test", LOG_LVL_ERR);
	assert_non_null(strstr(buf, "the invite template (language en) needs "
				    "2 SMS parts"));
	assert_null(strstr(buf, "recovery template"));
	fclose(mem);
	free(buf);
	/* the long invite is really sent as two parts */
	enable(f);
	char tok[32];
	json_t *sms = NULL;
	int64_t id = invite(f, "+34600111222", "Maria Fernandez", tok);
	assert_int_equal(store_sms_get(f->store, id, &sms), 0);
	assert_int_equal(json_array_size(json_object_get(sms, "parts")), 2);
	json_decref(sms);
	fx_free(f);
}

/* Nothing secret in the audit trail. */
static void test_audit(void **state)
{
	struct fx *f = fx_new(&defaults);
	char tok[32], code[16];
	json_t *entries = NULL;
	int64_t next = 0;
	char *dump;

	(void)state;
	enable(f);
	invite(f, "+34600111222", "Ana", tok);
	json_decref(claim(f, tok, "first passphrase", code));
	json_decref(ok(f, "account.login",
		       login_args("+34600111222", "first passphrase")));
	err(f, "account.login", login_args("+34600999999", "nope-nope"),
	    "invalid_password");
	assert_int_equal(store_audit_list(f->store, 100, 0, &entries, &next), 0);
	dump = json_dumps(entries, 0);
	/* settings.set, invite, claim, login ok, login failure */
	assert_int_equal(json_array_size(entries), 5);
	assert_null(strstr(dump, tok));
	assert_null(strstr(dump, code));
	assert_null(strstr(dump, "first passphrase"));
	assert_null(strstr(dump, "nope-nope"));
	assert_null(strstr(dump, "argon2"));
	assert_non_null(strstr(dump, "account.claim"));
	assert_non_null(strstr(dump, "invalid_password"));
	/* every entry has the peer's uid */
	for (size_t i = 0; i < json_array_size(entries); i++)
		assert_int_equal(int_of(json_array_get(entries, i), "uid"),
				 (int64_t)getuid());
	free(dump);
	json_decref(entries);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_gate_invites),
		cmocka_unit_test(test_invite),
		cmocka_unit_test(test_daily_cap),
		cmocka_unit_test(test_claim_sms_limit),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_token_expired),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_throttle),
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_recovery_lock),
		cmocka_unit_test(test_unclaim),
		cmocka_unit_test(test_deactivate),
		cmocka_unit_test(test_update_get_list),
		cmocka_unit_test(test_invite_many),
		cmocka_unit_test(test_shutdown_pending),
		cmocka_unit_test(test_template_warning),
		cmocka_unit_test(test_audit),
	};
	log_init("test", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
