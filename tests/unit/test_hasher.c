/* Tests for daemon/hasher: argon2id on worker threads, results through
 * ev_async, a loop that keeps running while hashes are computed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include "daemon/hasher.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What callbacks saw, shared by the tests. */
struct result {
	int calls;
	int status;
	char hash[HASHER_STR_MAX];
	double at;
	struct ev_loop *loop;
	int *pending;   /* when not NULL: decremented, loop broken at 0 */
};

static void on_hash(int status, const char *hash, void *ud)
{
	struct result *r = ud;

	r->calls++;
	r->status = status;
	r->at = now_s();
	if (hash)
		snprintf(r->hash, sizeof(r->hash), "%s", hash);
	if (r->pending && --*r->pending == 0)
		ev_break(r->loop, EVBREAK_ALL);
}

static void on_verify(int status, void *ud)
{
	on_hash(status, NULL, ud);
}

/* Runs the loop until *pending reaches 0, at most `secs`. */
static void run_until(struct ev_loop *loop, int *pending, double secs)
{
	double end = now_s() + secs;

	while (*pending > 0 && now_s() < end)
		ev_run(loop, EVRUN_ONCE);
	assert_int_equal(*pending, 0);
}

static void test_hash_and_verify(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h = hasher_new(loop, 2, HASHER_INTERACTIVE, 16);
	struct result hr = { .loop = loop }, ok = { .loop = loop },
		      bad = { .loop = loop };
	int pending = 1;

	(void)state;
	assert_non_null(h);
	hr.pending = &pending;
	assert_int_equal(hasher_hash(h, "correct horse", 13, on_hash, &hr), 0);
	/* never called back before the loop runs */
	usleep(300 * 1000);
	assert_int_equal(hr.calls, 0);
	run_until(loop, &pending, 20);
	assert_int_equal(hr.calls, 1);
	assert_int_equal(hr.status, 0);
	assert_memory_equal(hr.hash, "$argon2id$", 10);
	assert_null(strstr(hr.hash, "correct horse"));
	/* libsodium itself agrees it is the hash of that secret */
	assert_int_equal(crypto_pwhash_str_verify(hr.hash, "correct horse", 13),
			 0);

	pending = 2;
	ok.pending = bad.pending = &pending;
	assert_int_equal(hasher_verify(h, hr.hash, "correct horse", 13,
				       on_verify, &ok), 0);
	assert_int_equal(hasher_verify(h, hr.hash, "correct horsE", 13,
				       on_verify, &bad), 0);
	run_until(loop, &pending, 20);
	assert_int_equal(ok.calls, 1);
	assert_int_equal(ok.status, 0);
	assert_int_equal(bad.calls, 1);
	assert_int_equal(bad.status, -EACCES);
	assert_false(hasher_needs_rehash(h, hr.hash));
	hasher_free(h);

	/* a stronger level wants hashes of the weaker one upgraded */
	h = hasher_new(loop, 1, HASHER_MODERATE, 4);
	assert_non_null(h);
	assert_true(hasher_needs_rehash(h, hr.hash));
	hasher_free(h);
	ev_loop_destroy(loop);
}

/* The dummy verify of an unknown user fails, and costs what a real verify
 * costs (within a wide factor: the machine is shared). */
