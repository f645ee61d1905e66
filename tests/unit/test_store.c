/* Tests for daemon/store: open/refuse, migrations, outbox lifecycle, report
 * matching, inbound reassembly, JSON views, audit, settings, transactions,
 * disk full / I/O errors, and a 100k-row scaling check that prints per-op
 * costs (no timing is asserted) and asserts the hot queries use indexes.
 *
 * Databases live under a mkdtemp() directory in $TMPDIR (default /tmp).
 * sqlite3.h is included here only to build fixture files independently of
 * the store (a foreign database). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/store.h"

#define PEER "+34600111222"
#define PEER2 "+34600999999"
#define PEER_NOPLUS "34600111222"
#define PEER_TAIL "600111222"

/* --- fixtures ---------------------------------------------------------------- */

struct fx {
	char dir[256];
	char db[300];
};

static int rm_entry(const char *p, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/smsgw-store-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/%s", f->dir, STORE_FILE);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	chmod(f->dir, 0700);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct store *open_ok(const struct fx *f)
{
	char err[STORE_ERR_MAX] = "";
	struct store *s = NULL;
	int r = store_open(f->dir, &s, err, sizeof(err));

	if (r)
		print_error("store_open: %d %s\n", r, err);
	assert_int_equal(r, 0);
	assert_non_null(s);
	return s;
}

/* Reads a whole file; *len set. NULL when missing. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(n ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int64_t pragma(struct store *s, const char *sql)
{
	struct store_stmt *st;
	int64_t v;

	assert_int_equal(store_stmt_prepare(s, sql, &st), 0);
	assert_int_equal(store_stmt_step(st), 1);
	v = store_stmt_column_int64(st, 0);
	store_stmt_reset(st);
	store_stmt_free(st);
	return v;
}

/* Opening must fail with `want`, a message naming the file and containing
 * `why`, and leave the database's bytes exactly as they were. */
static void expect_refused(const struct fx *f, int want, const char *why)
{
	char err[STORE_ERR_MAX] = "";
	struct store *s = (struct store *)0x1;
	unsigned char *before, *after;
	size_t lb = 0, la = 0;
	int r;

	before = slurp(f->db, &lb);
	r = store_open(f->dir, &s, err, sizeof(err));
	after = slurp(f->db, &la);
	if (r != want || !strstr(err, why))
		print_error("got %d '%s'\n", r, err);
	assert_int_equal(r, want);
	assert_ptr_equal(s, (struct store *)0x1); /* untouched */
	assert_non_null(strstr(err, why));
	assert_non_null(strstr(err, f->dir));
	assert_int_equal(lb, la);
	if (lb)
		assert_memory_equal(before, after, lb);
	assert_true(store_error_unavailable(r) || r == -ENOTSUP ||
		    r == -EPROTO || r == -ENOENT);
	free(before);
	free(after);
}

/* Captures the log through a memory stream. */
struct capture {
	char *buf;
	size_t len;
	FILE *fp;
};

static void capture_start(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->buf, &c->len);
	assert_non_null(c->fp);
	log_set_stream(c->fp);
}

static char *capture_end(struct capture *c)
{
	fflush(c->fp);
	log_set_stream(NULL);
	fclose(c->fp);
	return c->buf;
}

/* Queues an SMS of n parts with fake PDUs; returns its id. */
static int64_t queue(struct store *s, const char *peer, size_t n,
		     enum store_priority prio, enum store_kind kind,
		     const char *text)
{
	struct store_pdu parts[8];
	char hex[8][32];
	struct store_outgoing m = {
		.peer = peer, .text = text, .kind = kind, .priority = prio,
		.account_id = 0, .encoding = "gsm7", .parts = parts, .nparts = n,
	};
	int64_t id = 0;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		snprintf(hex[i], sizeof(hex[i]), "0041000B91%02zX", i);
		parts[i].hex = hex[i];
		parts[i].tpdu_len = 20 + (int)i;
	}
	assert_int_equal(store_sms_queue(s, &m, &id), 0);
	assert_true(id > 0);
	return id;
}

static int64_t queue1(struct store *s, enum store_priority prio)
{
	return queue(s, PEER, 1, prio, prio == STORE_PRIO_ACCOUNT
		     ? STORE_KIND_INVITE : STORE_KIND_MANUAL, "hello");
}

static int64_t due_id(struct store *s, int64_t now)
{
	struct store_sms m;
	int64_t id;
	int r = store_sms_next_due(s, now, &m);

	if (r == -ENOENT)
		return 0;
	assert_int_equal(r, 0);
	id = m.id;
	store_sms_clear(&m);
	return id;
}

static json_t *get(struct store *s, int64_t id)
{
	json_t *o = NULL;

	assert_int_equal(store_sms_get(s, id, &o), 0);
	assert_non_null(o);
	return o;
}

static const char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void assert_status(struct store *s, int64_t id, const char *status)
{
	json_t *o = get(s, id);

	assert_string_equal(get_str(o, "status"), status);
	json_decref(o);
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- open, migrations, refusals --------------------------------------------- */

static void test_create_and_reopen(void **state)
{
	struct fx *f = *state;
	struct capture c;
	struct store *s;
	char *log;
	int64_t id;
	json_t *o;

	log_init("t", LOG_LVL_INFO);
	capture_start(&c);
	s = open_ok(f);
	log = capture_end(&c);
	assert_non_null(strstr(log, "schema migrated to version 1"));
	free(log);
	assert_true(exists(f->db));
	assert_string_equal(store_path(s), f->db);
	assert_int_equal(pragma(s, "PRAGMA user_version"), store_schema_version());
	assert_int_equal(pragma(s, "PRAGMA application_id"), 0x736d7367);
	assert_int_equal(pragma(s, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(pragma(s, "PRAGMA foreign_keys"), 1);
	assert_int_equal(pragma(s, "SELECT journal_mode = 'wal' FROM "
				   "pragma_journal_mode"), 1);
	id = queue1(s, STORE_PRIO_BULK);
	store_free(s);

	capture_start(&c);
	s = open_ok(f);
	log = capture_end(&c);
	assert_null(strstr(log ? log : "", "migrated")); /* applied once */
	free(log);
	assert_int_equal(pragma(s, "PRAGMA user_version"), store_schema_version());
	o = get(s, id);
	assert_string_equal(get_str(o, "text"), "hello");
	json_decref(o);
	store_free(s);
	store_free(NULL);
	log_set_level(LOG_LVL_WARN);
}

static void test_missing_dir_refused(void **state)
{
	struct fx *f = *state;
	char dir[400], err[STORE_ERR_MAX] = "";
	struct store *s = NULL;

	snprintf(dir, sizeof(dir), "%s/nope", f->dir);
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "create it first"));
	assert_false(exists(dir)); /* never created */
}

static void test_newer_version_refused(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 store_schema_version() + 1);
	assert_int_equal(store_exec(s, sql), 0);
	store_free(s);
	expect_refused(f, -ENOTSUP, "newer than this smsgwd");
}

