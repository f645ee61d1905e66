/* Result iterator tests on responses captured from real modems. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "at/result.h"

#define DELIVER1 "07914306090909F9040B914306101122F200002410512103540012C8" \
		 "329BFD0699E5EF3608CE0EBBE9A019"
#define DELIVER2 "07914306090909F9040B914306303344F4000024105121035400115374" \
		 "DA4C07CDE961397D0E0AD34136"

#define MAX_LINES 8

struct resp {
	struct at_line lines[MAX_LINES];
	struct at_result res;
};

/* Builds a response; a line starting with "P=" is a PDU line. */
static void mk(struct resp *r, const char *const *text)
{
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	for (; text[n]; n++) {
		bool pdu = strncmp(text[n], "P=", 2) == 0;
		const char *s = pdu ? text[n] + 2 : text[n];

		assert_true(n < MAX_LINES);
		r->lines[n] = (struct at_line){ s, strlen(s), pdu };
	}
	r->res.err.type = AT_ERR_OK;
	r->res.final = "OK";
	r->res.lines = r->lines;
	r->res.n_lines = n;
}

static void test_csq(void **state)
{
	struct resp r;
	struct at_result_iter it;
	int rssi = 0, ber = 0;

	(void)state;
	mk(&r, (const char *[]){ "+CSQ: 20,99", NULL });
	at_result_iter_init(&it, &r.res);
	assert_null(at_result_line(&it));
	assert_true(at_result_next(&it, "+CSQ:"));
	assert_true(at_result_number(&it, &rssi));
	assert_true(at_result_number(&it, &ber));
	assert_int_equal(rssi, 20);
	assert_int_equal(ber, 99);
	assert_false(at_result_number(&it, &ber)); /* end of line */
	assert_false(at_result_next(&it, "+CSQ:"));
	assert_null(at_result_line(&it));
}

/* SIM800 "AT+CMGL=4" in PDU mode, a +CMTI already split off by the chat. */
static void test_cmgl_listing(void **state)
{
	struct resp r;
	struct at_result_iter it;
	int idx, stat, len;
	const char *hex, *alpha;
	size_t hlen, alen, count = 0;

	(void)state;
	mk(&r, (const char *[]){ "+CMGL: 1,1,\"\",35", "P=" DELIVER1,
				 "+CMGL: 2,0,,34", "P=" DELIVER2,
				 "+CMGL: 7,1,\"\",35", NULL });
	at_result_iter_init(&it, &r.res);
	while (at_result_next(&it, "+CMGL:")) {
		assert_true(at_result_number(&it, &idx));
		assert_true(at_result_number(&it, &stat));
		assert_true(at_result_string(&it, &alpha, &alen));
		assert_int_equal(alen, 0);
		assert_true(at_result_number(&it, &len));
		if (idx == 7) { /* header without its PDU line */
			assert_false(at_result_pdu(&it, &hex, &hlen));
			count++;
			continue;
		}
		assert_true(at_result_pdu(&it, &hex, &hlen));
		assert_int_equal(hlen, strlen(idx == 1 ? DELIVER1 : DELIVER2));
		/* TPDU length = octets after the SMSC part (8 here) */
		assert_int_equal((size_t)len, hlen / 2 - 8);
		assert_int_equal(stat, idx == 1 ? 1 : 0);
		count++;
	}
	assert_int_equal(count, 3);
}

static void test_cops_and_cpms(void **state)
{
	struct resp r;
	struct at_result_iter it;
	char name[32], mem[4], tiny[4];
	int mode, fmt, act, used, total;

	(void)state;
	mk(&r, (const char *[]){ "+COPS: 0,0,\"Orange F\",7",
				 "+CPMS: \"SM\",3,30,\"SM\",3,30,\"ME\",0,23",
				 NULL });
	at_result_iter_init(&it, &r.res);
	assert_true(at_result_next(&it, "+COPS:"));
	assert_true(at_result_number(&it, &mode));
	assert_true(at_result_number(&it, &fmt));
	assert_false(at_result_number(&it, &act)); /* a string: no move */
	assert_false(at_result_string_copy(&it, tiny, sizeof(tiny)));
	assert_true(at_result_string_copy(&it, name, sizeof(name)));
	assert_string_equal(name, "Orange F");
	assert_true(at_result_number(&it, &act));
	assert_int_equal(act, 7);
	assert_true(at_result_next(&it, "+CPMS:"));
	for (int i = 0; i < 3; i++) {
		assert_true(at_result_string_copy(&it, mem, sizeof(mem)));
		assert_true(at_result_number(&it, &used));
		assert_true(at_result_number(&it, &total));
	}
	assert_string_equal(mem, "ME");
	assert_int_equal(used, 0);
	assert_int_equal(total, 23);
}