static void test_dummy_verify(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h = hasher_new(loop, 1, HASHER_INTERACTIVE, 16);
	char stored[HASHER_STR_MAX];
	unsigned long long ops;
	size_t mem;
	double real = 1e9, dummy = 1e9;

	(void)state;
	assert_non_null(h);
	hasher_level_limits(HASHER_INTERACTIVE, &ops, &mem);
	assert_int_equal(crypto_pwhash_str(stored, "pw-of-someone", 13, ops,
					   mem), 0);
	/* best of 5 each, alternating, to damp the neighbours' noise */
	for (int round = 0; round < 5; round++) {
		for (int which = 0; which < 2; which++) {
			struct result r = { .loop = loop };
			int pending = 1;
			double t0 = now_s();

			r.pending = &pending;
			assert_int_equal(hasher_verify(h, which ? NULL : stored,
						       "guess-guess", 11,
						       on_verify, &r), 0);
			run_until(loop, &pending, 20);
			assert_int_equal(r.status, -EACCES);
			double dt = r.at - t0;
			if (which)
				dummy = dt < dummy ? dt : dummy;
			else
				real = dt < real ? dt : real;
		}
	}
	/* whatever the secret, the dummy never matches */
	struct result r = { .loop = loop };
	int pending = 1;
	r.pending = &pending;
	assert_int_equal(hasher_verify(h, NULL, "", 0, on_verify, &r), 0);
	run_until(loop, &pending, 20);
	assert_int_equal(r.status, -EACCES);
	printf("# verify: real %.1f ms, dummy %.1f ms (ratio %.2f)\n",
	       real * 1e3, dummy * 1e3, dummy / real);
	assert_true(dummy / real > 0.5 && dummy / real < 2.0);
	hasher_free(h);
	ev_loop_destroy(loop);
}

/* --- the loop keeps ticking while hashes run ----------------------------- */

struct ticker {
	ev_timer timer;
	double last;
	double max_gap;
	unsigned ticks;
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ticker *t = (struct ticker *)w;
	double now = now_s();

	(void)loop;
	(void)revents;
	if (t->last > 0 && now - t->last > t->max_gap)
		t->max_gap = now - t->last;
	t->last = now;
	t->ticks++;
}

/* At the moderate level (256 MiB, ~1 s a hash here) a blocked loop would
 * miss ticks for a whole second; scheduler noise on a busy machine stays
 * in the tens of milliseconds, so the margin is wide both ways. */
static void test_loop_not_blocked(void **state)
{
	enum { JOBS = 4 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h;
	struct result res[JOBS];
	struct ticker t = { .last = 0 };
	unsigned long long ops;
	size_t mem;
	char tmp[HASHER_STR_MAX];
	int pending = JOBS;
	double one, t0, total;

	(void)state;
	/* one hash on this thread: what a blocked loop would stall for */
	hasher_level_limits(HASHER_MODERATE, &ops, &mem);
	t0 = now_s();
	assert_int_equal(crypto_pwhash_str(tmp, "x", 1, ops, mem), 0);
	one = now_s() - t0;

	h = hasher_new(loop, 1, HASHER_MODERATE, JOBS);
	assert_non_null(h);
	ev_timer_init(&t.timer, tick_cb, 0.002, 0.002);
	ev_timer_start(loop, &t.timer);
	t0 = now_s();
	for (int i = 0; i < JOBS; i++) {
		res[i] = (struct result){ .loop = loop, .pending = &pending };
		if (i % 2)
			assert_int_equal(hasher_verify(h, tmp, "x", 1,
						       on_verify, &res[i]), 0);
		else
			assert_int_equal(hasher_hash(h, "pw", 2, on_hash,
						     &res[i]), 0);
	}
	run_until(loop, &pending, 120);
	total = now_s() - t0;
	ev_timer_stop(loop, &t.timer);
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_int_equal(res[i].status, 0);
	}
	printf("# %d jobs on 1 worker in %.0f ms (%.1f hashes/s, one hash "
	       "%.1f ms); loop ticked %u times, max gap %.1f ms\n",
	       JOBS, total * 1e3, JOBS / total, one * 1e3, t.ticks,
	       t.max_gap * 1e3);
	/* Blocked, the loop would miss whole hashes: its longest gap would be
	 * at least one hash, and it would tick about once per job. Bounds are
	 * loose on purpose: the machine is shared, only blocking must fail. */
	assert_true(t.max_gap < one);
	assert_true(t.ticks > (unsigned)(total / 0.002 / 10));
	hasher_free(h);
	ev_loop_destroy(loop);
}

/* --- queue bound, cancel on free, chaining ------------------------------- */

