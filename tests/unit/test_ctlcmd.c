/* Tests for smsgwctl (daemon/ctlcmd + daemon/ctlclient): argument parsing
 * into requests, the CSV people list and its batches, and whole commands
 * run against a real ctl server on a thread, with fake ops that answer like
 * the daemon's modules (DESIGN.md shapes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/ctlclient.h"
#include "daemon/ctlcmd.h"
#include "daemon/log.h"

/* --- pure parts ----------------------------------------------------------- */

static char *dump_sorted(const json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : strdup("null");
}

static int request_of(const char *line, const char **op, json_t **args,
		      char *err, size_t errlen)
{
	char buf[256], *argv[16], *save = NULL;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	/* '|' separates words, so that a word may hold spaces */
	for (char *w = strtok_r(buf, "|", &save); w && argc < 16;
	     w = strtok_r(NULL, "|", &save))
		argv[argc++] = w;
	return ctlcmd_request(argc, argv, op, args, err, errlen);
}

static void test_requests(void **state)
{
	static const struct {
		const char *argv;
		const char *op;
		const char *args;
	} cases[] = {
		{ "ping", "ping", "null" },
		{ "settings", "settings.get", "null" },
		{ "settings|set|phone_profiles|yes", "settings.set",
		  "{\"phone_profiles\":true}" },
		{ "settings|set|domain_verified|OFF", "settings.set",
		  "{\"domain_verified\":false}" },
		{ "settings|set|invites_per_day|200", "settings.set",
		  "{\"invites_per_day\":200}" },
		{ "invite|+34 600 111 222|--name|Ana", "account.invite",
		  "{\"name\":\"Ana\",\"phone\":\"+34 600 111 222\"}" },
		{ "invite|--name=Ana Pérez|0034600111222", "account.invite",
		  "{\"name\":\"Ana Pérez\",\"phone\":\"0034600111222\"}" },
		{ "invite|+34600", "account.invite", "{\"phone\":\"+34600\"}" },
		{ "accounts", "account.list", "{\"limit\":100}" },
		{ "accounts|--state|active", "account.list",
		  "{\"limit\":100,\"state\":\"active\"}" },
		{ "show|+34600", "account.get", "{\"phone\":\"+34600\"}" },
		{ "update|+34600|--name|Bea", "account.update",
		  "{\"name\":\"Bea\",\"phone\":\"+34600\"}" },
		{ "resend|+34600", "account.resend_invite",
		  "{\"phone\":\"+34600\"}" },
		{ "unclaim|+34600", "account.unclaim", "{\"phone\":\"+34600\"}" },
		{ "deactivate|+34600", "account.deactivate",
		  "{\"phone\":\"+34600\"}" },
		{ "reactivate|+34600", "account.reactivate",
		  "{\"phone\":\"+34600\"}" },
		{ "send|+34600|hello world", "sms.send",
		  "{\"text\":\"hello world\",\"to\":\"+34600\"}" },
		{ "send|+34600|--|--dashes", "sms.send",
		  "{\"text\":\"--dashes\",\"to\":\"+34600\"}" },
		{ "sms", "sms.list", "{\"direction\":\"out\",\"limit\":100}" },
		{ "sms|--in", "sms.list", "{\"direction\":\"in\",\"limit\":100}" },
		{ "sms|show|42", "sms.get", "{\"id\":42}" },
		{ "sms|show|x42", "sms.get", "{\"id\":\"x42\"}" },
		{ "modems", "modem.list", "null" },
		{ "watch", "events.subscribe", "null" },
		{ "audit", "audit.list", "{\"limit\":100}" },
		{ "claim|tok", "account.claim", "{\"token\":\"tok\"}" },
		{ "recover|+34600|--keep-others", "account.recovery_reset",
		  "{\"phone\":\"+34600\"}" },
		{ "login|+34600", "account.login", "{\"phone\":\"+34600\"}" },
		{ "recovery-code|+34600", "account.recovery_code",
		  "{\"phone\":\"+34600\"}" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *op = NULL;
		json_t *args = NULL;
		char *got;
		int r = request_of(cases[i].argv, &op, &args, err, sizeof(err));

		if (r != 0)
			fail_msg("%s: %d %s", cases[i].argv, r, err);
		assert_string_equal(op, cases[i].op);
		got = dump_sorted(args);
		assert_string_equal(got, cases[i].args);
		free(got);
		json_decref(args);
	}
}

static void test_usage_errors(void **state)
{
	static const struct {
		const char *argv;
		int r;
		const char *msg;
	} cases[] = {
		{ "frobnicate", -EINVAL, "unknown command 'frobnicate'" },
		{ "show", -EINVAL, "missing arguments" },
		{ "show|a|b", -EINVAL, "unexpected argument 'b'" },
		{ "update|+34600", -EINVAL, "nothing to update: give --name NAME" },
		{ "invite|+34600|--bogus", -EINVAL, "unknown option --bogus" },
		{ "invite|+34600|--name", -EINVAL, "--name= needs a value" },
		{ "invite", -EINVAL, "invite needs a PHONE (or --file FILE)" },
		{ "sms|--in|--out", -EINVAL, "--in and --out exclude each other" },
		{ "sms|--in=x", -EINVAL, "unknown option --in" },
		{ "send|+34600", -EINVAL, "missing arguments" },
		{ "settings|set|k", -EINVAL, "missing arguments" },
		{ "invite|--file|people.csv", -ENOTSUP, "" },
		{ "help", -ENOTSUP, "" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *op = NULL;
		json_t *args = NULL;

		err[0] = '\0';
		assert_int_equal(request_of(cases[i].argv, &op, &args, err,
					    sizeof(err)),
				 cases[i].r);
		assert_string_equal(err, cases[i].msg);
		assert_null(args);
	}
}

static const char *row_str(json_t *people, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(people, i), key));
}

