/* Tests for daemon/log: levels, journald prefixes, phone masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

/* Captures what the logger writes, through a memory stream. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void capture_start(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	log_set_stream(c->f);
}

static const char *capture_end(struct capture *c)
{
	fflush(c->f);
	log_set_stream(NULL);
	fclose(c->f);
	return c->buf ? c->buf : "";
}

static void test_threshold_filters(void **state)
{
	struct capture c;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_WARN);
	capture_start(&c);
	log_info("hidden-info");
	log_debug("hidden-debug");
	log_warn("shown-warning %d", 42);
	log_err("shown-error");
	const char *out = capture_end(&c);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "shown-warning 42"));
	assert_non_null(strstr(out, "t[warning]: shown-warning"));
	assert_non_null(strstr(out, "t[error]: shown-error"));
	free(c.buf);
}

static void test_journal_prefixes(void **state)
{
	struct capture c;

	(void)state;
	setenv("JOURNAL_STREAM", "8:12345", 1);
	log_init("t", LOG_LVL_DEBUG);
	capture_start(&c);
	log_err("e");
	log_warn("w");
	log_info("i");
	log_debug("d");
	const char *out = capture_end(&c);
	assert_string_equal(out, "<3>e\n<4>w\n<6>i\n<7>d\n");
	free(c.buf);
	unsetenv("JOURNAL_STREAM");
}

static void test_level_parse(void **state)
{
	enum log_level l;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("WARNING", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_LVL_INFO);
	assert_int_equal(log_level_parse("verbose", &l), -1);
	assert_string_equal(log_level_name(LOG_LVL_NOTICE), "notice");
}

static void test_phone_masking(void **state)
{
	char buf[LOG_PHONE_MAX];

	(void)state;
	assert_string_equal(log_phone(LOG_LVL_INFO, "+34600111222", buf),
			    "+34*****222");
	assert_string_equal(log_phone(LOG_LVL_ERR, "+4915112345678", buf),
			    "+49*****678");
	/* Short or missing values never leak partially. */
	assert_string_equal(log_phone(LOG_LVL_INFO, "+3460", buf), "*****");
	assert_string_equal(log_phone(LOG_LVL_INFO, NULL, buf), "*****");
	/* Debug lines carry the number as given. */
	assert_string_equal(log_phone(LOG_LVL_DEBUG, "+34600111222", buf),
			    "+34600111222");
}

static void test_long_message_truncated_not_overflowed(void **state)
{
	struct capture c;
	char big[4096];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	unsetenv("JOURNAL_STREAM");
	log_init("t", LOG_LVL_INFO);
	capture_start(&c);
	log_info("%s", big);
	const char *out = capture_end(&c);
	assert_true(strlen(out) < 1100);
	assert_int_equal(out[strlen(out) - 1], '\n');
	free(c.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_filters),
		cmocka_unit_test(test_journal_prefixes),
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_phone_masking),
		cmocka_unit_test(test_long_message_truncated_not_overflowed),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
