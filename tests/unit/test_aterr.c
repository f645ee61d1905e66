/* Error table tests: names, retry classes, formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "at/aterr.h"

static struct at_error E(enum at_err_type type, int code)
{
	return (struct at_error){ type, code };
}

/* The outbox's retry decisions (TS 27.005 3.2.5, TS 24.011 E.2,
 * TS 23.040 9.2.3.22, TS 27.007 9.2). */
static const struct {
	enum at_err_type type;
	int code;
	enum at_err_class cls;
	const char *name;
} cases[] = {
	{ AT_ERR_OK, -1, AT_ERRC_OK, "OK" },
	{ AT_ERR_CONNECT, -1, AT_ERRC_OK, "CONNECT" },
	{ AT_ERR_CMS, 330, AT_ERRC_CONFIG, "SMSC address unknown" },
	{ AT_ERR_CMS, 331, AT_ERRC_TRANSIENT, "no network service" },
	{ AT_ERR_CMS, 332, AT_ERRC_TRANSIENT, "network timeout" },
	{ AT_ERR_CMS, 322, AT_ERRC_STORAGE, "memory full" },
	{ AT_ERR_CMS, 304, AT_ERRC_PERMANENT, "invalid PDU mode parameter" },
	{ AT_ERR_CMS, 38, AT_ERRC_TRANSIENT, "network out of order" },
	{ AT_ERR_CMS, 21, AT_ERRC_PERMANENT,
	  "short message transfer rejected" },
	{ AT_ERR_CMS, 1, AT_ERRC_PERMANENT, "unassigned number" },
	{ AT_ERR_CMS, 42, AT_ERRC_TRANSIENT, "congestion" },
	{ AT_ERR_CMS, 195, AT_ERRC_PERMANENT, "invalid SME address" },
	{ AT_ERR_CMS, 310, AT_ERRC_CONFIG, "SIM not inserted" },
	{ AT_ERR_CMS, 500, AT_ERRC_TRANSIENT, "unknown error" },
	{ AT_ERR_CMS, 2, AT_ERRC_TRANSIENT, "unknown CMS error" },
	{ AT_ERR_CMS, 9999, AT_ERRC_TRANSIENT, "unknown CMS error" },
	{ AT_ERR_CMS, -1, AT_ERRC_TRANSIENT, "unknown CMS error" },
	{ AT_ERR_CME, 11, AT_ERRC_CONFIG, "SIM PIN required" },
	{ AT_ERR_CME, 30, AT_ERRC_TRANSIENT, "no network service" },
	{ AT_ERR_CME, 4, AT_ERRC_PERMANENT, "operation not supported" },
	{ AT_ERR_CME, 20, AT_ERRC_STORAGE, "memory full" },
	{ AT_ERR_CME, 100, AT_ERRC_TRANSIENT, "unknown" },
	{ AT_ERR_CME, 5000, AT_ERRC_TRANSIENT, "unknown CME error" },
	{ AT_ERR_TIMEOUT, -1, AT_ERRC_TRANSIENT, "timeout" },
	{ AT_ERR_IO, -1, AT_ERRC_TRANSIENT, "I/O error" },
	{ AT_ERR_ERROR, -1, AT_ERRC_TRANSIENT, "ERROR" },
	{ AT_ERR_BUSY, -1, AT_ERRC_TRANSIENT, "BUSY" },
	{ AT_ERR_NO_CARRIER, -1, AT_ERRC_TRANSIENT, "NO CARRIER" },
};

static void test_classes_and_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct at_error e = E(cases[i].type, cases[i].code);
		enum at_err_class c = at_err_class(&e);

		if (c != cases[i].cls ||
		    strcmp(at_err_name(&e), cases[i].name) != 0)
			fail_msg("%s %d: class %d name \"%s\"",
				 at_err_type_name(e.type), e.code, c,
				 at_err_name(&e));
		assert_int_equal(at_err_is_transient(&e),
				 c == AT_ERRC_TRANSIENT || c == AT_ERRC_STORAGE);
		assert_int_equal(at_err_is_ok(&e), c == AT_ERRC_OK);
	}
}

static void test_format(void **state)
{
	char buf[AT_ERR_FMT_MAX];
	struct at_error e;

	(void)state;
	e = E(AT_ERR_CMS, 330);
	at_err_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "+CMS ERROR: 330 (SMSC address unknown)");
	e = E(AT_ERR_CME, -1);
	at_err_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "+CME ERROR: ? (unknown CME error)");
	e = E(AT_ERR_TIMEOUT, -1);
	assert_int_equal(at_err_format(&e, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "timeout");
	/* truncation NUL-terminates */
	e = E(AT_ERR_CMS, 21);
	assert_true(at_err_format(&e, buf, 10) > 10);
	assert_string_equal(buf, "+CMS ERRO");
	/* the longest names fit in AT_ERR_FMT_MAX */
	for (int code = 0; code < 1000; code++) {
		e = E(AT_ERR_CME, code);
		assert_true(at_err_format(&e, buf, sizeof(buf)) <
			    AT_ERR_FMT_MAX);
		e = E(AT_ERR_CMS, code);
		assert_true(at_err_format(&e, buf, sizeof(buf)) <
			    AT_ERR_FMT_MAX);
	}
}

static void test_verbose_text(void **state)
{
	(void)state;
	assert_int_equal(at_err_code_from_text(AT_ERR_CME, "SIM PIN required"),
			 11);
	assert_int_equal(at_err_code_from_text(AT_ERR_CME, "sim not inserted"),
			 10);
	assert_int_equal(at_err_code_from_text(AT_ERR_CMS,
					       "SMSC address unknown"), 330);
	assert_int_equal(at_err_code_from_text(AT_ERR_CMS, "nonsense"), -1);
	assert_int_equal(at_err_code_from_text(AT_ERR_OK, "SIM PIN required"),
			 -1);
}

static void test_type_names(void **state)
{
	(void)state;
	assert_string_equal(at_err_type_name(AT_ERR_OK), "ok");
	assert_string_equal(at_err_type_name(AT_ERR_CMS), "cms");
	assert_string_equal(at_err_type_name(AT_ERR_NO_DIALTONE),
			    "no_dialtone");
	assert_string_equal(at_err_type_name(AT_ERR_TYPE_COUNT), "invalid");
	for (int t = 0; t < AT_ERR_TYPE_COUNT; t++) {
		struct at_error e = E((enum at_err_type)t, -1);

		assert_non_null(at_err_name(&e));
		assert_string_not_equal(at_err_type_name(e.type), "invalid");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes_and_names),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_verbose_text),
		cmocka_unit_test(test_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