static const char *row_code(json_t *people, size_t i)
{
	return json_string_value(json_object_get(
		json_object_get(json_array_get(people, i), "error"), "code"));
}

static void test_people_parse(void **state)
{
	static const char csv[] =
		"\xef\xbb\xbf" "Name , PHONE,extra\r\n"
		"Ana,+34 600 111 222,x\r\n"
		"\"Pérez, Bea\", 0034600111333 \r\n"
		"NoPhone,\r\n"
		"\r\n"
		"\xff\xfe,+34600111444\r\n"
		",+34600111555\r\n"
		"Onlyname\r\n";
	char err[256] = "";
	json_t *p = ctlcmd_people_parse(csv, sizeof(csv) - 1, err, sizeof(err));

	(void)state;
	assert_non_null(p);
	assert_int_equal(json_array_size(p), 6);
	assert_string_equal(row_str(p, 0, "phone"), "+34 600 111 222");
	assert_string_equal(row_str(p, 0, "name"), "Ana");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 0),
							    "line")),
			 2);
	assert_null(row_code(p, 0));
	assert_string_equal(row_str(p, 1, "phone"), "0034600111333");
	assert_string_equal(row_str(p, 1, "name"), "Pérez, Bea");
	assert_string_equal(row_code(p, 2), "invalid_phone");
	assert_string_equal(row_code(p, 3), "bad_request"); /* not UTF-8 */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 3),
							    "line")),
			 6);
	assert_null(row_code(p, 4));
	assert_null(row_str(p, 4, "name")); /* empty name: none */
	assert_string_equal(row_code(p, 5), "invalid_phone");
	json_decref(p);

	assert_null(ctlcmd_people_parse("name\nAna\n", 9, err, sizeof(err)));
	assert_string_equal(err, "line 1: the header has no phone column "
				 "(expected: phone,name)");
	assert_null(ctlcmd_people_parse("", 0, err, sizeof(err)));
	assert_string_equal(err, "empty file (expected a header: phone,name)");
	assert_null(ctlcmd_people_parse("phone\n\"+34", 10, err, sizeof(err)));
	assert_string_equal(err, "line 2: unterminated quoted field");
}

/* Batches: at most max_rows, at most max_bytes, rows with an error left
 * out, indexes pointing back into people. */
static void test_batches(void **state)
{
	json_t *people = json_array(), *b;
	size_t pos = 0, idx[CTLCMD_BATCH_ROWS], total = 0, batches = 0;
	char name[901];

	(void)state;
	for (int i = 0; i < 1203; i++) {
		json_t *row = json_pack("{s:i, s:s}", "line", i + 2, "phone",
					"+34600000000");

		if (i % 400 == 7)
			json_object_set_new(row, "error",
					    ctl_error_object(CTL_ERR_INVALID_PHONE,
							     "x"));
		json_array_append_new(people, row);
	}
	while ((b = ctlcmd_batch(people, &pos, CTLCMD_BATCH_ROWS,
				 CTLCMD_BATCH_BYTES, idx))) {
		size_t n = json_array_size(json_object_get(b, "people"));

		assert_true(n <= CTLCMD_BATCH_ROWS);
		for (size_t k = 0; k < n; k++)
			assert_int_not_equal(idx[k] % 400, 7);
		/* only phone and name go out */
		assert_null(json_object_get(json_array_get(
			json_object_get(b, "people"), 0), "line"));
		total += n;
		batches++;
		json_decref(b);
	}
	assert_int_equal(total, 1200);
	assert_int_equal(batches, 3);
	assert_int_equal(pos, 1203);
	json_decref(people);

	/* Long names: the byte cap decides. */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	people = json_array();
	for (int i = 0; i < 200; i++)
		json_array_append_new(people, json_pack("{s:i, s:s, s:s}",
							"line", i, "phone",
							"+34600", "name", name));
	pos = 0;
	b = ctlcmd_batch(people, &pos, CTLCMD_BATCH_ROWS, CTLCMD_BATCH_BYTES,
			 idx);
	assert_non_null(b);
	{
		char *s = json_dumps(b, JSON_COMPACT);

		assert_true(strlen(s) <= CTLCMD_BATCH_BYTES);
		assert_true(strlen(s) > CTLCMD_BATCH_BYTES - 1000);
		free(s);
	}
	assert_int_equal(pos, json_array_size(json_object_get(b, "people")));
	json_decref(b);
	json_decref(people);
}

