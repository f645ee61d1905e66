/* Unit tests for at/reasm: multipart reassembly, duplicates, timeouts,
 * eviction. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at/reasm.h"

static int add(struct reasm *r, const char *sender, uint16_t ref,
	       uint8_t total, uint8_t seq, const char *text, int64_t now,
	       struct reasm_msg *out)
{
	struct reasm_part p = { .sender = sender, .ref = ref, .total = total,
				.seq = seq, .data = text,
				.len = text ? strlen(text) : 0 };

	return reasm_add(r, &p, now, out);
}

static void test_any_order(void **state)
{
	static const uint8_t orders[][4] = {
		{ 1, 2, 3, 4 }, { 4, 3, 2, 1 }, { 2, 4, 1, 3 }, { 3, 1, 4, 2 },
	};
	static const char *const texts[] = { "Hello ", "wor", "ld", "!" };
	struct reasm *r = reasm_new(60, 8, NULL);

	(void)state;
	assert_non_null(r);
	for (size_t o = 0; o < 4; o++) {
		struct reasm_msg m = { .text = NULL };

		for (int i = 0; i < 4; i++) {
			uint8_t seq = orders[o][i];
			int rc = add(r, "+34600111222", 9, 4, seq,
				     texts[seq - 1], 10 + i, &m);

			assert_int_equal(rc, i == 3 ? REASM_COMPLETE :
						      REASM_PENDING);
		}
		assert_string_equal(m.text, "Hello world!");
		assert_int_equal(m.len, 12);
		assert_true(m.complete);
		assert_int_equal(m.received, 4);
		assert_int_equal(m.total, 4);
		assert_int_equal(m.ref, 9);
		assert_int_equal(m.first_seen, 10);
		assert_string_equal(m.sender, "+34600111222");
		for (unsigned s = 1; s <= 4; s++)
			assert_true(reasm_msg_has(&m, s));
		assert_false(reasm_msg_has(&m, 5));
		assert_false(reasm_msg_has(&m, 0));
		reasm_msg_clear(&m);
		assert_null(m.text);
		assert_int_equal(reasm_pending(r), 0);
	}
	reasm_free(r);
}

static void test_duplicates(void **state)
{
	struct reasm *r = reasm_new(60, 8, NULL);
	struct reasm_msg m = { .text = NULL };

	(void)state;
	assert_int_equal(add(r, "A", 1, 2, 1, "first", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 1, 2, 1, "again", 1, &m),
			 REASM_DUPLICATE);
	assert_int_equal(reasm_pending(r), 1);
	assert_int_equal(add(r, "A", 1, 2, 2, "+second", 2, &m),
			 REASM_COMPLETE);
	assert_string_equal(m.text, "first+second");
	reasm_msg_clear(&m);
	reasm_free(r);
}

static void test_keys(void **state)
{
	struct reasm *r = reasm_new(60, 8, NULL);
	struct reasm_msg m = { .text = NULL };

	(void)state;
	/* same ref, different sender / total: three separate sets */
	assert_int_equal(add(r, "A", 5, 2, 1, "a1", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "B", 5, 2, 1, "b1", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 5, 3, 1, "c1", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 6, 2, 2, "d2", 0, &m), REASM_PENDING);
	assert_int_equal(reasm_pending(r), 4);
	assert_int_equal(add(r, "B", 5, 2, 2, "b2", 0, &m), REASM_COMPLETE);
	assert_string_equal(m.text, "b1b2");
	assert_string_equal(m.sender, "B");
	reasm_msg_clear(&m);
	assert_int_equal(add(r, "A", 5, 2, 2, "a2", 0, &m), REASM_COMPLETE);
	assert_string_equal(m.text, "a1a2");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_pending(r), 2);
	/* NULL sender is the empty sender */
	assert_int_equal(add(r, NULL, 1, 2, 1, "x", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "", 1, 2, 2, "y", 0, &m), REASM_COMPLETE);
	assert_string_equal(m.text, "xy");
	reasm_msg_clear(&m);
	reasm_free(r); /* frees the two pending sets (ASan checks) */
}

