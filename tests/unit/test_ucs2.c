/* Unit tests for at/ucs2: UTF-8 validation and UTF-8 <-> UTF-16BE. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at/ucs2.h"

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_valid_utf8(void **state)
{
	static const struct {
		const char *s;
		uint32_t cps[4];
		size_t n;
	} cases[] = {
		{ "A", { 0x41 }, 1 },
		{ "\xC3\xA9", { 0xE9 }, 1 },		     /* é */
		{ "\xE2\x82\xAC", { 0x20AC }, 1 },	     /* € */
		{ "\xF0\x9F\x98\x80", { 0x1F600 }, 1 },     /* 😀 */
		{ "\xF4\x8F\xBF\xBF", { 0x10FFFF }, 1 },    /* the last one */
		{ "\xEF\xBF\xBD" "a", { 0xFFFD, 0x61 }, 2 },
		{ "\xED\x9F\xBF", { 0xD7FF }, 1 },	     /* below surrogates */
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(cases); i++) {
		const char *p = cases[i].s;
		size_t count;

		for (size_t k = 0; k < cases[i].n; k++) {
			uint32_t cp;

			assert_int_equal(ucs2_utf8_next(&p, &cp), 1);
			assert_int_equal(cp, cases[i].cps[k]);
		}
		assert_int_equal(ucs2_utf8_next(&p, &(uint32_t){ 0 }), 0);
		assert_int_equal(ucs2_utf8_validate(cases[i].s, &count), 0);
		assert_int_equal(count, cases[i].n);
	}
}

static void test_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",		    /* stray continuation */
		"\xC0\x80",	    /* overlong NUL */
		"\xC1\xBF",	    /* overlong */
		"\xE0\x80\xAF",	    /* overlong '/' */
		"\xF0\x82\x82\xAC", /* overlong € */
		"\xED\xA0\x80",	    /* surrogate D800 */
		"\xED\xBF\xBF",	    /* surrogate DFFF */
		"\xF4\x90\x80\x80", /* above U+10FFFF */
		"\xF8\x88\x80\x80\x80",
		"\xFF",
		"\xE2\x82",	    /* truncated at the NUL */
		"a\xC3",
		"\xC3\x28",	    /* bad continuation */
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(bad); i++) {
		const char *p = bad[i];
		uint32_t cp;
		int rc;

		while ((rc = ucs2_utf8_next(&p, &cp)) > 0)
			;
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(ucs2_utf8_validate(bad[i], NULL), -EINVAL);
	}
}

static void test_utf16_put(void **state)
{
	uint8_t out[4];
	char u[4];

	(void)state;
	assert_int_equal(ucs2_put(0x41, out), 2);
	assert_memory_equal(out, "\x00\x41", 2);
	assert_int_equal(ucs2_put(0x1F600, out), 4);
	assert_memory_equal(out, "\xD8\x3D\xDE\x00", 4);
	assert_int_equal(ucs2_put(0x10FFFF, out), 4);
	assert_memory_equal(out, "\xDB\xFF\xDF\xFF", 4);
	assert_int_equal(ucs2_units(0xFFFF), 1);
	assert_int_equal(ucs2_units(0x10000), 2);
	assert_int_equal(ucs2_utf8_put(0x1F600, u), 4);
	assert_memory_equal(u, "\xF0\x9F\x98\x80", 4);
	assert_int_equal(ucs2_utf8_put(0x7FF, u), 2);
	assert_int_equal(ucs2_utf8_put(0x800, u), 3);
}

static void test_to_utf8(void **state)
{
	/* "Hé😀" then a lone high surrogate before 'A', a lone low surrogate,
	 * a NUL unit, and a high surrogate at the very end. */
	static const uint8_t in[] = { 0x00, 0x48, 0x00, 0xE9, 0xD8, 0x3D,
				      0xDE, 0x00, 0xD8, 0x00, 0x00, 0x41,
				      0xDC, 0x00, 0x00, 0x00, 0xDB, 0xFF };
	char out[64];

	(void)state;
	assert_int_equal(ucs2_to_utf8(in, 8, out, sizeof(out)), 7);
	assert_string_equal(out, "H\xC3\xA9\xF0\x9F\x98\x80");
	assert_true(ucs2_to_utf8(in, sizeof(in), out, sizeof(out)) > 0);
	assert_string_equal(out, "H\xC3\xA9\xF0\x9F\x98\x80"
				 "\xEF\xBF\xBD" "A"
				 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_int_equal(ucs2_to_utf8(in, 7, out, sizeof(out)), -EINVAL);
	/* A surrogate pair never splits on -ENOSPC. */
	assert_int_equal(ucs2_to_utf8(in, 8, out, 7), -ENOSPC);
	assert_string_equal(out, "H\xC3\xA9");
	assert_int_equal(ucs2_to_utf8(in, 0, out, 1), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_utf8),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_utf16_put),
		cmocka_unit_test(test_to_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