/* --- a fake daemon on a thread ------------------------------------------ */

#define N_ACCOUNTS 250

struct fake {
	char dir[64];
	char path[100];
	pthread_t thread;
	struct ev_loop *loop;
	struct ctl_server *srv;
	ev_async stop;
	ev_timer tick;
	int ready[2];
	int ticks;
	int invite_many_calls; /* read by the test after join */
	int list_calls;
	struct ctl_req *slow[4];
	int nslow;
};

static json_t *account(int id, const char *phone, const char *state)
{
	char name[32];

	snprintf(name, sizeof(name), "Person %d", id);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:n, s:i, s:i}", "id", id,
			 "phone", phone, "name", name, "state", state,
			 "created_at", "2024-05-01T10:00:00Z", "claimed_at",
			 "session_epoch", 0, "claim_sms_sent_24h", 1);
}

static const char *str_arg(json_t *args, const char *key)
{
	const char *s = json_string_value(json_object_get(args, key));

	return s ? s : "";
}

static void op_settings_get(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:b, s:b}", "phone_profiles", 1,
				    "domain_verified", 0));
}

static void op_echo(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	ctl_reply_ok(req, json_deep_copy(args));
}

static void op_invite(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	if (str_arg(args, "phone")[0] != '+') {
		ctl_reply_err(req, CTL_ERR_INVALID_PHONE, "not a phone number");
		return;
	}
	ctl_reply_ok(req, json_pack("{s:o, s:i}", "account",
				    account(1, str_arg(args, "phone"),
					    "invited"),
				    "sms_id", 7));
}

static json_t *invite_one(json_t *person)
{
	const char *phone = str_arg(person, "phone");

	if (strncmp(phone, "+dup", 4) == 0)
		return json_pack("{s:s, s:b, s:o}", "phone", phone, "ok", 0,
				 "error",
				 ctl_error_object(CTL_ERR_ALREADY_EXISTS,
						  "already invited"));
	if (phone[0] != '+')
		return json_pack("{s:s, s:b, s:o}", "phone", phone, "ok", 0,
				 "error",
				 ctl_error_object(CTL_ERR_INVALID_PHONE,
						  "no country code"));
	return json_pack("{s:s, s:b, s:o}", "phone", phone, "ok", 1,
			 "account", account(1, phone, "invited"));
}

static void op_invite_many(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fake *f = ctx;
	json_t *people = json_object_get(args, "people"), *res = json_array();
	json_t *p;
	size_t i;

	f->invite_many_calls++;
	if (json_array_size(people) > CTLCMD_BATCH_ROWS) {
		json_decref(res);
		ctl_reply_err(req, CTL_ERR_BAD_REQUEST, "batch too big");
		return;
	}
	json_array_foreach(people, i, p)
		json_array_append_new(res, invite_one(p));
	ctl_reply_ok(req, json_pack("{s:o}", "results", res));
}

/* 250 accounts, ids 1..250; even ones active. Pages by `after`. */
static void op_list(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fake *f = ctx;
	json_int_t after = json_integer_value(json_object_get(args, "after"));
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	const char *state = json_string_value(json_object_get(args, "state"));
	json_t *rows = json_array(), *res;
	json_int_t id;

	f->list_calls++;
	for (id = after + 1; id <= N_ACCOUNTS &&
			     (json_int_t)json_array_size(rows) < limit;
	     id++) {
		char phone[32];
		const char *st = id % 2 ? "invited" : "active";

		if (state && strcmp(state, st) != 0)
			continue;
		snprintf(phone, sizeof(phone), "+346000%05d", (int)id);
		json_array_append_new(rows, account((int)id, phone, st));
	}
	res = json_pack("{s:o}", "accounts", rows);
	if (id <= N_ACCOUNTS)
		json_object_set_new(res, "next", json_integer(id - 1));
	ctl_reply_ok(req, res);
}

static void op_slow(struct ctl_req *req, json_t *args, void *ctx);

static void op_get(struct ctl_req *req, json_t *args, void *ctx)
{
	if (strcmp(str_arg(args, "phone"), "slow") == 0) {
		op_slow(req, args, ctx);
		return;
	}
	if (strcmp(str_arg(args, "phone"), "+34600000001") != 0) {
		ctl_reply_err(req, CTL_ERR_NOT_FOUND, "no account %s",
			      str_arg(args, "phone"));
		return;
	}
	ctl_reply_ok(req, json_pack("{s:o}", "account",
				    account(1, "+34600000001", "active")));
}