static void test_timeout(void **state)
{
	struct reasm *r = reasm_new(60, 8, "[...]");
	struct reasm_msg m = { .text = NULL };
	int64_t when;

	(void)state;
	assert_false(reasm_next_deadline(r, &when));
	assert_int_equal(reasm_expire(r, 1000, &m), 0);
	assert_int_equal(add(r, "A", 1, 4, 2, "two ", 0, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 1, 4, 3, "three", 50, &m),
			 REASM_PENDING);
	/* a duplicate does not refresh the timer */
	assert_int_equal(add(r, "A", 1, 4, 3, "three", 80, &m),
			 REASM_DUPLICATE);
	assert_true(reasm_next_deadline(r, &when));
	assert_int_equal(when, 110);
	assert_int_equal(reasm_expire(r, 109, &m), 0);
	assert_int_equal(reasm_expire(r, 110, &m), 1);
	assert_false(m.complete);
	assert_int_equal(m.received, 2);
	assert_int_equal(m.total, 4);
	assert_int_equal(m.first_seen, 0);
	assert_false(reasm_msg_has(&m, 1));
	assert_true(reasm_msg_has(&m, 2));
	assert_true(reasm_msg_has(&m, 3));
	assert_false(reasm_msg_has(&m, 4));
	assert_string_equal(m.text, "[...]two three[...]");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_expire(r, 1000, &m), 0);
	/* a late part starts a new set */
	assert_int_equal(add(r, "A", 1, 4, 1, "one ", 200, &m), REASM_PENDING);
	assert_int_equal(reasm_pending(r), 1);
	/* time going backwards never expires anything */
	assert_int_equal(reasm_expire(r, -5, &m), 0);
	reasm_free(r);
}

static void test_expire_oldest_first(void **state)
{
	struct reasm *r = reasm_new(10, 8, NULL);
	struct reasm_msg m = { .text = NULL };

	(void)state;
	assert_int_equal(add(r, "B", 2, 2, 1, "b", 5, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 1, 2, 1, "a", 1, &m), REASM_PENDING);
	assert_int_equal(add(r, "C", 3, 2, 1, "c", 9, &m), REASM_PENDING);
	assert_int_equal(reasm_expire(r, 100, &m), 1);
	assert_string_equal(m.sender, "A");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_expire(r, 100, &m), 1);
	assert_string_equal(m.sender, "B");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_expire(r, 100, &m), 1);
	assert_string_equal(m.text, "c");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_expire(r, 100, &m), 0);
	reasm_free(r);
}

static void test_eviction(void **state)
{
	struct reasm *r = reasm_new(1000, 2, "?");
	struct reasm_msg m = { .text = NULL };
	int64_t when;

	(void)state;
	assert_int_equal(add(r, "A", 1, 2, 1, "a", 1, &m), REASM_PENDING);
	assert_int_equal(add(r, "B", 1, 2, 1, "b", 2, &m), REASM_PENDING);
	assert_int_equal(add(r, "A", 1, 2, 1, "a", 3, &m), REASM_DUPLICATE);
	/* the third set evicts A (idle longest), due at once */
	assert_int_equal(add(r, "C", 1, 2, 2, "c", 4, &m), REASM_PENDING);
	assert_int_equal(reasm_pending(r), 3);
	assert_true(reasm_next_deadline(r, &when));
	assert_true(when <= 4);
	assert_int_equal(reasm_expire(r, 4, &m), 1);
	assert_string_equal(m.sender, "A");
	assert_string_equal(m.text, "a?");
	assert_false(m.complete);
	reasm_msg_clear(&m);
	assert_int_equal(reasm_expire(r, 4, &m), 0);
	assert_true(reasm_next_deadline(r, &when));
	assert_int_equal(when, 1002);
	/* B and C still complete normally */
	assert_int_equal(add(r, "C", 1, 2, 1, "C", 5, &m), REASM_COMPLETE);
	assert_string_equal(m.text, "Cc");
	reasm_msg_clear(&m);
	/* evicted sets left in the queue are freed by reasm_free */
	assert_int_equal(add(r, "D", 1, 2, 1, "d", 6, &m), REASM_PENDING);
	assert_int_equal(add(r, "E", 1, 2, 1, "e", 7, &m), REASM_PENDING);
	assert_int_equal(reasm_pending(r), 3);
	reasm_free(r);
}

static void test_single_and_binary(void **state)
{
	struct reasm *r = reasm_new(60, 1, NULL);
	struct reasm_msg m = { .text = NULL };
	struct reasm_part p = { .sender = "X", .ref = 0, .total = 1,
				.seq = 1, .data = "a\0b", .len = 3 };

	(void)state;
	assert_int_equal(reasm_add(r, &p, 0, &m), REASM_COMPLETE);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.text, "a\0b", 4);
	assert_true(m.complete);
	reasm_msg_clear(&m);
	/* empty parts are fine */
	p.total = 2;
	p.len = 0;
	p.data = NULL;
	assert_int_equal(reasm_add(r, &p, 0, &m), REASM_PENDING);
	p.seq = 2;
	assert_int_equal(reasm_add(r, &p, 0, &m), REASM_COMPLETE);
	assert_int_equal(m.len, 0);
	assert_string_equal(m.text, "");
	reasm_msg_clear(&m);
	assert_int_equal(reasm_pending(r), 0);
	reasm_free(r);
}

