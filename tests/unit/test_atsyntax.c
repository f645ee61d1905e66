/* Framing tests: modem transcripts fed whole, byte by byte and split at
 * every position (and every pair of positions) must yield the same events.
 * The PDUs were checked with python-gammu's DecodePDU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at/atsyntax.h"

#define DELIVER1 "07914306090909F9040B914306101122F200002410512103540012C8" \
		 "329BFD0699E5EF3608CE0EBBE9A019"
#define DELIVER2 "07914306090909F9040B914306303344F4000024105121035400115374" \
		 "DA4C07CDE961397D0E0AD34136"
#define STATUS1 "07914306090909F9062D0B914306101122F2241051210354002410512103" \
		"050000"
#define SUBMIT1 "0011000B914306101122F20000AA1DC161B3A803E5DF753968FC269741E9" \
		"39E8B68CCA9AD81C944605"

#define SIM800_BOOT "\x00\xff\xfe\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n" \
		    "+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n"
#define NUL_LINES "O\x00K\r\n+CS\x7fQ: 1,2\r\n"

/* Records events as text: "L:line\n", "P:pdu\n", ">\n", "O:len\n". */
struct rec {
	struct atsyn *syn;
	char *buf;
	size_t len, cap;
	unsigned drops;
};

static void rec_put(struct rec *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->buf = realloc(r->buf, r->cap);
		assert_non_null(r->buf);
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

static const char *const pdu_headers[] = { "+CMT:", "+CDS:", "+CMGR:",
					   "+CMGL:" };

static void on_event(enum atsyn_event ev, const char *line, size_t len,
		     void *ctx)
{
	struct rec *r = ctx;
	char tmp[32];

	assert_int_equal(strlen(line), len); /* NUL-terminated, no NULs */
	switch (ev) {
	case ATSYN_LINE:
		rec_put(r, "L:", 2);
		rec_put(r, line, len);
		rec_put(r, "\n", 1);
		/* the chat's role: a PDU header announces a PDU line */
		for (size_t i = 0; i < 4; i++)
			if (strncmp(line, pdu_headers[i],
				    strlen(pdu_headers[i])) == 0)
				atsyn_hint_pdu(r->syn);
		break;
	case ATSYN_PDU:
		rec_put(r, "P:", 2);
		rec_put(r, line, len);
		rec_put(r, "\n", 1);
		break;
	case ATSYN_PROMPT:
		assert_string_equal(line, "> ");
		rec_put(r, ">\n", 2);
		break;
	case ATSYN_OVERFLOW:
		snprintf(tmp, sizeof(tmp), "O:%zu\n", len);
		rec_put(r, tmp, strlen(tmp));
		break;
	}
}

static void on_drop(uint8_t byte, void *ctx)
{
	struct rec *r = ctx;

	(void)byte;
	r->drops++;
}

static void rec_init(struct rec *r, bool expect_prompt)
{
	memset(r, 0, sizeof(*r));
	r->syn = atsyn_new(on_event, r);
	assert_non_null(r->syn);
	atsyn_set_drop(r->syn, on_drop, r);
	atsyn_expect_prompt(r->syn, expect_prompt);
	rec_put(r, "", 0);
}

static void rec_done(struct rec *r)
{
	atsyn_free(r->syn);
	free(r->buf);
}

struct transcript {
	const char *name;
	const char *bytes;
	size_t len;        /* 0: strlen(bytes) */
	bool expect_prompt;
	const char *events;
	unsigned drops;
};

static const struct transcript transcripts[] = {
	{
		.name = "SIM800 boot with power-on garbage",
		.bytes = SIM800_BOOT,
		.len = sizeof(SIM800_BOOT) - 1,
		.events = "L:\xfe\nL:RDY\nL:+CFUN: 1\nL:+CPIN: READY\n"
			  "L:Call Ready\nL:SMS Ready\n",
		.drops = 2,
	},
	{
		.name = "Huawei E3372 ^RSSI/^BOOT noise around +CSQ",
		.bytes = "\r\n^RSSI:17\r\n\r\n^BOOT:20952872,0,0,0,72\r\n"
			 "\r\n+CSQ: 17,99\r\n\r\n^RSSI:18\r\n\r\nOK\r\n",
		.events = "L:^RSSI:17\nL:^BOOT:20952872,0,0,0,72\n"
			  "L:+CSQ: 17,99\nL:^RSSI:18\nL:OK\n",
	},
	{
		.name = "Quectel EC25 boot",
		.bytes = "\r\nRDY\r\n\r\n+QIND: \"FOTA\",\"END\",0\r\n"
			 "\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n"
			 "\r\n+QIND: PB DONE\r\n",
		.events = "L:RDY\nL:+QIND: \"FOTA\",\"END\",0\n"
			  "L:+CPIN: READY\nL:+QIND: SMS DONE\n"
			  "L:+QIND: PB DONE\n",
	},
	{
		.name = "ATE1 echo session (echo ends in a bare CR)",
		.bytes = "ATE1\r\r\nOK\r\nAT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
			 "ATI\r\r\nSIM800 R14.18\r\n\r\nOK\r\n",
		.events = "L:ATE1\nL:OK\nL:AT+CSQ\nL:+CSQ: 20,99\nL:OK\n"
			  "L:ATI\nL:SIM800 R14.18\nL:OK\n",
	},
	{
		.name = "SIM800 +CMGL listing with a +CMTI in the middle",
		.bytes = "\r\n+CMGL: 1,1,\"\",35\r\n" DELIVER1 "\r\n"
			 "\r\n+CMTI: \"SM\",3\r\n"
			 "+CMGL: 2,0,\"\",34\r\n" DELIVER2 "\r\n\r\nOK\r\n",
		.events = "L:+CMGL: 1,1,\"\",35\nP:" DELIVER1 "\n"
			  "L:+CMTI: \"SM\",3\nL:+CMGL: 2,0,\"\",34\n"
			  "P:" DELIVER2 "\nL:OK\n",
	},
	{
		.name = "+CMT two-line URC, then +CDS without blank line",
		.bytes = "\r\n+CMT: \"\",35\r\n" DELIVER1 "\r\n"
			 "+CDS: 25\r\n" STATUS1 "\r\n",
		.events = "L:+CMT: \"\",35\nP:" DELIVER1 "\nL:+CDS: 25\n"
			  "P:" STATUS1 "\n",
	},
	{
		.name = "+CMGS prompt flow with ATE1 (PDU echoed)",
		.bytes = "AT+CMGS=40\r\r\n> " SUBMIT1 "\x1a\r\n+CMGS: 45\r\n"
			 "\r\nOK\r\n",
		.expect_prompt = true,
		.events = "L:AT+CMGS=40\n>\nL:" SUBMIT1 "\nL:+CMGS: 45\n"
			  "L:OK\n",
		.drops = 1,
	},
	{
		.name = "prompt not expected, at line start",
		.bytes = "\r\n> \r\n+CMS ERROR: 304\r\n",
		.events = ">\nL:+CMS ERROR: 304\n",
	},
	{
		.name = "'>' inside a line or not followed by a space",
		.bytes = "a> b\r\n>x\r\n>\r\nOK\r\n",
		.events = "L:a> b\nL:>x\nL:>\nL:OK\n",
	},
	{
		.name = "expected prompt without space (some Telit firmwares)",
		.bytes = "\r\n>",
		.expect_prompt = true,
		.events = ">\n",
	},
	{
		.name = "+CMGR of an empty slot: hint consumed by a non-hex line",
		.bytes = "\r\n+CMGR: 0,,0\r\n\r\nOK\r\n",
		.events = "L:+CMGR: 0,,0\nL:OK\n",
	},
	{
		.name = "bare LF, bare CR, LF CR line ends and trailing blanks",
		.bytes = "+CREG: 0,1\n+CSQ: 9,0 \rOK\t\n\r",
		.events = "L:+CREG: 0,1\nL:+CSQ: 9,0\nL:OK\n",
	},
	{
		.name = "NULs and DEL inside lines are dropped",
		.bytes = NUL_LINES,
		.len = sizeof(NUL_LINES) - 1,
		.events = "L:OK\nL:+CSQ: 1,2\n",
		.drops = 2,
	},
};

static size_t tlen(const struct transcript *t)
{
	return t->len ? t->len : strlen(t->bytes);
}

/* Feeds t in chunks ending at the given cut positions. */
static void feed_cuts(const struct transcript *t, const size_t *cuts,
		      size_t ncuts)
{
	struct rec r;
	size_t pos = 0, n = tlen(t);

	rec_init(&r, t->expect_prompt);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		atsyn_feed(r.syn, (const uint8_t *)t->bytes + pos, end - pos);
		pos = end;
	}
	if (strcmp(r.buf, t->events) != 0 || r.drops != t->drops)
		fail_msg("%s (cuts %zu: %zu %zu): got\n%s\ndrops %u", t->name,
			 ncuts, ncuts ? cuts[0] : 0, ncuts > 1 ? cuts[1] : 0,
			 r.buf, r.drops);
	rec_done(&r);
}