static void op_claim(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	if (strcmp(str_arg(args, "token"), "tok") != 0)
		ctl_reply_err(req, CTL_ERR_INVALID_TOKEN, "unknown token");
	else if (strcmp(str_arg(args, "password"), "s3cret pw!") != 0)
		ctl_reply_err(req, CTL_ERR_WEAK_PASSWORD, "not the test one");
	else
		ctl_reply_ok(req, json_pack("{s:o, s:i}", "account",
					    account(1, "+34600000001", "active"),
					    "sms_id", 8));
}

static void op_recovery_reset(struct ctl_req *req, json_t *args, void *ctx)
{
	json_t *logout = json_object_get(args, "logout_other_devices");

	(void)ctx;
	if (strcmp(str_arg(args, "code"), "ABCD-1234") != 0 ||
	    strcmp(str_arg(args, "new_password"), "newpass123") != 0 ||
	    !json_is_boolean(logout)) {
		ctl_reply_err(req, CTL_ERR_INVALID_CODE, "wrong code");
		return;
	}
	ctl_reply_ok(req, json_pack("{s:o, s:O}", "account",
				    account(1, "+34600000001", "active"),
				    "logged_out", logout));
}

static void op_login(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	if (strcmp(str_arg(args, "password"), "pw") != 0)
		ctl_reply_err(req, CTL_ERR_INVALID_PASSWORD, "wrong password");
	else if (strcmp(ctl_req_op(req), "account.login") == 0)
		ctl_reply_ok(req, json_pack("{s:i, s:i}", "account_id", 1,
					    "session_epoch", 3));
	else
		ctl_reply_ok(req, json_pack("{s:s}", "code", "7K3M9Q2X4T"));
}

static void op_sms_list(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack(
		"{s:[{s:i, s:s, s:s, s:s, s:s, s:s}]}", "sms", "id", 1,
		"direction", str_arg(args, "direction"), "peer", "+34600000001",
		"text", "\x1b[31mred\nline two \xc2\x9b" "2J and a rather long "
			"tail that goes on",
		"status", "delivered", "created_at", "2024-05-01T10:00:00Z"));
}

static void op_sms_get(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)ctx;
	ctl_reply_ok(req, json_pack(
		"{s:{s:O, s:s, s:s, s:[{s:i, s:s, s:i, s:s, s:n},"
		"{s:i, s:s, s:n, s:s, s:s}]}}",
		"sms", "id", json_object_get(args, "id"), "status", "sending",
		"peer", "+34600000001", "parts", "seq", 1, "status", "sent",
		"mr", 17, "modem", "main", "error", "seq", 2, "status",
		"failed", "mr", "modem", "main", "error", "cms_500"));
}

static void op_send(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:i, s:i}", "sms_id", 9, "parts", 2));
}

static void op_modems(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack(
		"{s:[{s:s, s:s, s:s, s:s, s:i, s:b, s:i, s:i}]}", "modems",
		"name", "main", "state", "ready", "model", "SIM800",
		"operator", "Movistar", "signal", 21, "registered", 1, "sent",
		40, "failed", 2));
}

static void op_audit(struct ctl_req *req, json_t *args, void *ctx)
{
	(void)args;
	(void)ctx;
	ctl_reply_ok(req, json_pack("{s:[{s:i, s:s, s:i, s:s}]}", "entries",
				    "id", 1, "op", "account.invite", "uid", 0,
				    "detail", "+34*****222"));
}

/* Never answers (until the server stops): for client timeouts. */
static void op_slow(struct ctl_req *req, json_t *args, void *ctx)
{
	struct fake *f = ctx;

	(void)args;
	if (f->nslow < 4)
		f->slow[f->nslow++] = req;
	else
		ctl_reply_err(req, CTL_ERR_UNAVAILABLE, "busy");
}

