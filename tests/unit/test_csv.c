/* Tests for daemon/csv: the RFC 4180-ish reader behind invite --file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/csv.h"

/* Reads all of in and renders it as "line:f1|f2;line:f1..." for one
 * compact comparison per case. */
static int render(const char *in, size_t len, char *out, size_t outlen)
{
	struct csv_parser *p = csv_parser_new(in, len);
	struct csv_record rec;
	size_t o = 0;
	int r;

	assert_non_null(p);
	out[0] = '\0';
	while ((r = csv_next(p, &rec)) == 1) {
		o += (size_t)snprintf(out + o, outlen - o, "%u:", rec.line);
		for (size_t i = 0; i < rec.n; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s",
					      i ? "|" : "", rec.fields[i]);
		o += (size_t)snprintf(out + o, outlen - o, ";");
	}
	if (r < 0)
		snprintf(out + o, outlen - o, "ERR %s", csv_error(p));
	csv_parser_free(p);
	return r;
}

static void test_records(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "phone,name\n+34600111222,Ana\n",
		  "1:phone|name;2:+34600111222|Ana;" },
		/* CRLF, lone CR, no final newline */
		{ "a,b\r\nc,d\re,f", "1:a|b;2:c|d;3:e|f;" },
		/* quotes: comma, escaped quote, line break inside */
		{ "\"Pérez, Ana\",\"say \"\"hi\"\"\"\n",
		  "1:Pérez, Ana|say \"hi\";" },
		{ "x,\"two\nlines\"\ny,z\n", "1:x|two\nlines;3:y|z;" },
		{ "x,\"two\r\nlines\"\r\ny,z\r\n", "1:x|two\r\nlines;3:y|z;" },
		/* empty fields, trailing comma, empty quoted field */
		{ ",,\n\"\",a,\n", "1:||;2:|a|;" },
		/* empty lines are skipped, line numbers still count */
		{ "\n\na\n\r\n\nb\n", "3:a;6:b;" },
		/* UTF-8 BOM */
		{ "\xef\xbb\xbfphone\n1\n", "1:phone;2:1;" },
		/* a quote inside an unquoted field is kept */
		{ "5'11\",x\n", "1:5'11\"|x;" },
		/* spaces are data */
		{ " a , b \n", "1: a | b ;" },
		{ "", "" },
		{ "\n\n", "" },
	};
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = render(cases[i].in, strlen(cases[i].in), out,
			       sizeof(out));

		assert_int_equal(r, 0);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_errors(void **state)
{
	static const struct {
		const char *in;
		int err;
		const char *want;
	} cases[] = {
		{ "a\nb,\"open\nstill open", -EBADMSG,
		  "1:a;ERR line 2: unterminated quoted field" },
		{ "a,\"q\"x\n", -EBADMSG,
		  "ERR line 1: unexpected character after a closing quote" },
		{ "h\n\"x\ny\"z", -EBADMSG,
		  "1:h;ERR line 3: unexpected character after a closing quote" },
	};
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = render(cases[i].in, strlen(cases[i].in), out,
			       sizeof(out));

		assert_int_equal(r, cases[i].err);
		assert_string_equal(out, cases[i].want);
	}
}

/* Limits: a field over CSV_FIELD_MAX, too many fields; errors stick. */
static void test_limits(void **state)
{
	size_t n = CSV_FIELD_MAX + 10;
	char *big = malloc(n + 1);
	struct csv_parser *p;
	struct csv_record rec;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	p = csv_parser_new(big, n);
	assert_int_equal(csv_next(p, &rec), -E2BIG);
	assert_string_equal(csv_error(p), "line 1: field too long");
	assert_int_equal(csv_next(p, &rec), -E2BIG);
	csv_parser_free(p);
	/* exactly the limit is fine */
	p = csv_parser_new(big, CSV_FIELD_MAX);
	assert_int_equal(csv_next(p, &rec), 1);
	assert_int_equal(strlen(rec.fields[0]), CSV_FIELD_MAX);
	csv_parser_free(p);
	free(big);

	n = CSV_FIELDS_MAX + 1;
	big = malloc(n * 2 + 1);
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		memcpy(big + 2 * i, "a,", 2);
	big[2 * n - 1] = '\n';
	p = csv_parser_new(big, 2 * n);
	assert_int_equal(csv_next(p, &rec), -E2BIG);
	assert_string_equal(csv_error(p), "line 1: too many fields");
	csv_parser_free(p);
	p = csv_parser_new(big + 2, 2 * n - 2); /* CSV_FIELDS_MAX fields */
	assert_int_equal(csv_next(p, &rec), 1);
	assert_int_equal(rec.n, CSV_FIELDS_MAX);
	csv_parser_free(p);
	free(big);
	csv_parser_free(NULL);
}

/* A NUL byte would cut a field short for the caller: refused. */
static void test_embedded_nul(void **state)
{
	static const char in[] = "h\na\0b,c\n";
	static const char quoted[] = "\"a\0\"\n";
	struct csv_parser *p = csv_parser_new(in, sizeof(in) - 1);
	struct csv_record rec;

	(void)state;
	assert_int_equal(csv_next(p, &rec), 1);
	assert_int_equal(csv_next(p, &rec), -EBADMSG);
	assert_string_equal(csv_error(p), "line 2: NUL byte in a field");
	csv_parser_free(p);
	p = csv_parser_new(quoted, sizeof(quoted) - 1);
	assert_int_equal(csv_next(p, &rec), -EBADMSG);
	csv_parser_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_embedded_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