static void test_transcripts_whole(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(*transcripts); i++)
		feed_cuts(&transcripts[i], NULL, 0);
}

static void test_transcripts_byte_by_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(*transcripts); i++) {
		const struct transcript *t = &transcripts[i];
		size_t n = tlen(t), *cuts = calloc(n, sizeof(*cuts));

		assert_non_null(cuts);
		for (size_t k = 0; k < n; k++)
			cuts[k] = k;
		feed_cuts(t, cuts, n);
		free(cuts);
	}
}

static void test_transcripts_every_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(*transcripts); i++) {
		const struct transcript *t = &transcripts[i];
		size_t n = tlen(t);

		for (size_t a = 0; a <= n; a++) {
			feed_cuts(t, &a, 1);
			/* every pair of cut points, on the short ones */
			for (size_t b = a; n <= 200 && b <= n; b++)
				feed_cuts(t, (size_t[]){ a, b }, 2);
		}
	}
}

static void test_overflow_discards_whole_line(void **state)
{
	size_t n = ATSYN_LINE_MAX + 500;
	char *big = malloc(n);
	struct rec r;

	(void)state;
	assert_non_null(big);
	memset(big, 'A', n);
	for (size_t chunk = 1; chunk <= 4096; chunk *= 8) {
		rec_init(&r, false);
		atsyn_hint_pdu(r.syn);
		atsyn_feed(r.syn, (const uint8_t *)"\r\n", 2);
		for (size_t off = 0; off < n; off += chunk)
			atsyn_feed(r.syn, (const uint8_t *)big + off,
				   off + chunk > n ? n - off : chunk);
		/* the hint died with the overflowed line */
		atsyn_feed(r.syn, (const uint8_t *)"\r\nABCD\r\nOK\r\n", 12);
		assert_string_equal(r.buf, "O:4096\nL:ABCD\nL:OK\n");
		rec_done(&r);
	}
	free(big);
}