static const struct ctl_op fake_ops[] = {
	{ "settings.get", op_settings_get, CTL_ROLE_ADMIN },
	{ "settings.set", op_echo, CTL_ROLE_ADMIN },
	{ "account.invite", op_invite, CTL_ROLE_ADMIN },
	{ "account.invite_many", op_invite_many, CTL_ROLE_ADMIN },
	{ "account.list", op_list, CTL_ROLE_ADMIN },
	{ "account.get", op_get, CTL_ROLE_ADMIN },
	{ "account.claim", op_claim, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.recovery_reset", op_recovery_reset,
	  CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.login", op_login, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "account.recovery_code", op_login, CTL_ROLE_ADMIN | CTL_ROLE_PORTAL },
	{ "sms.list", op_sms_list, CTL_ROLE_ADMIN },
	{ "sms.get", op_sms_get, CTL_ROLE_ADMIN },
	{ "sms.send", op_send, CTL_ROLE_ADMIN },
	{ "modem.list", op_modems, CTL_ROLE_ADMIN },
	{ "audit.list", op_audit, CTL_ROLE_ADMIN },
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fake *f = w->data;

	(void)loop;
	(void)revents;
	if (ctl_server_subscriber_count(f->srv) > 0)
		ctl_broadcast_event(f->srv, "sms.delivered",
				    json_pack("{s:i, s:s}", "sms_id", ++f->ticks,
					      "peer", "+34600000001"));
}

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct ctl_server_opts o;
	char err[256];

	ctl_server_opts_default(&o);
	o.path = f->path;
	f->srv = ctl_server_new(f->loop, &o, err, sizeof(err));
	if (!f->srv || ctl_register(f->srv, fake_ops,
				    sizeof(fake_ops) / sizeof(fake_ops[0]),
				    f) < 0) {
		fprintf(stderr, "fake server: %s\n", err);
		close(f->ready[1]);
		return NULL;
	}
	ev_timer_init(&f->tick, tick_cb, 0.02, 0.02);
	f->tick.data = f;
	ev_timer_start(f->loop, &f->tick);
	ev_async_init(&f->stop, stop_cb);
	ev_async_start(f->loop, &f->stop);
	if (write(f->ready[1], "r", 1) != 1)
		return NULL;
	ev_run(f->loop, 0);
	ctl_server_free(f->srv);
	for (int i = 0; i < f->nslow; i++)
		ctl_reply_err(f->slow[i], CTL_ERR_UNAVAILABLE, "stopping");
	return NULL;
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct pollfd p;
	char c;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ctlcmd.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_int_equal(pipe(f->ready), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	p = (struct pollfd){ .fd = f->ready[0], .events = POLLIN };
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(read(f->ready[0], &c, 1), 1);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	ev_async_send(f->loop, &f->stop);
	pthread_join(f->thread, NULL);
	ev_loop_destroy(f->loop);
	close(f->ready[0]);
	close(f->ready[1]);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- running the CLI ------------------------------------------------------ */

struct run {
	int st;
	char *out, *err;
	size_t outlen, errlen;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static bool cli_progress; /* pretend stderr is a terminal */

/* Runs smsgwctl -s SOCKET words... (| separated) with `input` on stdin. */
static void cli(struct fake *f, const char *input, const char *words,
		struct run *r)
{
	char buf[512], *argv[24], *save = NULL;
	struct ctlcmd_io io;
	int argc = 0;
	FILE *in;

	snprintf(buf, sizeof(buf), "%s", words);
	argv[argc++] = (char *)"smsgwctl";
	if (f) {
		argv[argc++] = (char *)"-s";
		argv[argc++] = f->path;
	}
	for (char *w = strtok_r(buf, "|", &save); w && argc < 23;
	     w = strtok_r(NULL, "|", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	in = input && input[0] ? fmemopen((void *)input, strlen(input), "r")
			       : fopen("/dev/null", "r");
	memset(r, 0, sizeof(*r));
	io = (struct ctlcmd_io){
		.out = open_memstream(&r->out, &r->outlen),
		.err = open_memstream(&r->err, &r->errlen),
		.in = in,
		.progress = cli_progress,
	};
	r->st = ctlcmd_main(argc, argv, &io);
	fclose(io.out);
	fclose(io.err);
	fclose(in);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_cli_ping(void **state)
{
	struct fake *f = *state;
	struct run r;

	cli(f, NULL, "ping", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "smsgwd 0.1.0 (smsgwctl 0.1.0)\n");
	assert_string_equal(r.err, "");
	run_free(&r);
	cli(f, NULL, "--json|ping", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "{\"version\":\"0.1.0\"}\n");
	run_free(&r);
	/* the socket from the environment */
	setenv("SMSGW_SOCKET", f->path, 1);
	cli(NULL, NULL, "ping", &r);
	unsetenv("SMSGW_SOCKET");
	assert_int_equal(r.st, 0);
	run_free(&r);
}

static void test_cli_exit_statuses(void **state)
{
	struct fake *f = *state;
	struct run r;

	cli(f, NULL, "show|+34699", &r);
	assert_int_equal(r.st, 1);
	assert_string_equal(r.err, "smsgwctl: not_found: no account +34699\n");
	assert_string_equal(r.out, "");
	run_free(&r);

	cli(f, NULL, "invite|600111222", &r);
	assert_int_equal(r.st, 1);
	assert_string_equal(r.err,
			    "smsgwctl: invalid_phone: not a phone number\n");
	run_free(&r);

	cli(NULL, NULL, "-s|/nonexistent/dir/control.sock|ping", &r);
	assert_int_equal(r.st, 2);
	assert_string_equal(r.err, "smsgwctl: cannot connect to "
				   "/nonexistent/dir/control.sock: No such "
				   "file or directory\n");
	run_free(&r);

	cli(f, NULL, "frobnicate", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
	run_free(&r);

	cli(f, NULL, "--bogus|ping", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "unknown option --bogus"));
	run_free(&r);

	cli(f, NULL, "update|+34600000001", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "usage: smsgwctl update PHONE --name N"));
	run_free(&r);

	cli(f, NULL, "-t|0|ping", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "bad value for -t: 0"));
	run_free(&r);
	cli(NULL, NULL, "help", &r);
	assert_int_equal(r.st, 0);
	assert_non_null(strstr(r.out, "recovery-code PHONE"));
	run_free(&r);
}

/* Every wait has a timeout: an op that never answers. */
static void test_cli_timeout(void **state)
{
	struct fake *f = *state;
	struct run r;
	struct timespec t0, t1;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cli(f, NULL, "-t|0.3|show|slow", &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "no answer within the timeout"));
	assert_non_null(strstr(r.err, f->path));
	assert_true(secs >= 0.25 && secs < 5);
	run_free(&r);
}

static void test_cli_accounts_paged(void **state)
{
	struct fake *f = *state;
	struct run r;
	json_t *j;

	cli(f, NULL, "accounts", &r);
	assert_int_equal(r.st, 0);
	/* header + every account, over 3 pages of 100 */
	assert_int_equal(count_lines(r.out), 1 + N_ACCOUNTS);
	assert_int_equal(f->list_calls, 3);
	assert_true(strncmp(r.out, "ID   PHONE         NAME        STATE    "
				   "CREATED               CLAIMED\n",
			    70) == 0);
	assert_non_null(strstr(r.out, "\n250  +34600000250  Person 250  "
				      "active   2024-05-01T10:00:00Z  -\n"));
	run_free(&r);

	cli(f, NULL, "accounts|--state|active", &r);
	assert_int_equal(r.st, 0);
	assert_int_equal(count_lines(r.out), 1 + N_ACCOUNTS / 2);
	assert_null(strstr(r.out, "invited"));
	run_free(&r);

	cli(f, NULL, "accounts|--limit|30", &r);
	assert_int_equal(r.st, 0);
	assert_int_equal(count_lines(r.out), 1 + 30);
	run_free(&r);

	cli(f, NULL, "--json|accounts", &r);
	assert_int_equal(r.st, 0);
	assert_int_equal(count_lines(r.out), 1);
	j = json_loads(r.out, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "accounts")),
			 N_ACCOUNTS);
	json_decref(j);
	run_free(&r);

	cli(f, NULL, "accounts|--limit|0", &r);
	assert_int_equal(r.st, 2);
	run_free(&r);
}

static void test_cli_account_commands(void **state)
{
	struct fake *f = *state;
	struct run r;

	cli(f, NULL, "show|+34600000001", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "id:                 1\n"
				   "phone:              +34600000001\n"
				   "name:               Person 1\n"
				   "state:              active\n"
				   "created_at:         2024-05-01T10:00:00Z\n"
				   "claimed_at:         -\n"
				   "session_epoch:      0\n"
				   "claim_sms_sent_24h: 1\n");
	run_free(&r);

	cli(f, NULL, "invite|+34 600 000 002|--name|Ana", &r);
	assert_int_equal(r.st, 0);
	assert_non_null(strstr(r.out, "state:              invited\n"));
	assert_non_null(strstr(r.out, "sms_id: 7\n"));
	run_free(&r);

	cli(f, NULL, "settings", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "phone_profiles:  true\n"
				   "domain_verified: false\n");
	run_free(&r);

	cli(f, NULL, "--json|settings|set|phone_profiles|on", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "{\"phone_profiles\":true}\n");
	run_free(&r);

	cli(f, NULL, "send|+34600000001|hello", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "queued sms 9 (2 parts)\n");
	run_free(&r);

	cli(f, NULL, "modems", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out,
			    "NAME  STATE  MODEL   OPERATOR  SIGNAL  REGISTERED"
			    "  SENT  FAILED\n"
			    "main  ready  SIM800  Movistar  21      true      "
			    "  40    2\n");
	run_free(&r);

	cli(f, NULL, "audit", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "id  op              uid  detail\n"
				   "1   account.invite  0    +34*****222\n");
	run_free(&r);
}

/* What the server sends is shown without control characters. */
static void test_cli_sms(void **state)
{
	struct fake *f = *state;
	struct run r;

	cli(f, NULL, "sms|--in", &r);
	assert_int_equal(r.st, 0);
	assert_null(strchr(r.out, '\x1b'));
	assert_null(strstr(r.out, "\xc2\x9b"));
	assert_non_null(strstr(r.out, "  in   "));
	assert_non_null(strstr(r.out, "  ?[31mred line two ?2J and a rather long ...\n"));
	assert_int_equal(count_lines(r.out), 2);
	run_free(&r);

	cli(f, NULL, "sms|show|5", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "id:     5\n"
				   "status: sending\n"
				   "peer:   +34600000001\n"
				   "\n"
				   "PART  STATUS  MR  MODEM  ERROR\n"
				   "1     sent    17  main   -\n"
				   "2     failed  -   main   cms_500\n");
	run_free(&r);
}

static void test_cli_secrets(void **state)
{
	struct fake *f = *state;
	struct run r;
	json_t *j;

	cli(f, "s3cret pw!\ns3cret pw!\n", "claim|tok", &r);
	assert_int_equal(r.st, 0);
	assert_non_null(strstr(r.out, "state:              active\n"));
	assert_null(strstr(r.out, "s3cret"));
	assert_null(strstr(r.err, "s3cret"));
	run_free(&r);

	cli(f, "s3cret pw!\nother\n", "claim|tok", &r);
	assert_int_equal(r.st, 1);
	assert_string_equal(r.err, "smsgwctl: the passwords do not match\n");
	run_free(&r);

	cli(f, "only once\n", "claim|tok", &r);
	assert_int_equal(r.st, 2);
	assert_string_equal(r.err, "smsgwctl: no input\n");
	run_free(&r);

	cli(f, "ABCD-1234\nnewpass123\nnewpass123\nyes\n",
	    "--json|recover|+34600000001", &r);
	assert_int_equal(r.st, 0);
	j = json_loads(r.out, 0, NULL);
	assert_true(json_is_true(json_object_get(j, "logged_out")));
	json_decref(j);
	run_free(&r);

	cli(f, "ABCD-1234\nnewpass123\nnewpass123\n",
	    "--json|recover|+34600000001|--keep-others", &r);
	assert_int_equal(r.st, 0);
	j = json_loads(r.out, 0, NULL);
	assert_true(json_is_false(json_object_get(j, "logged_out")));
	json_decref(j);
	run_free(&r);

	cli(f, "ABCD-1234\nnewpass123\nnewpass123\nmaybe\n",
	    "recover|+34600000001", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "expected y or n"));
	run_free(&r);

	cli(f, "WRONG\nnewpass123\nnewpass123\nn\n", "recover|+34600000001",
	    &r);
	assert_int_equal(r.st, 1);
	assert_string_equal(r.err, "smsgwctl: invalid_code: wrong code\n");
	run_free(&r);

	cli(f, "pw\n", "login|+34600000001", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "account_id:    1\nsession_epoch: 3\n");
	run_free(&r);

	cli(f, "nope\n", "login|+34600000001", &r);
	assert_int_equal(r.st, 1);
	assert_string_equal(r.err,
			    "smsgwctl: invalid_password: wrong password\n");
	run_free(&r);

	cli(f, "pw\r\n", "recovery-code|+34600000001", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "7K3M9Q2X4T\n");
	run_free(&r);
}