static void test_queue_full(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h = hasher_new(loop, 1, HASHER_INTERACTIVE, 3);
	struct result r[10];
	int accepted = 0, refused = 0, pending;

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < 10; i++) {
		r[i] = (struct result){ .loop = loop };
		int rc = hasher_hash(h, "a", 1, on_hash, &r[i]);
		if (rc == 0)
			accepted++;
		else {
			assert_int_equal(rc, -EAGAIN);
			refused++;
		}
	}
	/* 3 waiting plus at most one already taken by the worker (the
	 * worker may still be making the dummy) */
	assert_true(accepted >= 3 && accepted <= 4);
	assert_int_equal(refused, 10 - accepted);
	pending = accepted;
	for (int i = 0; i < accepted; i++)
		r[i].pending = &pending;
	run_until(loop, &pending, 60);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r[i].calls, i < accepted ? 1 : 0);
	/* room again once drained */
	assert_int_equal(hasher_queued(h), 0);
	assert_int_equal(hasher_running(h), 0);
	pending = 1;
	r[0] = (struct result){ .loop = loop, .pending = &pending };
	assert_int_equal(hasher_hash(h, "a", 1, on_hash, &r[0]), 0);
	run_until(loop, &pending, 20);
	hasher_free(h);
	ev_loop_destroy(loop);
}

static void test_free_cancels(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h = hasher_new(loop, 2, HASHER_INTERACTIVE, 32);
	struct result r[20];

	(void)state;
	assert_non_null(h);
	for (int i = 0; i < 20; i++) {
		r[i] = (struct result){ .loop = loop };
		if (i % 2)
			assert_int_equal(hasher_verify(h, NULL, "p", 1,
						       on_verify, &r[i]), 0);
		else
			assert_int_equal(hasher_hash(h, "p", 1, on_hash,
						     &r[i]), 0);
	}
	usleep(50 * 1000);   /* let the workers pick some up */
	hasher_free(h);
	/* every callback exactly once, all cancelled, without the loop */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, -ECANCELED);
	}
	/* no watcher of the hasher is left on the loop */
	assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
	ev_loop_destroy(loop);
}

struct chain {
	struct hasher *h;
	int left;
	int done;
	struct ev_loop *loop;
};

static void chain_cb(int status, const char *hash, void *ud)
{
	struct chain *c = ud;

	(void)hash;
	assert_int_equal(status, 0);
	c->done++;
	if (--c->left > 0)
		assert_int_equal(hasher_hash(c->h, "n", 1, chain_cb, c), 0);
}

/* A callback may queue the next job; ev_run() returns by itself once
 * nothing is outstanding (the idle hasher holds no loop reference). */
static void test_chain_and_loop_exit(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct chain c = { .left = 3, .loop = loop };

	(void)state;
	c.h = hasher_new(loop, 1, HASHER_INTERACTIVE, 4);
	assert_non_null(c.h);
	assert_int_equal(ev_run(loop, 0), 0);   /* idle: returns at once */
	assert_int_equal(hasher_hash(c.h, "n", 1, chain_cb, &c), 0);
	ev_run(loop, 0);
	assert_int_equal(c.done, 3);
	hasher_free(c.h);
	ev_loop_destroy(loop);
}

static void test_bad_args(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct hasher *h;

	(void)state;
	assert_null(hasher_new(loop, 0, HASHER_INTERACTIVE, 4));
	assert_int_equal(errno, EINVAL);
	assert_null(hasher_new(loop, 1, HASHER_INTERACTIVE, 0));
	assert_null(hasher_new(NULL, 1, HASHER_INTERACTIVE, 4));
	h = hasher_new(loop, 1, HASHER_INTERACTIVE, 4);
	assert_int_equal(hasher_hash(h, NULL, 0, on_hash, NULL), -EINVAL);
	assert_int_equal(hasher_verify(h, NULL, "x", 1, NULL, NULL), -EINVAL);
	hasher_free(h);
	hasher_free(NULL);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_dummy_verify),
		cmocka_unit_test(test_loop_not_blocked),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_free_cancels),
		cmocka_unit_test(test_chain_and_loop_exit),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