static void test_invalid(void **state)
{
	struct reasm *r = reasm_new(60, 4, NULL);
	struct reasm_msg m = { .text = NULL };
	char longname[REASM_SENDER_MAX + 1];
	struct reasm_part p = { .sender = "A", .total = 2, .seq = 1,
				.data = NULL, .len = 1 };

	(void)state;
	assert_null(reasm_new(0, 4, NULL));
	assert_null(reasm_new(60, 0, NULL));
	assert_int_equal(add(r, "A", 1, 0, 1, "x", 0, &m), -EINVAL);
	assert_int_equal(add(r, "A", 1, 2, 0, "x", 0, &m), -EINVAL);
	assert_int_equal(add(r, "A", 1, 2, 3, "x", 0, &m), -EINVAL);
	assert_int_equal(reasm_add(r, &p, 0, &m), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(add(r, longname, 1, 2, 1, "x", 0, &m), -EINVAL);
	longname[REASM_SENDER_MAX - 1] = '\0'; /* 47 chars fit */
	assert_int_equal(add(r, longname, 1, 2, 1, "x", 0, &m), REASM_PENDING);
	assert_int_equal(reasm_add(NULL, &p, 0, &m), -EINVAL);
	assert_int_equal(reasm_expire(NULL, 0, &m), -EINVAL);
	assert_int_equal(reasm_pending(NULL), 0);
	reasm_msg_clear(NULL);
	reasm_free(NULL);
	reasm_free(r);
}

static void test_extreme_times(void **state)
{
	struct reasm *r = reasm_new(INT64_MAX, 4, NULL);
	struct reasm_msg m = { .text = NULL };
	int64_t when;

	(void)state;
	assert_int_equal(add(r, "A", 1, 2, 1, "x", INT64_MAX, &m),
			 REASM_PENDING);
	assert_true(reasm_next_deadline(r, &when));
	assert_int_equal(when, INT64_MAX);
	assert_int_equal(reasm_expire(r, INT64_MIN, &m), 0);
	assert_int_equal(add(r, "B", 1, 2, 1, "y", INT64_MIN, &m),
			 REASM_PENDING);
	/* B has been idle for 2^64 - 1 units: more than INT64_MAX */
	assert_int_equal(reasm_expire(r, INT64_MAX, &m), 1);
	assert_string_equal(m.sender, "B");
	reasm_msg_clear(&m);
	/* A (fed at INT64_MAX) is in the future of INT64_MAX - 1 */
	assert_int_equal(reasm_expire(r, INT64_MAX - 1, &m), 0);
	reasm_free(r);
	r = reasm_new(1, 4, NULL);
	assert_int_equal(add(r, "B", 1, 2, 1, "y", INT64_MIN, &m),
			 REASM_PENDING);
	assert_int_equal(reasm_expire(r, INT64_MAX, &m), 1);
	reasm_msg_clear(&m);
	reasm_free(r);
}

/* A 255-part set, parts in a scrambled order. */
static void test_max_parts(void **state)
{
	struct reasm *r = reasm_new(60, 1, NULL);
	struct reasm_msg m = { .text = NULL };
	char want[256];

	(void)state;
	for (unsigned i = 0; i < 255; i++) {
		unsigned seq = (i * 7) % 255 + 1; /* 7 is coprime with 255 */
		char c = (char)('A' + (seq - 1) % 26);
		struct reasm_part p = { .sender = "+1", .ref = 0xFFFF,
					.total = 255, .seq = (uint8_t)seq,
					.data = &c, .len = 1 };

		assert_int_equal(reasm_add(r, &p, i, &m),
				 i == 254 ? REASM_COMPLETE : REASM_PENDING);
	}
	for (unsigned s = 0; s < 255; s++)
		want[s] = (char)('A' + s % 26);
	want[255] = '\0';
	assert_string_equal(m.text, want);
	assert_int_equal(m.received, 255);
	reasm_msg_clear(&m);
	reasm_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_any_order),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_expire_oldest_first),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_single_and_binary),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_extreme_times),
		cmocka_unit_test(test_max_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