static void test_cli_watch(void **state)
{
	struct fake *f = *state;
	struct run r;
	char *line;

	cli(f, NULL, "watch|--count|3", &r);
	assert_int_equal(r.st, 0);
	assert_int_equal(count_lines(r.out), 3);
	assert_non_null(strstr(r.out, " sms.delivered sms_id="));
	assert_non_null(strstr(r.out, " peer=+34600000001\n"));
	run_free(&r);

	cli(f, NULL, "--json|watch|--count|2", &r);
	assert_int_equal(r.st, 0);
	assert_int_equal(count_lines(r.out), 2);
	line = strtok(r.out, "\n");
	while (line) {
		json_t *j = json_loads(line, 0, NULL);

		assert_string_equal(json_string_value(json_object_get(j, "event")),
				    "sms.delivered");
		json_decref(j);
		line = strtok(NULL, "\n");
	}
	run_free(&r);
}

static char *write_csv(struct fake *f, const char *name, int ok, int dup,
		       int bad, int empty)
{
	static char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "phone,name\r\n");
	for (int i = 0; i < ok; i++)
		fprintf(fp, "+34 600 %06d,\"Person, %d\"\r\n", i, i);
	for (int i = 0; i < dup; i++)
		fprintf(fp, "+dup%d,Dup\r\n", i);
	for (int i = 0; i < bad; i++)
		fprintf(fp, "600%06d,Bad\r\n", i);
	for (int i = 0; i < empty; i++)
		fprintf(fp, ",Nobody\r\n");
	fclose(fp);
	return path;
}