static void test_line_of_exactly_max_is_kept(void **state)
{
	char *line = malloc(ATSYN_LINE_MAX + 2);
	struct rec r;

	(void)state;
	assert_non_null(line);
	memset(line, '0', ATSYN_LINE_MAX);
	memcpy(line + ATSYN_LINE_MAX, "\r\n", 2);
	rec_init(&r, false);
	atsyn_hint_pdu(r.syn);
	atsyn_feed(r.syn, (const uint8_t *)line, ATSYN_LINE_MAX + 2);
	assert_int_equal(r.len, 2 + ATSYN_LINE_MAX + 1);
	assert_memory_equal(r.buf, "P:0000", 6);
	/* one more byte overflows */
	line[0] = '1';
	atsyn_feed(r.syn, (const uint8_t *)"1", 1);
	atsyn_feed(r.syn, (const uint8_t *)line, ATSYN_LINE_MAX + 2);
	assert_string_equal(r.buf + 2 + ATSYN_LINE_MAX + 1, "O:4096\n");
	rec_done(&r);
	free(line);
}

static void test_reset_drops_partial_line(void **state)
{
	struct rec r;

	(void)state;
	rec_init(&r, false);
	atsyn_hint_pdu(r.syn);
	atsyn_feed(r.syn, (const uint8_t *)"+CSQ: 1", 7);
	atsyn_reset(r.syn);
	atsyn_feed(r.syn, (const uint8_t *)"0011\r\n", 6);
	assert_string_equal(r.buf, "L:0011\n");
	rec_done(&r);
}

static void test_all_bytes_no_crash(void **state)
{
	uint8_t all[512];
	struct rec r;

	(void)state;
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)(i * 7 + 3);
	rec_init(&r, true);
	atsyn_hint_pdu(r.syn);
	atsyn_feed(r.syn, all, sizeof(all));
	atsyn_feed(r.syn, (const uint8_t *)"\r\n", 2);
	/* 33 control bytes + DEL + 0xFF per 256 byte values, minus CR/LF
	 * which are line ends, and TAB which is kept */
	assert_int_equal(r.drops, 2 * (32 - 3 + 2));
	rec_done(&r);
	assert_string_equal(atsyn_event_name(ATSYN_PDU), "PDU");
	assert_null(atsyn_new(NULL, NULL));
	atsyn_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts_whole),
		cmocka_unit_test(test_transcripts_byte_by_byte),
		cmocka_unit_test(test_transcripts_every_split),
		cmocka_unit_test(test_overflow_discards_whole_line),
		cmocka_unit_test(test_line_of_exactly_max_is_kept),
		cmocka_unit_test(test_reset_drops_partial_line),
		cmocka_unit_test(test_all_bytes_no_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