static void test_random_bytes_refused(void **state)
{
	struct fx *f = *state;
	unsigned char junk[8192];
	uint32_t x = 2463534242u;
	char wal[320];

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		junk[i] = (unsigned char)x;
	}
	spit(f->db, junk, sizeof(junk));
	expect_refused(f, -EUCLEAN, "not an SQLite 3 database");
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	assert_false(exists(wal));
}

static void test_truncated_refused(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	unsigned char *db;
	size_t len;

	for (int i = 0; i < 50; i++)
		queue1(s, STORE_PRIO_BULK);
	store_free(s);
	db = slurp(f->db, &len);
	assert_true(len > 4096);
	spit(f->db, db, 60); /* inside the header */
	expect_refused(f, -EUCLEAN, "truncated to 60 bytes");
	spit(f->db, db, len - 1000); /* mid-page */
	expect_refused(f, -EUCLEAN, "not a whole number");
	free(db);
}

static void test_damaged_pages_refused(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	unsigned char *db;
	size_t len, page;

	for (int i = 0; i < 400; i++)
		queue(s, PEER, 3, STORE_PRIO_BULK, STORE_KIND_MANUAL,
		      "a longer text to fill a few pages of the sms table");
	store_free(s);
	db = slurp(f->db, &len);
	page = (size_t)db[16] << 8 | db[17];
	assert_true(len >= 8 * page);
	/* Scribble over pages 3.. with a pattern that is no b-tree page. */
	memset(db + 2 * page, 0x5a, len - 2 * page);
	spit(f->db, db, len);
	expect_refused(f, -EUCLEAN, "damaged");
	free(db);
}

static void test_foreign_database_refused(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x); INSERT INTO t "
				      "VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_refused(f, -EPROTO, "not an smsgw database");

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 42",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_refused(f, -EPROTO, "application_id 42");
}

/* Checks a refusal as an unprivileged user (root may write anything): in a
 * child that drops to nobody when we are root. Returns the child's verdict
 * (0 when the refusal was as expected). */
static int refused_as_nobody(const struct fx *f, const char *why)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		char err[STORE_ERR_MAX] = "";
		struct store *s = NULL;
		int r;

		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(10);
		r = store_open(f->dir, &s, err, sizeof(err));
		if (r != -EROFS)
			_exit(11);
		if (!strstr(err, why) || !strstr(err, f->dir))
			_exit(12);
		_exit(s ? 13 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void test_readonly_refused(void **state)
{
	struct fx *f = *state;
	unsigned char *before, *after;
	size_t lb, la;

	store_free(open_ok(f));
	before = slurp(f->db, &lb);

	/* Read-only file in a writable directory. */
	assert_int_equal(chmod(f->dir, 0777), 0);
	assert_int_equal(chmod(f->db, 0444), 0);
	assert_int_equal(refused_as_nobody(f, "database file is not writable"), 0);

	/* Writable file in a read-only directory: WAL cannot work. */
	assert_int_equal(chmod(f->db, 0666), 0);
	assert_int_equal(chmod(f->dir, 0555), 0);
	assert_int_equal(refused_as_nobody(f, "state directory is not writable"), 0);

	after = slurp(f->db, &la);
	assert_int_equal(lb, la);
	assert_memory_equal(before, after, lb);
	free(before);
	free(after);

	/* No database yet, read-only directory: nothing is created. */
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_int_equal(unlink(f->db), 0);
	assert_int_equal(chmod(f->dir, 0555), 0);
	assert_int_equal(refused_as_nobody(f, "state directory is not writable"), 0);
	assert_false(exists(f->db));
	assert_int_equal(chmod(f->dir, 0700), 0);
}

/* --- outbox ------------------------------------------------------------------- */

static void test_next_due_ordering(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	int64_t a, b, c, d, now, at;
	json_t *o;

	assert_int_equal(due_id(s, store_now_ms()), 0);
	assert_int_equal(store_sms_next_attempt(s, &at), -ENOENT);
	a = queue1(s, STORE_PRIO_BULK);
	b = queue1(s, STORE_PRIO_ACCOUNT);
	c = queue1(s, STORE_PRIO_BULK);
	now = store_now_ms();

	/* account before bulk, then oldest first */
	assert_int_equal(due_id(s, now), b);
	assert_int_equal(store_sms_mark_sending(s, b, "m1"), 0);
	assert_int_equal(due_id(s, now), a);

	/* a retries in a minute: c goes first, a only once due */
	assert_int_equal(store_sms_mark_sending(s, a, "m1"), 0);
	assert_int_equal(store_sms_retry(s, a, now + 60000, "+CMS ERROR: 38"), 0);
	assert_int_equal(due_id(s, now), c);
	assert_int_equal(store_sms_mark_sending(s, c, "m2"), 0);
	assert_int_equal(due_id(s, now), 0);
	assert_int_equal(store_sms_next_attempt(s, &at), 0);
	assert_int_equal(at, now + 60000);
	assert_int_equal(due_id(s, now + 60000), a);

	o = get(s, a);
	assert_string_equal(get_str(o, "status"), "queued");
	assert_string_equal(get_str(o, "error"), "+CMS ERROR: 38");
	json_decref(o);

	/* a later account SMS overtakes a due bulk one */
	d = queue1(s, STORE_PRIO_ACCOUNT);
	assert_int_equal(due_id(s, now + 60000), d);

	/* only queued/sending SMS can be marked */
	assert_int_equal(store_sms_failed(s, d, "cancelled"), 0);
	assert_int_equal(store_sms_mark_sending(s, d, "m1"), -ENOENT);
	assert_int_equal(store_sms_mark_sending(s, 9999, "m1"), -ENOENT);
	store_free(s);
}

static void test_queue_validation(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_pdu p = { "0011", 10 };
	struct store_outgoing m = {
		.peer = PEER, .text = "x", .kind = STORE_KIND_MANUAL,
		.priority = STORE_PRIO_BULK, .parts = &p, .nparts = 1,
	};
	int64_t id = -7;

	m.nparts = 0;
	assert_int_equal(store_sms_queue(s, &m, &id), -EINVAL);
	m.nparts = 1;
	m.priority = (enum store_priority)5;
	assert_int_equal(store_sms_queue(s, &m, &id), -EINVAL);
	m.priority = STORE_PRIO_BULK;
	p.tpdu_len = 0;
	assert_int_equal(store_sms_queue(s, &m, &id), -EINVAL);
	assert_int_equal(id, -7);
	p.tpdu_len = 10;
	m.account_id = 42;
	assert_int_equal(store_sms_queue(s, &m, &id), 0);
	assert_true(id > 0);
	store_free(s);
}

/* A crash mid-send (the store closed with an SMS 'sending') resumes it
 * first on reopen, from the first part without an mr, even ahead of a
 * higher-priority queued SMS; each orphan is handed out once. */
static void test_resume_sending_after_reopen(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_sms m;
	int64_t x, y;

	x = queue(s, PEER, 3, STORE_PRIO_BULK, STORE_KIND_MANUAL, "abc");
	assert_int_equal(due_id(s, store_now_ms()), x);
	assert_int_equal(store_sms_mark_sending(s, x, "m1"), 0);
	assert_int_equal(store_part_sent(s, x, 1, "m1", 10, store_now_ms()), 0);
	y = queue1(s, STORE_PRIO_ACCOUNT);
	store_free(s);

	s = open_ok(f);
	assert_int_equal(store_sms_next_due(s, store_now_ms(), &m), 0);
	assert_int_equal(m.id, x);
	assert_true(m.resumed);
	assert_string_equal(m.peer, PEER);
	assert_int_equal(m.attempts, 1);
	assert_int_equal(m.nparts, 3);
	assert_int_equal(m.next_part, 1);
	assert_int_equal(m.parts[0].mr, 10);
	assert_int_equal(m.parts[0].status, STORE_PART_SENT);
	assert_int_equal(m.parts[1].mr, -1);
	assert_int_equal(m.parts[1].seq, 2);
	assert_int_equal(m.parts[1].tpdu_len, 21);
	assert_string_equal(m.parts[1].pdu, "0041000B9101");
	store_sms_clear(&m);
	assert_int_equal(store_sms_mark_sending(s, x, "m2"), 0);

	/* not handed out twice; then the queued one */
	assert_int_equal(store_sms_next_due(s, store_now_ms(), &m), 0);
	assert_int_equal(m.id, y);
	assert_false(m.resumed);
	assert_int_equal(m.next_part, 0);
	store_sms_clear(&m);

	/* finish x: sms_sent refuses while parts are unsent */
	assert_int_equal(store_sms_sent(s, x), -EINVAL);
	assert_int_equal(store_part_sent(s, x, 2, "m2", 11, store_now_ms()), 0);
	assert_int_equal(store_part_sent(s, x, 3, "m2", 12, store_now_ms()), 0);
	assert_int_equal(store_sms_sent(s, x), 0);
	assert_status(s, x, "sent");
	assert_int_equal(store_sms_sent(s, 4242), -ENOENT);
	store_free(s);
}

/* The mr of a part is durable when store_part_sent returns: a process that
 * dies right after (no close, no checkpoint) loses nothing. */
static void test_part_mr_survives_crash(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_sms m;
	int64_t x = queue(s, PEER, 2, STORE_PRIO_BULK, STORE_KIND_MANUAL, "ab");
	pid_t pid;
	int status;

	store_free(s);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[STORE_ERR_MAX];

		if (store_open(f->dir, &s, err, sizeof(err)) ||
		    store_sms_mark_sending(s, x, "m1") ||
		    store_part_sent(s, x, 1, "m1", 77, store_now_ms()))
			_exit(1);
		_exit(0); /* "crash": no store_free */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	s = open_ok(f);
	assert_int_equal(store_sms_next_due(s, store_now_ms(), &m), 0);
	assert_int_equal(m.id, x);
	assert_true(m.resumed);
	assert_int_equal(m.parts[0].mr, 77);
	assert_int_equal(m.next_part, 1);
	store_sms_clear(&m);
	store_free(s);
}

static void test_retry_and_attempts(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	int64_t x = queue(s, PEER, 2, STORE_PRIO_BULK, STORE_KIND_MANUAL, "ab");
	int64_t now = store_now_ms();
	struct store_sms m;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_sms_mark_sending(s, x, "m1"), 0);
		if (i == 0)
			assert_int_equal(store_part_sent(s, x, 1, "m1", 5, now), 0);
		assert_int_equal(store_sms_retry(s, x, now + 1000 * (i + 1),
						 "timeout"), 0);
	}
	assert_int_equal(due_id(s, now + 2999), 0);
	assert_int_equal(store_sms_next_due(s, now + 3000, &m), 0);
	assert_int_equal(m.attempts, 3);
	assert_int_equal(m.next_part, 1); /* part 1 keeps its mr */
	assert_int_equal(m.parts[0].mr, 5);
	store_sms_clear(&m);
	assert_int_equal(store_sms_retry(s, 999, now, "x"), -ENOENT);
	store_free(s);
}