static void test_cli_invite_file(void **state)
{
	struct fake *f = *state;
	char words[300];
	struct run r;
	json_t *j;
	char *path;

	path = write_csv(f, "all.csv", 1100, 0, 0, 0);
	snprintf(words, sizeof(words), "invite|--file|%s", path);
	cli(f, NULL, words, &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "invited 1100 of 1100\n");
	assert_string_equal(r.err, ""); /* no progress bar: not a terminal */
	assert_int_equal(f->invite_many_calls, 3);
	run_free(&r);

	/* On a terminal, a progress bar redrawn after each batch. */
	cli_progress = true;
	cli(f, NULL, words, &r);
	cli_progress = false;
	assert_int_equal(r.st, 0);
	assert_non_null(strstr(r.err, "\rinviting [------------------------------"
				      "] 0/1100"));
	assert_non_null(strstr(r.err, "\rinviting [#############-----------------"
				      "] 500/1100"));
	assert_non_null(strstr(r.err, "\rinviting [##############################"
				      "] 1100/1100\n"));
	run_free(&r);
	unlink(path);

	path = write_csv(f, "mixed.csv", 10, 3, 2, 1);
	snprintf(words, sizeof(words), "invite|--file|%s", path);
	cli(f, NULL, words, &r);
	assert_int_equal(r.st, 1);
	/* codes in the order they first appear in the file */
	assert_string_equal(r.out, "invited 10 of 16; 6 failed: "
				   "already_exists 3, invalid_phone 3\n");
	assert_non_null(strstr(r.err, "smsgwctl: line 12: +dup0: "
				      "already_exists: already invited\n"));
	assert_non_null(strstr(r.err, "smsgwctl: line 17: : invalid_phone: "
				      "empty phone number\n"));
	assert_non_null(strstr(r.err, "smsgwctl: line 15: 600000000: "
				      "invalid_phone: no country code\n"));
	run_free(&r);

	snprintf(words, sizeof(words), "--json|invite|--file|%s", path);
	cli(f, NULL, words, &r);
	assert_int_equal(r.st, 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "invited")), 10);
	assert_int_equal(json_integer_value(json_object_get(j, "failed")), 6);
	assert_int_equal(json_array_size(json_object_get(j, "results")), 16);
	json_decref(j);
	run_free(&r);
	unlink(path);

	/* the file from stdin */
	cli(f, "phone,name\n+34600000009,Zoe\n", "invite|--file|-", &r);
	assert_int_equal(r.st, 0);
	assert_string_equal(r.out, "invited 1 of 1\n");
	run_free(&r);

	cli(f, NULL, "invite|--file|/nonexistent.csv", &r);
	assert_int_equal(r.st, 2);
	assert_string_equal(r.err, "smsgwctl: /nonexistent.csv: No such file "
				   "or directory\n");
	run_free(&r);

	cli(f, "name\nAna\n", "invite|--file|-", &r);
	assert_int_equal(r.st, 2);
	assert_non_null(strstr(r.err, "the header has no phone column"));
	run_free(&r);

	cli(f, NULL, "invite|+34600|--file|x.csv", &r);
	assert_int_equal(r.st, 2);
	run_free(&r);
}