/* "AT+CPMS=?" (Huawei quotes everything) and "AT+COPS=?" (nested lists,
 * empty field, ranges). */
static void test_lists_and_ranges(void **state)
{
	struct resp r;
	struct at_result_iter it;
	const char *s;
	size_t len;
	int lo, hi, stat, n = 0;
	char oper[16];

	(void)state;
	mk(&r, (const char *[]){
		       "+CPMS: (\"SM\",\"ME\"),(\"SM\",\"ME\"),(\"SM\")",
		       "+COPS: (2,\"Orange F\",\"Orange\",\"20801\",7),"
		       "(1,\"SFR\",\"SFR\",\"20810\",2),,(0-4),(0-2)",
		       "+CMGL: (0-4)", NULL });
	at_result_iter_init(&it, &r.res);
	assert_true(at_result_next(&it, "+CPMS:"));
	assert_true(at_result_open_list(&it));
	assert_true(at_result_string(&it, &s, &len));
	assert_memory_equal(s, "SM", 2);
	assert_true(at_result_string(&it, &s, &len));
	assert_memory_equal(s, "ME", 2);
	assert_false(at_result_string(&it, &s, &len)); /* at ')' */
	assert_false(at_result_skip(&it));
	assert_true(at_result_close_list(&it));
	assert_true(at_result_skip(&it)); /* the whole second list */
	assert_true(at_result_open_list(&it));
	assert_true(at_result_string(&it, &s, &len));
	assert_true(at_result_close_list(&it));
	assert_false(at_result_open_list(&it));

	assert_true(at_result_next(&it, "+COPS:"));
	while (at_result_open_list(&it)) {
		assert_true(at_result_number(&it, &stat));
		assert_true(at_result_string_copy(&it, oper, sizeof(oper)));
		assert_true(at_result_skip(&it));
		assert_true(at_result_skip(&it));
		assert_true(at_result_skip(&it));
		assert_true(at_result_close_list(&it));
		n++;
	}
	assert_int_equal(n, 2);
	assert_string_equal(oper, "SFR");
	assert_true(at_result_skip(&it)); /* empty field */
	assert_true(at_result_open_list(&it));
	assert_true(at_result_range(&it, &lo, &hi));
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 4);
	assert_true(at_result_close_list(&it));
	assert_true(at_result_skip(&it));
	assert_false(at_result_skip(&it)); /* end of line */

	assert_true(at_result_next(&it, "+CMGL:"));
	assert_true(at_result_open_list(&it));
	assert_false(at_result_number(&it, &lo)); /* "0-4" is no number */
	assert_true(at_result_range(&it, &lo, &hi));
	assert_int_equal(hi, 4);
}