static void test_failed_and_expiry(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	int64_t t0 = store_now_ms(), a, b, c, *ids = NULL;
	size_t n = 99;
	json_t *o, *parts;

	a = queue(s, PEER, 2, STORE_PRIO_BULK, STORE_KIND_MANUAL, "ab");
	b = queue1(s, STORE_PRIO_BULK);
	c = queue1(s, STORE_PRIO_BULK);
	assert_int_equal(store_sms_mark_sending(s, b, "m1"), 0);

	assert_int_equal(store_sms_expire(s, t0 - 1, &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	ids = NULL;
	assert_int_equal(store_sms_expire(s, store_now_ms() + 1, &ids, &n), 0);
	assert_int_equal(n, 2); /* a and c; b is being sent */
	assert_true((ids[0] == a && ids[1] == c) || (ids[0] == c && ids[1] == a));
	free(ids);

	o = get(s, a);
	assert_string_equal(get_str(o, "status"), "failed");
	assert_string_equal(get_str(o, "error"), "expired");
	parts = json_object_get(o, "parts");
	assert_string_equal(get_str(json_array_get(parts, 1), "status"), "failed");
	json_decref(o);
	assert_status(s, b, "sending");
	assert_int_equal(due_id(s, store_now_ms() + 10), 0);

	assert_int_equal(store_sms_failed(s, b, "+CMS ERROR: 500"), 0);
	o = get(s, b);
	assert_string_equal(get_str(o, "error"), "+CMS ERROR: 500");
	json_decref(o);
	assert_int_equal(store_sms_failed(s, b, "again"), -ENOENT);
	store_free(s);
}

/* --- status reports ----------------------------------------------------------- */

static int report(struct store *s, const char *modem, int mr,
		  const char *to, enum store_report_class cls, int64_t now,
		  struct store_match *m)
{
	struct store_report r = { modem, mr, to, cls, cls == STORE_REPORT_FAILED
				  ? 0x41 : cls == STORE_REPORT_PENDING ? 0x20 : 0 };

	return store_report_match(s, &r, 3600 * 1000, now, m);
}

static void test_report_matching(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	const int64_t t = 1700000000000;
	struct store_match m;
	int64_t x, y, z;
	json_t *o, *parts;

	x = queue(s, PEER, 2, STORE_PRIO_BULK, STORE_KIND_MANUAL, "ab");
	assert_int_equal(store_sms_mark_sending(s, x, "m1"), 0);
	assert_int_equal(store_part_sent(s, x, 1, "m1", 7, t), 0);
	assert_int_equal(store_part_sent(s, x, 2, "m1", 8, t + 10), 0);
	assert_int_equal(store_sms_sent(s, x), 0);

	/* wrong recipient, modem, mr, or outside the window: no match */
	assert_int_equal(report(s, "m1", 7, PEER2, STORE_REPORT_DELIVERED,
				t + 5000, &m), -ENOENT);
	assert_int_equal(report(s, "m2", 7, PEER, STORE_REPORT_DELIVERED,
				t + 5000, &m), -ENOENT);
	assert_int_equal(report(s, "m1", 9, PEER, STORE_REPORT_DELIVERED,
				t + 5000, &m), -ENOENT);
	assert_int_equal(report(s, "m1", 7, PEER, STORE_REPORT_DELIVERED,
				t + 3600 * 1000 + 1, &m), -ENOENT);
	assert_int_equal(report(s, "m1", 7, PEER, STORE_REPORT_DELIVERED,
				t - 1, &m), -ENOENT);

	/* pending: matched, nothing final */
	assert_int_equal(report(s, "m1", 7, PEER, STORE_REPORT_PENDING,
				t + 1000, &m), 0);
	assert_int_equal(m.sms_id, x);
	assert_false(m.final);
	assert_int_equal(m.sms_status, STORE_SENT);

	/* part 1 delivered (recipient without '+'): SMS not yet */
	assert_int_equal(report(s, "m1", 7, PEER_NOPLUS, STORE_REPORT_DELIVERED,
				t + 2000, &m), 0);
	assert_int_equal(m.seq, 1);
	assert_false(m.final);
	assert_int_equal(m.sms_status, STORE_SENT);
	assert_int_equal(report(s, "m1", 7, PEER, STORE_REPORT_DELIVERED,
				t + 2001, &m), -ENOENT); /* already reported */

	/* part 2 delivered: the whole SMS is */
	assert_int_equal(report(s, "m1", 8, PEER, STORE_REPORT_DELIVERED,
				t + 3000, &m), 0);
	assert_int_equal(m.seq, 2);
	assert_true(m.final);
	assert_int_equal(m.sms_status, STORE_DELIVERED);
	o = get(s, x);
	assert_string_equal(get_str(o, "status"), "delivered");
	parts = json_object_get(o, "parts");
	assert_string_equal(get_str(json_array_get(parts, 0), "status"), "delivered");
	assert_string_equal(get_str(json_array_get(parts, 1), "status"), "delivered");
	json_decref(o);

	/* mr 7 reused on m1 for the same number: the latest send matches */
	y = queue1(s, STORE_PRIO_BULK);
	z = queue1(s, STORE_PRIO_BULK);
	assert_int_equal(store_sms_mark_sending(s, y, "m1"), 0);
	assert_int_equal(store_part_sent(s, y, 1, "m1", 7, t + 100000), 0);
	assert_int_equal(store_sms_sent(s, y), 0);
	assert_int_equal(store_sms_mark_sending(s, z, "m1"), 0);
	assert_int_equal(store_part_sent(s, z, 1, "m1", 7, t + 200000), 0);
	assert_int_equal(report(s, "m1", 7, PEER, STORE_REPORT_FAILED,
				t + 200500, &m), 0);
	assert_int_equal(m.sms_id, z);
	assert_true(m.final); /* failed at once, even while 'sending' */
	assert_int_equal(m.sms_status, STORE_FAILED);
	o = get(s, z);
	assert_string_equal(get_str(o, "status"), "failed");
	assert_non_null(strstr(get_str(o, "error"), "not delivered"));
	parts = json_object_get(o, "parts");
	assert_non_null(strstr(get_str(json_array_get(parts, 0), "error"),
			       "TP-ST 0x41"));
	json_decref(o);
	assert_int_equal(store_sms_sent(s, z), 0); /* no downgrade */
	assert_status(s, z, "failed");
	assert_status(s, y, "sent");
	store_free(s);
}

/* --- inbox --------------------------------------------------------------------- */

static int add_part(struct store *s, const char *sender, int ref, int total,
		    int seq, const char *text, enum store_inbox_result *res,
		    char **joined)
{
	struct store_inbox_part p = { sender, ref, total, seq, text };
	int r = store_tx_begin(s);

	assert_int_equal(r, 0);
	*joined = NULL;
	r = store_inbox_part_add(s, &p, res, joined);
	if (!r && *res == STORE_INBOX_COMPLETE)
		r = store_sms_receive(s, sender, *joined, false, 0, NULL);
	if (r)
		store_tx_rollback(s);
	else
		r = store_tx_commit(s);
	return r;
}

static void test_inbox_multipart(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_inbox_part p = { PEER, 5, 3, 1, "x" };
	enum store_inbox_result res;
	struct store_counts cnt;
	char *text;
	json_t *list;
	int64_t next;

	/* outside a transaction: refused */
	assert_int_equal(store_inbox_part_add(s, &p, &res, &text), -EINVAL);

	assert_int_equal(add_part(s, PEER, 5, 3, 1, "Hello ", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_PENDING);
	store_free(s);

	s = open_ok(f); /* a restart mid-set loses nothing */
	assert_int_equal(store_counts(s, &cnt), 0);
	assert_int_equal(cnt.inbox_partial, 1);
	assert_int_equal(add_part(s, PEER, 5, 3, 1, "Hello ", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_DUPLICATE);
	assert_int_equal(add_part(s, PEER, 5, 3, 3, "world!", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_PENDING);
	/* same key, other text, set still open: the first copy is kept */
	assert_int_equal(add_part(s, PEER, 5, 3, 3, "WORLD?", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_DUPLICATE);
	/* same ref from another sender is another set */
	assert_int_equal(add_part(s, PEER2, 5, 3, 2, "other", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_PENDING);
	assert_int_equal(add_part(s, PEER, 5, 3, 2, "big ", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_COMPLETE);
	assert_string_equal(text, "Hello big world!");
	free(text);

	/* a duplicate after completion (modem re-read) is still ignored */
	assert_int_equal(add_part(s, PEER, 5, 3, 2, "big ", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_DUPLICATE);
	/* the same reference with other text: a new message */
	assert_int_equal(add_part(s, PEER, 5, 3, 1, "Again ", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_PENDING);

	assert_int_equal(store_sms_list(s, STORE_IN, 10, 0, &list, &next), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(get_str(json_array_get(list, 0), "text"),
			    "Hello big world!");
	assert_string_equal(get_str(json_array_get(list, 0), "status"), "received");
	assert_false(json_is_true(json_object_get(json_array_get(list, 0),
						  "incomplete")));
	json_decref(list);
	assert_int_equal(store_counts(s, &cnt), 0);
	assert_int_equal(cnt.inbox_partial, 2); /* PEER2's and "Again " */
	assert_int_equal(cnt.sms[STORE_RECEIVED], 1);
	store_free(s);
}

static void test_inbox_expire(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	enum store_inbox_result res;
	struct store_inbox_set *sets = NULL;
	size_t n = 9;
	char *text;
	int64_t id;
	json_t *o;

	assert_int_equal(store_inbox_expire(s, 0, &sets, &n), -EINVAL);
	assert_int_equal(add_part(s, PEER, 200, 4, 2, "two", &res, &text), 0);
	assert_int_equal(add_part(s, PEER, 200, 4, 3, "three", &res, &text), 0);
	assert_int_equal(add_part(s, PEER2, 1, 2, 1, "a", &res, &text), 0);
	assert_int_equal(add_part(s, PEER2, 1, 2, 2, "b", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_COMPLETE);
	free(text);

	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_inbox_expire(s, store_now_ms() - 60000, &sets, &n), 0);
	assert_int_equal(n, 0);
	store_inbox_sets_free(sets, n);
	assert_int_equal(store_inbox_expire(s, store_now_ms() + 1, &sets, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(sets[0].sender, PEER);
	assert_string_equal(sets[0].text, "[...]twothree[...]");
	assert_int_equal(store_sms_receive(s, sets[0].sender, sets[0].text,
					   true, 0, &id), 0);
	store_inbox_sets_free(sets, n);
	assert_int_equal(store_tx_commit(s), 0);

	o = get(s, id);
	assert_true(json_is_true(json_object_get(o, "incomplete")));
	assert_string_equal(get_str(o, "direction"), "in");
	assert_int_equal(json_array_size(json_object_get(o, "parts")), 0);
	json_decref(o);

	/* the done set was forgotten too: the same part is new again */
	assert_int_equal(add_part(s, PEER2, 1, 2, 1, "a", &res, &text), 0);
	assert_int_equal(res, STORE_INBOX_PENDING);
	store_free(s);
}

/* --- views -------------------------------------------------------------------- */

static bool iso_ok(const char *t)
{
	int y, mo, d, h, mi, se, ms;
	char z;

	return t && strlen(t) == 24 &&
	       sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi,
		      &se, &ms, &z) == 8 && z == 'Z' && y >= 2020;
}

/* A PDU read again after a crash is recognised, across a reopen, until it
 * is pruned; the check only runs inside the storing transaction. */
static void test_inbox_seen(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	const char *pdu = "0791448720003023240DD0E474D81C0EBB010000111011315214000BE474D81C0EBB5DE3771B";
	bool seen = true;

	assert_int_equal(store_inbox_seen(s, pdu, 1000, &seen), -EINVAL);
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_inbox_seen(s, pdu, 1000, &seen), 0);
	assert_false(seen);
	assert_int_equal(store_tx_commit(s), 0);
	store_free(s);
	s = open_ok(f);
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_inbox_seen(s, pdu, 2000, &seen), 0);
	assert_true(seen);
	assert_int_equal(store_inbox_seen(s, "00", 2000, &seen), 0);
	assert_false(seen);
	/* Rolled back: not recorded. */
	store_tx_rollback(s);
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_inbox_seen(s, "00", 2000, &seen), 0);
	assert_false(seen);
	assert_int_equal(store_inbox_seen_prune(s, 1500), 0);
	assert_int_equal(store_inbox_seen(s, pdu, 3000, &seen), 0);
	assert_false(seen);
	assert_int_equal(store_tx_commit(s), 0);
	store_free(s);
}

/* Rows in sms, seen from a second connection: only committed ones. */
static int outside_count(const struct fx *f)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sms", -1,
					    &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

struct flush_probe {
	struct store *s;
	int calls;
	int rc;
};

static void probe_flush(void *ctx)
{
	struct flush_probe *p = ctx;

	p->calls++;
	p->rc = store_batch_commit(p->s);
}

/* A batch holds writes until its commit; anyone else touching the store
 * first makes it commit (flush), so their own commit keeps its meaning. */
static void test_batch_group_commit(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct flush_probe p = { s, 0, -1 };
	char *v = NULL;

	assert_int_equal(store_batch_enter(s, probe_flush, &p), 0);
	queue1(s, STORE_PRIO_BULK);
	queue1(s, STORE_PRIO_BULK);
	store_batch_leave(s);
	assert_true(store_batch_open(s));
	assert_int_equal(outside_count(f), 0); /* not committed yet */
	assert_int_equal(store_batch_enter(s, probe_flush, &p), 0);
	queue1(s, STORE_PRIO_BULK);
	store_batch_leave(s);
	assert_int_equal(p.calls, 0);
	/* Someone else writes: the batch is flushed first. */
	assert_int_equal(store_setting_set(s, "k", "v"), 0);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.rc, 0);
	assert_false(store_batch_open(s));
	assert_int_equal(outside_count(f), 3);
	assert_int_equal(store_setting_get(s, "k", &v), 0);
	assert_string_equal(v, "v");
	free(v);
	/* Another owner cannot join an open batch. */
	assert_int_equal(store_batch_enter(s, probe_flush, &p), 0);
	assert_int_equal(store_batch_enter(s, probe_flush, NULL), -EBUSY);
	store_batch_leave(s);
	assert_int_equal(store_batch_commit(s), 0);
	assert_int_equal(store_batch_commit(s), 0); /* none open: no-op */
	store_free(s);
}

static void test_sms_json_shape(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	int64_t x = queue(s, PEER, 2, STORE_PRIO_ACCOUNT, STORE_KIND_RECOVERY,
			  "Tu código");
	json_t *o, *parts, *p;
	char iso[STORE_ISO_MAX];

	assert_string_equal(store_time_iso(1700000000123, iso),
			    "2023-11-14T22:13:20.123Z");
	assert_string_equal(store_time_iso(-1, iso), "1969-12-31T23:59:59.999Z");
	assert_int_equal(store_sms_mark_sending(s, x, "main"), 0);
	assert_int_equal(store_part_sent(s, x, 1, "main", 42, store_now_ms()), 0);
	o = get(s, x);
	assert_int_equal(json_integer_value(json_object_get(o, "id")), x);
	assert_string_equal(get_str(o, "direction"), "out");
	assert_string_equal(get_str(o, "peer"), PEER);
	assert_string_equal(get_str(o, "text"), "Tu código");
	assert_string_equal(get_str(o, "status"), "sending");
	assert_string_equal(get_str(o, "kind"), "recovery");
	assert_true(json_is_null(json_object_get(o, "error")));
	assert_true(iso_ok(get_str(o, "created_at")));
	assert_true(iso_ok(get_str(o, "updated_at")));
	parts = json_object_get(o, "parts");
	assert_int_equal(json_array_size(parts), 2);
	p = json_array_get(parts, 0);
	assert_int_equal(json_integer_value(json_object_get(p, "seq")), 1);
	assert_string_equal(get_str(p, "status"), "sent");
	assert_int_equal(json_integer_value(json_object_get(p, "mr")), 42);
	assert_string_equal(get_str(p, "modem"), "main");
	assert_true(json_is_null(json_object_get(p, "error")));
	p = json_array_get(parts, 1);
	assert_string_equal(get_str(p, "status"), "queued");
	assert_true(json_is_null(json_object_get(p, "mr")));
	assert_true(json_is_null(json_object_get(p, "modem")));
	/* never the PDUs or internals */
	assert_null(json_object_get(o, "pdu"));
	assert_null(json_object_get(p, "pdu"));
	json_decref(o);
	assert_int_equal(store_sms_get(s, 12345, &o), -ENOENT);
	store_free(s);
}

static void test_sms_list_paging(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	int64_t ids[5], next = -1, after = 0;
	json_t *list;
	size_t seen = 0;

	for (int i = 0; i < 5; i++)
		ids[i] = queue1(s, STORE_PRIO_BULK);
	assert_int_equal(store_sms_receive(s, PEER2, "in 1", false, 0, NULL), 0);

	for (int page = 0; page < 10; page++) {
		assert_int_equal(store_sms_list(s, STORE_OUT, 2, after, &list,
						&next), 0);
		for (size_t i = 0; i < json_array_size(list); i++, seen++)
			assert_int_equal(json_integer_value(json_object_get(
				json_array_get(list, i), "id")), ids[4 - seen]);
		assert_true(json_array_size(list) == (seen <= 4 ? 2 : 1) ||
			    seen == 5);
		json_decref(list);
		if (!next)
			break;
		after = next;
	}
	assert_int_equal(seen, 5);
	assert_int_equal(store_sms_list(s, STORE_OUT, 5, 0, &list, &next), 0);
	assert_int_equal(json_array_size(list), 5);
	assert_int_equal(next, 0); /* exactly one page: no next */
	json_decref(list);
	assert_int_equal(store_sms_list(s, STORE_IN, 0, 0, &list, &next), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(get_str(json_array_get(list, 0), "peer"), PEER2);
	json_decref(list);
	store_free(s);
}

/* --- audit, settings, counts ----------------------------------------------------- */

static void test_audit(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	json_t *d, *list, *e, *det;
	int64_t next, after = 0, id;
	int seen = 0;
	char *dump;

	d = json_pack("{ss ss s{ss si} s[{ss}]}", "phone", PEER,
		      "password", "hunter2", "args", "token", "tok-SECRET",
		      "n", 3, "list", "code", "ABCDE12345");
	for (int i = 0; i < 5; i++)
		assert_int_equal(store_audit_add(s, 1000 + i, "admin",
						 "account.invite", i % 2 ? 7 : 0,
						 d, &id), 0);
	json_decref(d);
	d = json_array();
	assert_int_equal(store_audit_add(s, 0, "admin", "x", 0, d, NULL), -EINVAL);
	json_decref(d);
	assert_int_equal(store_audit_add(s, 0, "portal", "account.login", 0,
					 NULL, NULL), 0);

	while (seen < 10) {
		assert_int_equal(store_audit_list(s, 4, after, &list, &next), 0);
		seen += (int)json_array_size(list);
		if (!after) {
			e = json_array_get(list, 0);
			assert_string_equal(get_str(e, "op"), "account.login");
			assert_true(json_is_null(json_object_get(e, "account_id")));
			assert_true(iso_ok(get_str(e, "at")));
			e = json_array_get(list, 2);
			assert_int_equal(json_integer_value(json_object_get(e, "uid")), 1003);
			assert_int_equal(json_integer_value(json_object_get(e,
						"account_id")), 7);
			det = json_object_get(e, "detail");
			assert_string_equal(get_str(det, "phone"), PEER);
			dump = json_dumps(det, 0);
			assert_null(strstr(dump, "hunter2"));
			assert_null(strstr(dump, "tok-SECRET"));
			assert_null(strstr(dump, "ABCDE12345"));
			assert_non_null(strstr(dump, "[redacted]"));
			assert_non_null(strstr(dump, "\"n\": 3"));
			free(dump);
		}
		json_decref(list);
		if (!next)
			break;
		after = next;
	}
	assert_int_equal(seen, 6);
	store_free(s);
}

static void test_settings(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	char *v = (char *)"untouched";

	assert_int_equal(store_setting_get(s, "phone_profiles", &v), -ENOENT);
	assert_string_equal(v, "untouched");
	assert_int_equal(store_setting_set(s, "phone_profiles", "false"), 0);
	assert_int_equal(store_setting_set(s, "phone_profiles", "true"), 0);
	store_free(s);
	s = open_ok(f);
	assert_int_equal(store_setting_get(s, "phone_profiles", &v), 0);
	assert_string_equal(v, "true");
	free(v);
	store_free(s);
}

static void test_counts(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_counts c;
	int64_t a = queue1(s, STORE_PRIO_BULK);

	queue1(s, STORE_PRIO_BULK);
	queue1(s, STORE_PRIO_ACCOUNT);
	assert_int_equal(store_sms_mark_sending(s, a, "m"), 0);
	assert_int_equal(store_sms_receive(s, PEER, "hi", false, 3, NULL), 0);
	assert_int_equal(store_counts(s, &c), 0);
	assert_int_equal(c.sms[STORE_QUEUED], 2);
	assert_int_equal(c.sms[STORE_SENDING], 1);
	assert_int_equal(c.sms[STORE_SENT], 0);
	assert_int_equal(c.sms[STORE_RECEIVED], 1);
	assert_int_equal(c.inbox_partial, 0);
	assert_string_equal(store_status_name(STORE_DELIVERED), "delivered");
	assert_string_equal(store_part_status_name(STORE_PART_FAILED), "failed");
	assert_string_equal(store_kind_name(STORE_KIND_UNCLAIMED), "unclaimed");
	assert_string_equal(store_status_name((enum store_status)99), "?");
	store_free(s);
}

/* --- transactions and the statement API ------------------------------------------ */

static void test_transactions(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_counts c;
	int64_t a, b;

	assert_int_equal(store_tx_commit(s), -EINVAL);
	store_tx_rollback(s); /* no-op */

	assert_int_equal(store_tx_begin(s), 0);
	assert_true(store_in_tx(s));
	a = queue1(s, STORE_PRIO_BULK);
	assert_int_equal(store_tx_begin(s), 0);
	b = queue1(s, STORE_PRIO_BULK);
	store_tx_rollback(s); /* only b */
	assert_int_equal(store_audit_add(s, 0, "admin", "x", 0, NULL, NULL), 0);
	assert_int_equal(store_tx_commit(s), 0);
	assert_false(store_in_tx(s));
	assert_status(s, a, "queued");
	json_t *o = NULL;
	assert_int_equal(store_sms_get(s, b, &o), -ENOENT);

	assert_int_equal(store_tx_begin(s), 0);
	queue1(s, STORE_PRIO_BULK);
	store_tx_rollback(s);
	assert_int_equal(store_counts(s, &c), 0);
	assert_int_equal(c.sms[STORE_QUEUED], 1);

	/* a unique violation is -EEXIST and leaves the transaction usable */
	struct store_stmt *st;
	assert_int_equal(store_exec(s, "CREATE TABLE t (k TEXT PRIMARY KEY, "
				       "v BLOB)"), 0);
	assert_int_equal(store_stmt_prepare(s, "INSERT INTO t VALUES (?1, ?2)",
					    &st), 0);
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_stmt_bind_text(st, 1, "k"), 0);
	assert_int_equal(store_stmt_bind_blob(st, 2, "\x00\x01", 2), 0);
	assert_int_equal(store_stmt_step(st), 0);
	assert_int_equal(store_changes(s), 1);
	assert_int_equal(store_stmt_step(st), -EEXIST);
	assert_false(store_error_unavailable(-EEXIST));
	assert_int_equal(store_stmt_bind_text(st, 1, "k2"), 0);
	assert_int_equal(store_stmt_bind_null(st, 2), 0);
	assert_int_equal(store_stmt_step(st), 0);
	assert_int_equal(store_tx_commit(s), 0);
	store_stmt_free(st);
	assert_int_equal(pragma(s, "SELECT count(*) FROM t"), 2);
	assert_int_equal(store_stmt_prepare(s, "SELECT v, length(v) FROM t "
					    "WHERE k = 'k'", &st), 0);
	assert_int_equal(store_stmt_step(st), 1);
	size_t len = 0;
	const unsigned char *blob = store_stmt_column_blob(st, 0, &len);
	assert_int_equal(len, 2);
	assert_int_equal(blob[1], 1);
	assert_false(store_stmt_column_null(st, 0));
	assert_int_equal(store_stmt_step(st), 0);
	store_stmt_free(st);
	assert_int_equal(store_stmt_prepare(s, "SELEKT", &st), -EINVAL);
	store_free(s);
}

/* --- disk full, I/O errors -------------------------------------------------------- */

static void big_outgoing(struct store_outgoing *m, struct store_pdu *p,
			 char *text, size_t len)
{
	memset(text, 'x', len - 1);
	text[len - 1] = '\0';
	p->hex = "0011";
	p->tpdu_len = 10;
	*m = (struct store_outgoing){ .peer = PEER, .text = text,
		.kind = STORE_KIND_MANUAL, .priority = STORE_PRIO_BULK,
		.parts = p, .nparts = 1 };
}

/* The same through the statement API, with no savepoint of the store's
 * around the failing step (how the accounts module writes). */
static void disk_full_stmt(struct store *s, const char *big, size_t len)
{
	struct store_stmt *st;
	int r, r2;

	assert_int_equal(store_stmt_prepare(s, "INSERT INTO blobs VALUES (?1)",
					    &st), 0);
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_stmt_bind_blob(st, 1, big, len), 0);
	r = store_stmt_step(st);
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(store_stmt_bind_blob(st, 1, "small", 5), 0);
	r2 = store_stmt_step(st);
	r = store_tx_commit(s);
	assert_int_equal(r2, r == 0 ? 0 : r);
	assert_int_equal(pragma(s, "SELECT count(*) FROM blobs"), r == 0 ? 1 : 0);
	store_stmt_free(st);
}

static void test_disk_full(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	static char text[200000];
	struct store_outgoing m;
	struct store_pdu p;
	struct store_counts c;
	struct capture cap;
	char sql[64], *log;
	int64_t id, keep[3];
	int r, r2;

	for (int i = 0; i < 3; i++)
		keep[i] = queue1(s, STORE_PRIO_BULK);
	big_outgoing(&m, &p, text, sizeof(text));
	assert_int_equal(store_exec(s, "CREATE TABLE blobs (b BLOB)"), 0);
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		 (long long)pragma(s, "PRAGMA page_count"));
	assert_int_equal(store_exec(s, sql), 0);

	capture_start(&cap);
	r = store_sms_queue(s, &m, &id);
	assert_int_equal(r, -ENOSPC);
	assert_true(store_error_unavailable(r));
	assert_false(store_in_tx(s));

	/* inside a caller's transaction: the caller learns it and rolls back */
	assert_int_equal(store_tx_begin(s), 0);
	assert_int_equal(store_setting_set(s, "k", "v"), 0);
	r = store_sms_queue(s, &m, &id);
	assert_true(store_error_unavailable(r));
	/* a further write must not escape into autocommit when SQLite has
	 * dropped the transaction: it lands only if the commit does */
	r2 = store_setting_set(s, "k2", "v2");
	r = store_tx_commit(s);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "full"));
	assert_null(strstr(log, PEER)); /* no phone number in the log */
	assert_null(strstr(log, PEER_TAIL));
	free(log);
	printf("store-test: disk full inside a transaction: SQLite %s\n",
	       r == 0 ? "kept the transaction" : "rolled it back");
	for (int i = 0; i < 2; i++) {
		char *v = NULL;
		int g = store_setting_get(s, i ? "k2" : "k", &v);

		assert_int_equal(g, r == 0 ? 0 : -ENOENT);
		free(v);
	}
	assert_int_equal(r2, r == 0 ? 0 : r);
	assert_false(store_in_tx(s));
	disk_full_stmt(s, text, sizeof(text));

	/* nothing earlier lost */
	for (int i = 0; i < 3; i++)
		assert_status(s, keep[i], "queued");
	assert_int_equal(store_counts(s, &c), 0);
	assert_int_equal(c.sms[STORE_QUEUED], 3);

	/* room again: writes work */
	assert_int_equal(store_exec(s, "PRAGMA max_page_count = 1000000000"), 0);
	assert_int_equal(store_sms_queue(s, &m, &id), 0);
	assert_int_equal(pragma(s, "SELECT count(*) FROM pragma_quick_check "
				   "WHERE quick_check = 'ok'"), 1);
	store_free(s);
	s = open_ok(f);
	assert_status(s, id, "queued");
	store_free(s);
}

/* In a child with RLIMIT_FSIZE just above the files' sizes: the write
 * fails with an I/O-class error (EFBIG), the store stays usable, and
 * works again once the limit is lifted. */
static int io_error_child(const struct fx *f, int64_t *keep)
{
	static char text[300000];
	struct store_outgoing m;
	struct store_pdu p;
	struct store *s;
	struct rlimit rl, old;
	struct stat sb;
	char err[STORE_ERR_MAX], wal[320];
	int64_t id;
	off_t lim = 0;
	int r;

	signal(SIGXFSZ, SIG_IGN);
	log_set_level(LOG_LVL_ERR + 0);
	if (store_open(f->dir, &s, err, sizeof(err)))
		return 1;
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	if (stat(wal, &sb) == 0)
		lim = sb.st_size;
	if (stat(f->db, &sb) == 0 && sb.st_size > lim)
		lim = sb.st_size;
	getrlimit(RLIMIT_FSIZE, &old);
	rl = old;
	rl.rlim_cur = (rlim_t)lim + 4096;
	if (setrlimit(RLIMIT_FSIZE, &rl))
		return 2;
	big_outgoing(&m, &p, text, sizeof(text));
	r = store_sms_queue(s, &m, &id);
	if (!store_error_unavailable(r) || store_in_tx(s))
		return 3;
	for (int i = 0; i < 3; i++) {
		json_t *o;
		if (store_sms_get(s, keep[i], &o))
			return 4;
		json_decref(o);
	}
	if (setrlimit(RLIMIT_FSIZE, &old))
		return 5;
	if (store_sms_queue(s, &m, &id))
		return 6;
	store_free(s);
	return 0;
}

static void test_io_error_fsize(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_counts c;
	int64_t keep[3];
	pid_t pid;
	int status;

	for (int i = 0; i < 3; i++)
		keep[i] = queue1(s, STORE_PRIO_BULK);
	store_free(s);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(io_error_child(f, keep));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	s = open_ok(f); /* passes quick_check */
	assert_int_equal(store_counts(s, &c), 0);
	assert_int_equal(c.sms[STORE_QUEUED], 4);
	store_free(s);
}

/* --- scaling ------------------------------------------------------------------ */

static const char *const hot_queries[] = {
	"due", "next_at", "sms_load", "parts_load", "sms_status",
	"mark_sending", "part_sent", "sms_sent", "retry", "fail",
	"parts_fail", "expire_list", "report_find", "report_part",
	"part_tally", "sms_final", "sms_get", "parts_get", "sms_list",
	"inbox_find", "inbox_count", "inbox_texts", "inbox_done",
	"inbox_drop", "audit_list", "setting_get", "count_status",
};

static void check_plans(struct store *s)
{
	char *plan;

	for (size_t i = 0; i < sizeof(hot_queries) / sizeof(*hot_queries); i++) {
		assert_int_equal(store_query_plan(s, hot_queries[i], &plan), 0);
		if (strstr(plan, "SCAN"))
			print_error("%s scans:\n%s", hot_queries[i], plan);
		assert_null(strstr(plan, "SCAN"));
		assert_non_null(strstr(plan, "SEARCH"));
		free(plan);
	}
	assert_int_equal(store_query_plan(s, "nope", &plan), -ENOENT);
	assert_int_equal(store_query_plan(s, "report_find", &plan), 0);
	assert_non_null(strstr(plan, "sms_part_report"));
	free(plan);
	assert_int_equal(store_query_plan(s, "due", &plan), 0);
	assert_non_null(strstr(plan, "sms_due"));
	free(plan);
}

#define SCALE_N 100000
#define SCALE_T0 1700000000000LL

/* 100k outbound SMS, every one sent on one of 4 modems (mr cycling), one
 * in 50 still queued; all in one transaction. */
static void scale_fill(struct store *s)
{
	char hex[] = "0011000B914306010122F20000AA05E8329BFD06";
	struct store_pdu p = { hex, 19 };
	struct store_outgoing m = {
		.peer = PEER, .text = "scale", .kind = STORE_KIND_MANUAL,
		.priority = STORE_PRIO_BULK, .parts = &p, .nparts = 1,
	};
	static const char *const modems[] = { "m0", "m1", "m2", "m3" };
	double t = mono_ms();
	int64_t id;

	assert_int_equal(store_tx_begin(s), 0);
	for (int i = 0; i < SCALE_N; i++) {
		char peer[20];

		snprintf(peer, sizeof(peer), "+346%08d", i % 5000);
		m.peer = peer;
		m.priority = i % 10 ? STORE_PRIO_BULK : STORE_PRIO_ACCOUNT;
		assert_int_equal(store_sms_queue(s, &m, &id), 0);
		if (i % 50 == 0)
			continue;
		assert_int_equal(store_sms_mark_sending(s, id, modems[i % 4]), 0);
		assert_int_equal(store_part_sent(s, id, 1, modems[i % 4],
						 i % 256, SCALE_T0 + i * 100LL), 0);
		assert_int_equal(store_sms_sent(s, id), 0);
	}
	assert_int_equal(store_tx_commit(s), 0);
	printf("store-bench: fill %d SMS (queue+send, one transaction): %.0f ms\n",
	       SCALE_N, mono_ms() - t);
}

/* Per-commit cost of store_part_sent on its own (one fsync each). */
static double commit_cost(struct store *s, int n)
{
	double t;
	int64_t id = queue(s, PEER, 8, STORE_PRIO_BULK, STORE_KIND_MANUAL, "c");

	assert_int_equal(store_sms_mark_sending(s, id, "m0"), 0);
	t = mono_ms();
	for (int i = 0; i < n; i++)
		assert_int_equal(store_part_sent(s, id, 1 + i % 8, "m0", i % 256,
						 store_now_ms()), 0);
	return (mono_ms() - t) / n;
}

static void test_scaling(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	struct store_match mt;
	struct store_sms m;
	struct store_counts c;
	double t, full, normal, empty_open;
	struct stat sb;
	json_t *o;
	int64_t next;
	int hits = 0;

	t = mono_ms();
	store_free(s);
	s = open_ok(f);
	empty_open = mono_ms() - t;
	scale_fill(s);
	check_plans(s);

	t = mono_ms();
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(store_sms_next_due(s, store_now_ms(), &m), 0);
		store_sms_clear(&m);
	}
	printf("store-bench: next_due: %.1f us/op\n", (mono_ms() - t));

	t = mono_ms();
	for (int i = 0; i < 200; i++) {
		int k = 1 + (i * 487) % (SCALE_N - 1);
		char peer[20];

		if (k % 50 == 0)
			continue;
		snprintf(peer, sizeof(peer), "+346%08d", k % 5000);
		hits += report(s, (const char *[]){ "m0", "m1", "m2", "m3" }[k % 4],
			       k % 256, peer, STORE_REPORT_DELIVERED,
			       SCALE_T0 + k * 100LL + 5000, &mt) == 0;
	}
	printf("store-bench: report_match (own commit): %.3f ms/op, %d matched\n",
	       (mono_ms() - t) / 200, hits);
	assert_true(hits > 150);

	full = commit_cost(s, 200);
	assert_int_equal(store_exec(s, "PRAGMA synchronous = NORMAL"), 0);
	normal = commit_cost(s, 200);
	assert_int_equal(store_exec(s, "PRAGMA synchronous = FULL"), 0);
	printf("store-bench: part_sent commit: synchronous=FULL %.3f ms/op, "
	       "NORMAL %.3f ms/op\n", full, normal);

	t = mono_ms();
	for (int i = 0; i < 100; i++) {
		assert_int_equal(store_sms_get(s, 1 + i * 997, &o), 0);
		json_decref(o);
	}
	printf("store-bench: sms_get: %.1f us/op\n", (mono_ms() - t) * 10);
	t = mono_ms();
	assert_int_equal(store_sms_list(s, STORE_OUT, 100, 50000, &o, &next), 0);
	assert_int_equal(json_array_size(o), 100);
	assert_int_equal(next, 49900);
	json_decref(o);
	printf("store-bench: sms_list page of 100: %.2f ms\n", mono_ms() - t);
	t = mono_ms();
	assert_int_equal(store_counts(s, &c), 0);
	printf("store-bench: counts: %.2f ms (queued %lld, sent %lld)\n",
	       mono_ms() - t, (long long)c.sms[STORE_QUEUED],
	       (long long)c.sms[STORE_SENT]);
	assert_true(c.sms[STORE_SENT] > 90000);

	store_free(s);
	assert_int_equal(stat(f->db, &sb), 0);
	t = mono_ms();
	s = open_ok(f);
	printf("store-bench: open with quick_check: %.0f ms at %d SMS, %.1f MB "
	       "(empty db: %.1f ms)\n", mono_ms() - t, SCALE_N,
	       sb.st_size / 1048576.0, empty_open);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_create_and_reopen),
		T(test_missing_dir_refused),
		T(test_newer_version_refused),
		T(test_random_bytes_refused),
		T(test_truncated_refused),
		T(test_damaged_pages_refused),
		T(test_foreign_database_refused),
		T(test_readonly_refused),
		T(test_next_due_ordering),
		T(test_queue_validation),
		T(test_resume_sending_after_reopen),
		T(test_part_mr_survives_crash),
		T(test_retry_and_attempts),
		T(test_failed_and_expiry),
		T(test_report_matching),
		T(test_inbox_multipart),
		T(test_inbox_expire),
		T(test_inbox_seen),
		T(test_batch_group_commit),
		T(test_sms_json_shape),
		T(test_sms_list_paging),
		T(test_audit),
		T(test_settings),
		T(test_counts),
		T(test_transactions),
		T(test_disk_full),
		T(test_io_error_fsize),
		T(test_scaling),
#undef T
	};

	log_init("test_store", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