/* The client module alone: a refusal with a null id is the answer to the
 * one request in flight; events in between are skipped. */
static void test_client(void **state)
{
	struct fake *f = *state;
	struct ctlc_resp resp;
	char err[256], *big;
	struct ctlc *c = ctlc_open(f->path, 1000, err, sizeof(err));
	json_t *ev;

	assert_non_null(c);
	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'a', 69999);
	big[69999] = '\0';
	assert_int_equal(ctlc_call(c, "sms.send",
				   json_pack("{s:s, s:s}", "to", "+34600",
					     "text", big),
				   5000, &resp),
			 0);
	free(big);
	assert_false(resp.ok);
	assert_string_equal(resp.code, "request_too_large");
	ctlc_resp_clear(&resp);
	/* the connection still works */
	assert_int_equal(ctlc_call(c, "ping", NULL, 5000, &resp), 0);
	assert_true(resp.ok);
	ctlc_resp_clear(&resp);
	/* events while waiting for an answer are skipped, then read */
	assert_int_equal(ctlc_call(c, "events.subscribe", NULL, 5000, &resp), 0);
	ctlc_resp_clear(&resp);
	usleep(100000); /* some ticks queue up */
	assert_int_equal(ctlc_call(c, "ping", NULL, 5000, &resp), 0);
	assert_string_equal(json_string_value(json_object_get(resp.result,
							      "version")),
			    "0.1.0");
	ctlc_resp_clear(&resp);
	assert_int_equal(ctlc_next(c, 5000, &ev), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "event")),
			    "sms.delivered");
	json_decref(ev);
	ctlc_free(c);
	assert_null(ctlc_open("/nonexistent/x.sock", 100, err, sizeof(err)));
	assert_string_equal(err, "cannot connect to /nonexistent/x.sock: No "
				 "such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_people_parse),
		cmocka_unit_test(test_batches),
#define T(fn) cmocka_unit_test_setup_teardown(fn, fake_setup, fake_teardown)
		T(test_client),
		T(test_cli_ping),
		T(test_cli_exit_statuses),
		T(test_cli_timeout),
		T(test_cli_accounts_paged),
		T(test_cli_account_commands),
		T(test_cli_sms),
		T(test_cli_secrets),
		T(test_cli_watch),
		T(test_cli_invite_file),
#undef T
	};

	log_init("test_ctlcmd", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
