/* Tests for daemon/phone: E.164 normalization and the country code table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/phone.h"

static const struct {
	const char *in;
	const char *out;
} good[] = {
	{ "+34600111222", "+34600111222" },
	{ "+34 600 111 222", "+34600111222" },
	{ "34600111222", "+34600111222" },
	{ "0034600111222", "+34600111222" },
	{ "00 34 600-111-222", "+34600111222" },
	{ "+34.600.111.222", "+34600111222" },
	{ "(+34) 600 11 12 22", "+34600111222" },
	{ "+1 (415) 555-0100", "+14155550100" },
	{ "1-415-555-0100", "+14155550100" },
	{ "+44 (0)20 7946 0958", "+442079460958" },
	{ "+44 20 7946 0958", "+442079460958" },
	{ "+351 912 345 678", "+351912345678" },
	{ "+7 912 345-67-89", "+79123456789" },
	{ "+49 1512 3456789", "+4915123456789" },
	{ "+39 06 698 12345", "+390669812345" },  /* Italy keeps its 0 */
	{ "+86 138 0013 8000", "+8613800138000" },
	{ "+880 1712-345678", "+8801712345678" },
	{ "+290 22222 1", "+290222221" },          /* St Helena, 9 digits */
	{ "+12345678", "+12345678" },              /* exactly 8 digits */
	{ "+123456789012345", "+123456789012345" }, /* exactly 15 */
	{ "\t+34 600/111/222 ", "+34600111222" },
	{ "+211 912 345 678", "+211912345678" },
	{ "+383 44 123 456", "+38344123456" },
	{ "+882 16 1234 5678", "+8821612345678" },
};

static const struct {
	const char *in;
	const char *why;
} bad[] = {
	{ "", "empty" },
	{ "   ", "empty" },
	{ "0600111222", "no country code" },
	{ "06 00 11 12 22", "no country code" },
	{ "000034600111222", "no country code" },
	{ "+034600111222", "no country code" },
	{ "+3460011", "too short" },
	{ "+34 600", "too short" },
	{ "34", "too short" },
	{ "+1234567890123456", "too long" },
	{ "+34 600 111 222 333 444 555 666 777 888", "too long" },
	{ "+34 600 ABC 222", "letters" },
	{ "+34600111222x", "letters" },
	{ "call me", "letters" },
	{ "+34 600 111+222", "'+' only at the start" },
	{ "++34600111222", "'+' only at the start" },
	{ "+34#600111222", "unexpected character" },
	{ "+34 600 111 222;", "unexpected character" },
	{ "+34\xc2\xa0" "600111222", "unexpected character" },
	{ "+210 123 456 78", "unknown country calling code" },
	{ "+259 123 456 78", "unknown country calling code" },
	{ "+280 123 456 78", "unknown country calling code" },
	{ "+384 123 456 78", "unknown country calling code" },
	{ "+388 312 345 678", "unknown country calling code" },
	{ "+422 123 456 78", "unknown country calling code" },
	{ "+671 123 456 78", "unknown country calling code" },
	{ "+835 123 456 78", "unknown country calling code" },
	{ "+997 123 456 78", "unknown country calling code" },
	{ "+999 123 456 78", "unknown country calling code" },
	{ "+", "no digits" },
	{ "00", "no digits" },
};

static void test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char out[PHONE_E164_MAX] = "";
		const char *why = NULL;
		int rc = phone_normalize(good[i].in, out, &why);
		if (rc != 0)
			fail_msg("'%s': %s", good[i].in, why);
		assert_string_equal(out, good[i].out);
		assert_true(phone_is_e164(out));
	}
}

static void test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char out[PHONE_E164_MAX] = "untouched";
		const char *why = NULL;

		int rc = phone_normalize(bad[i].in, out, &why);
		if (rc != -EINVAL)
			fail_msg("'%s' accepted as %s", bad[i].in, out);
		assert_non_null(why);
		if (strcmp(why, bad[i].why) != 0)
			fail_msg("'%s': got '%s', want '%s'", bad[i].in, why,
				 bad[i].why);
		assert_string_equal(out, "untouched");
	}
	assert_int_equal(phone_normalize(NULL, (char[PHONE_E164_MAX]){ 0 },
					 NULL), -EINVAL);
}

/* Every code of the assigned list must resolve through bsearch (a
 * mis-sorted table loses some), and the spare ones must not. */
static void test_table_complete(void **state)
{
	static const char *const assigned[] = {
		"1", "20", "211", "212", "213", "216", "218", "220", "229",
		"230", "239", "240", "249", "250", "258", "260", "269", "27",
		"290", "291", "297", "298", "299", "30", "31", "32", "33", "34",
		"350", "359", "36", "370", "379", "380", "383", "385", "389",
		"39", "40", "41", "420", "421", "423", "43", "44", "45", "46",
		"47", "48", "49", "500", "509", "51", "58", "590", "599", "60",
		"66", "670", "672", "679", "680", "683", "685", "689", "690",
		"692", "7", "800", "808", "81", "82", "84", "850", "852", "853",
		"855", "856", "86", "870", "878", "880", "881", "882", "883",
		"886", "888", "90", "95", "960", "968", "970", "977", "979",
		"98", "991", "992", "996", "998",
	};
	unsigned n1 = 0, n2 = 0, n3 = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(assigned) / sizeof(assigned[0]); i++) {
		char num[32];

		snprintf(num, sizeof(num), "+%s12345678", assigned[i]);
		assert_int_equal(phone_cc_len(num), strlen(assigned[i]));
		assert_non_null(phone_cc_name(num));
	}
	/* Walk every 3-digit start: a code of length L covers 10^(3-L) of
	 * them. The table holds 2 one-digit, 44 two-digit and 171
	 * three-digit codes; an entry out of order would be lost here. */
	for (int d = 100; d <= 999; d++) {
		char num[32];

		snprintf(num, sizeof(num), "+%d12345678", d);
		switch (phone_cc_len(num)) {
		case 1: n1++; break;
		case 2: n2++; break;
		case 3: n3++; break;
		}
	}
	assert_int_equal(n1, 2 * 100);
	assert_int_equal(n2, 44 * 10);
	assert_int_equal(n3, 171);
	assert_string_equal(phone_cc_name("+34600111222"), "Spain");
	assert_string_equal(phone_cc_name("+14155550100"),
			    "NANP (US, Canada, Caribbean)");
	assert_null(phone_cc_name("+99912345678"));
	assert_int_equal(phone_cc_len("34600111222"), 0);
}

static void test_is_e164(void **state)
{
	(void)state;
	assert_true(phone_is_e164("+34600111222"));
	assert_false(phone_is_e164("34600111222"));
	assert_false(phone_is_e164("+3460011"));
	assert_false(phone_is_e164("+34 600111222"));
	assert_false(phone_is_e164("+0346001112"));
	assert_false(phone_is_e164("+1234567890123456"));
	assert_false(phone_is_e164("+99912345678"));
	assert_false(phone_is_e164(NULL));
}

/* Normalizing a normalized number is the identity (what the store keeps
 * can be looked up again by what an admin types). */
static void test_idempotent(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char a[PHONE_E164_MAX], b[PHONE_E164_MAX];

		assert_int_equal(phone_normalize(good[i].in, a, NULL), 0);
		assert_int_equal(phone_normalize(a, b, NULL), 0);
		assert_string_equal(a, b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_is_e164),
		cmocka_unit_test(test_idempotent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