static void test_creg_hex_and_numbers(void **state)
{
	struct resp r;
	struct at_result_iter it;
	uint8_t lac[2], ci[8];
	size_t n;
	int v;
	const char *rest;
	size_t rlen;

	(void)state;
	mk(&r, (const char *[]){ "+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7",
				 "+CMGS: 45", "+X: -12, \"3\" ,2147483648,x1",
				 "+CSCA: \"+34609090909\",145", NULL });
	at_result_iter_init(&it, &r.res);
	assert_true(at_result_next(&it, "+CREG:"));
	assert_true(at_result_skip(&it));
	assert_true(at_result_number(&it, &v));
	assert_int_equal(v, 1);
	assert_false(at_result_hex(&it, lac, 1, &n)); /* too small */
	assert_true(at_result_hex(&it, lac, sizeof(lac), &n));
	assert_int_equal(n, 2);
	assert_int_equal(lac[0], 0x1a);
	assert_int_equal(lac[1], 0x2b);
	assert_true(at_result_hex(&it, ci, sizeof(ci), &n));
	assert_int_equal(n, 4);
	assert_int_equal(ci[3], 0xe5);
	rest = at_result_rest(&it, &rlen);
	assert_int_equal(rlen, 1);
	assert_memory_equal(rest, "7", 1);

	assert_true(at_result_next(&it, "+CMGS:"));
	assert_true(at_result_number(&it, &v));
	assert_int_equal(v, 45);

	assert_true(at_result_next(&it, NULL)); /* any next line, at its start */
	assert_false(at_result_number(&it, &v)); /* "+X: -12" */
	assert_true(at_result_skip(&it));        /* "+X: -12" as a bare string */
	assert_int_equal(at_result_line(&it)->text[1], 'X');
	at_result_iter_init(&it, &r.res); /* again, with the prefix */
	assert_true(at_result_next(&it, "+X:"));
	assert_true(at_result_number(&it, &v));
	assert_int_equal(v, -12);
	assert_true(at_result_number(&it, &v)); /* quoted number, blanks */
	assert_int_equal(v, 3);
	assert_false(at_result_number(&it, &v)); /* > INT_MAX */
	assert_true(at_result_skip(&it));
	assert_false(at_result_number(&it, &v)); /* "x1" */
	assert_false(at_result_hex(&it, ci, sizeof(ci), &n));

	assert_true(at_result_next(&it, "+CSCA:"));
	assert_false(at_result_hex(&it, ci, sizeof(ci), &n)); /* '+' */
	assert_true(at_result_string_copy(&it, (char *)ci, sizeof(ci)) ==
		    false);
}

static void test_bare_lines_and_edge_cases(void **state)
{
	struct resp r;
	struct at_result_iter it;
	const char *s;
	size_t len;
	int v;

	(void)state;
	/* ATI on a Quectel EC25 */
	mk(&r, (const char *[]){ "Quectel", "EC25", "Revision: EC25EFAR06A03M4G",
				 NULL });
	at_result_iter_init(&it, &r.res);
	assert_true(at_result_next(&it, ""));
	assert_string_equal(at_result_line(&it)->text, "Quectel");
	assert_true(at_result_next(&it, NULL));
	assert_true(at_result_next(&it, "Revision:"));
	assert_true(at_result_string(&it, &s, &len));
	assert_int_equal(len, strlen("EC25EFAR06A03M4G"));
	assert_false(at_result_next(&it, NULL));
	assert_false(at_result_next(&it, NULL)); /* stays at the end */
	assert_false(at_result_pdu(&it, &s, &len));
	assert_false(at_result_number(&it, &v));
	assert_false(at_result_skip(&it));
	assert_false(at_result_close_list(&it));
	s = at_result_rest(&it, &len);
	assert_int_equal(len, 0);

	/* empty result; unterminated quote; unbalanced list */
	mk(&r, (const char *[]){ "+A: \"abc", "+B: (1,(2,3)", "+C: \"a\"b,1",
				 NULL });
	at_result_iter_init(&it, &r.res);
	assert_true(at_result_next(&it, "+A:"));
	assert_false(at_result_string(&it, &s, &len));
	assert_true(at_result_next(&it, "+B:"));
	assert_false(at_result_skip(&it));
	assert_true(at_result_open_list(&it));
	assert_true(at_result_number(&it, &v));
	assert_true(at_result_skip(&it));
	assert_false(at_result_close_list(&it));
	assert_true(at_result_next(&it, "+C:"));
	assert_false(at_result_string(&it, &s, &len)); /* junk after quote */
	assert_true(at_result_skip(&it));
	assert_true(at_result_number(&it, &v));
	assert_int_equal(v, 1);

	mk(&r, (const char *[]){ NULL });
	at_result_iter_init(&it, &r.res);
	assert_false(at_result_next(&it, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csq),
		cmocka_unit_test(test_cmgl_listing),
		cmocka_unit_test(test_cops_and_cpms),
		cmocka_unit_test(test_lists_and_ranges),
		cmocka_unit_test(test_creg_hex_and_numbers),
		cmocka_unit_test(test_bare_lines_and_edge_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
