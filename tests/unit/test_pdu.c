/* Unit tests for at/pdu: decoding known PDUs (worked by hand from TS 23.040
 * and cross-checked with gammu), malformed input, encoding, the encoding
 * plan around part boundaries, and encode -> decode -> reassemble round
 * trips over generated texts of every alphabet mix. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at/pdu.h"
#include "at/reasm.h"

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))
#define BIG_TEXT (153 * 255 * 4 + 16)

static struct pdu_part parts[256];
static char text_buf[BIG_TEXT];
static char joined[BIG_TEXT];

static struct pdu_sms decode_ok(const char *hex)
{
	struct pdu_sms s;
	char err[PDU_ERR_MAX] = "";
	int rc = pdu_decode_hex(hex, &s, err, sizeof(err));

	if (rc != 0)
		fail_msg("decode %s: %d %s", hex, rc, err);
	return s;
}

static void assert_time(const struct pdu_time *t, int y, int mo, int d, int h,
			int mi, int s, int q)
{
	assert_int_equal(t->year, y);
	assert_int_equal(t->month, mo);
	assert_int_equal(t->day, d);
	assert_int_equal(t->hour, h);
	assert_int_equal(t->minute, mi);
	assert_int_equal(t->second, s);
	assert_int_equal(t->tz_quarters, q);
}

/* ---- decoding known PDUs ----------------------------------------------------- */

static void test_deliver_international(void **state)
{
	/* The classic tutorial DELIVER: "How are you?" from +31641600986. */
	struct pdu_sms s = decode_ok(
		"07911326040000F0040B911346610089F60000208062917314080CC8F71D"
		"14969741F977FD07");

	(void)state;
	assert_int_equal(s.type, PDU_DELIVER);
	assert_string_equal(s.smsc.text, "+31624000000");
	assert_int_equal(s.smsc.ton, 1);
	assert_int_equal(s.smsc.npi, 1);
	assert_string_equal(s.addr.text, "+31641600986");
	assert_string_equal(s.text, "How are you?");
	assert_int_equal(s.encoding, PDU_ENC_GSM7);
	assert_int_equal(s.msg_class, -1);
	assert_false(s.has_udh);
	assert_false(s.concat.present);
	/* zone octet 0x08: sign bit set, zero quarters */
	assert_time(&s.scts, 2002, 8, 26, 19, 37, 41, 0);
}

static void test_deliver_alphanumeric(void **state)
{
	/* Alphanumeric originator "ACME Plant": TON 5, 10 septets packed in
	 * 9 octets, length 0x12 = 18 semi-octets. */
	struct pdu_sms s = decode_ok(
		"07914477581006500412D0C161B30882B2C36E3A00001120821105050A12"
		"5374DA4C07CDE961397D0E82D9743018");

	(void)state;
	assert_int_equal(s.type, PDU_DELIVER);
	assert_string_equal(s.smsc.text, "+447785016005");
	assert_string_equal(s.addr.text, "ACME Plant");
	assert_int_equal(s.addr.ton, 5);
	assert_int_equal(s.addr.npi, 0);
	assert_string_equal(s.text, "Shift starts 06:00");
	assert_time(&s.scts, 2011, 2, 28, 11, 50, 50, -20);
}

static void test_status_report(void **state)
{
	/* SMS-STATUS-REPORT: MR 0x5A, delivered, both times -05:00. */
	struct pdu_sms s = decode_ok("06915155555555065A0B915155555555F51120"
				     "821105050A1120821105050A00");

	(void)state;
	assert_int_equal(s.type, PDU_STATUS_REPORT);
	assert_string_equal(s.smsc.text, "+1555555555");
	assert_string_equal(s.addr.text, "+15555555555");
	assert_int_equal(s.mr, 90);
	assert_int_equal(s.status, 0);
	assert_false(s.has_ud);
	assert_time(&s.scts, 2011, 2, 28, 11, 50, 50, -20);
	assert_time(&s.discharge, 2011, 2, 28, 11, 50, 50, -20);
	assert_string_equal(pdu_status_text(s.status), "received by the SME");
	assert_int_equal(pdu_status_class(s.status), PDU_ST_DELIVERED);
}

static void test_status_report_tail(void **state)
{
	/* TP-PI 0x06: DCS and UDL follow; status 0x46 = validity expired. */
	struct pdu_sms s = decode_ok("00062A0B914306101122F21120821105050A1120"
				     "821105050A46060005E8329BFD06");
	struct pdu_sms t;

	(void)state;
	assert_int_equal(s.mr, 0x2A);
	assert_int_equal(s.status, 0x46);
	assert_true(s.has_ud);
	assert_string_equal(s.text, "hello");
	assert_int_equal(pdu_status_class(s.status), PDU_ST_FAILED);
	assert_string_equal(pdu_status_text(0x46), "validity period expired");
	/* TP-PI with the extension bit: a second PI octet, nothing else */
	t = decode_ok("00063B0B914306101122F21120821105050A1120821105050A2180"
		      "00");
	assert_int_equal(t.status, 0x21);
	assert_false(t.has_ud);
	assert_int_equal(pdu_status_class(t.status), PDU_ST_PENDING);
}

static void test_concat_gsm7_fill(void **state)
{
	/* 8-bit reference concatenation: UDH 05 00 03 2A 02 01 (48 bits),
	 * then one fill bit before the first septet. */
	struct pdu_sms s = decode_ok(
		"0791447758100650440B914306101122F200001120821105050A100500032A"
		"0201A061391DF4769741");

	(void)state;
	assert_true(s.has_udh);
	assert_true(s.concat.present);
	assert_false(s.concat.ref16);
	assert_int_equal(s.concat.ref, 42);
	assert_int_equal(s.concat.total, 2);
	assert_int_equal(s.concat.seq, 1);
	assert_string_equal(s.text, "Part one ");
}

static void test_concat_ucs2_ref16(void **state)
{
	/* 16-bit reference 0x1234, part 2 of 3, UCS-2 with a surrogate pair. */
	struct pdu_sms s = decode_ok(
		"0791447758100650440B914306101122F200081120821105050A130608041234"
		"0302004F006C00E10020D83DDE00");

	(void)state;
	assert_int_equal(s.encoding, PDU_ENC_UCS2);
	assert_true(s.concat.ref16);
	assert_int_equal(s.concat.ref, 0x1234);
	assert_int_equal(s.concat.total, 3);
	assert_int_equal(s.concat.seq, 2);
	assert_string_equal(s.text, "Ol\xC3\xA1 \xF0\x9F\x98\x80");
}

static void test_8bit_class1(void **state)
{
	/* DCS 0xF5: data coding/message class group, 8-bit, class 1. */
	struct pdu_sms s = decode_ok("0791447758100650040B914306101122F200F511"
				     "20821105050A04010203FF");

	(void)state;
	assert_int_equal(s.encoding, PDU_ENC_8BIT);
	assert_int_equal(s.msg_class, 1);
	assert_int_equal(s.data_len, 4);
	assert_memory_equal(s.data, "\x01\x02\x03\xFF", 4);
	assert_string_equal(s.text, "");
}

static void test_submit_decode(void **state)
{
	struct pdu_sms s =
		decode_ok("0001000B914306101122F200000AE8329BFD4697D9EC37");
	struct pdu_sms v = decode_ok("0011FF0B914306101122F20000AA05E8329BFD06");

	(void)state;
	assert_int_equal(s.type, PDU_SUBMIT);
	assert_string_equal(s.smsc.text, "");
	assert_string_equal(s.addr.text, "+34600111222");
	assert_string_equal(s.text, "hellohello");
	assert_int_equal(s.validity_min, 0);
	/* relative TP-VP 0xAA = 170: (170 - 166) days */
	assert_int_equal(v.mr, 0xFF);
	assert_int_equal(v.validity_min, 4 * 1440);
	assert_string_equal(v.text, "hello");
}

static void test_shift_tables_decode(void **state)
{
	/* IE 24 01 02: Spanish single shift; ESC 0x6F is ó. */
	struct pdu_sms es = decode_ok("00440B914306101122F200001120821105050A0D"
				      "032401021886DDE3F4E6ED06");
	/* IE 25 01 03 + 24 01 03: Portuguese locking 0x04 = ê, single
	 * ESC 0x61 = Â. */
	struct pdu_sms pt = decode_ok("00440B914306101122F200001120821105050A0C"
				      "06250103240103844D180F");
	/* IE 24 01 01 (Turkish, unsupported): the default extension table,
	 * so ESC 0x65 stays €. */
	struct pdu_sms tr = decode_ok("00440B914306101122F200001120821105050A07"
				      "03240101D89401");

	(void)state;
	assert_int_equal(es.lang_single, PDU_LANG_SPANISH);
	assert_int_equal(es.lang_locking, PDU_LANG_DEFAULT);
	assert_string_equal(es.text, "Canci\xC3\xB3n");
	assert_int_equal(pt.lang_single, PDU_LANG_PORTUGUESE);
	assert_int_equal(pt.lang_locking, PDU_LANG_PORTUGUESE);
	assert_string_equal(pt.text, "\xC3\xAA\xC3\x82x");
	assert_int_equal(tr.lang_single, PDU_LANG_DEFAULT);
	assert_string_equal(tr.text, "\xE2\x82\xAC");
}

static void test_udh_unknown_ie(void **state)
{
	/* IE 0x70 (2 octets) is skipped, the concatenation IE after it is
	 * read; seq 0 or seq > total make the concatenation IE ignored. */
	struct pdu_sms s = decode_ok("00440B914306101122F200041120821105050A0C"
				     "097002AABB00030502016869");
	struct pdu_sms z = decode_ok("00440B914306101122F200041120821105050A07"
				     "05000307030078");
	struct pdu_sms o = decode_ok("00440B914306101122F200041120821105050A07"
				     "05000307020478");

	(void)state;
	assert_true(s.concat.present);
	assert_int_equal(s.concat.ref, 5);
	assert_int_equal(s.concat.total, 2);
	assert_int_equal(s.concat.seq, 1);
	assert_int_equal(s.data_len, 2);
	assert_memory_equal(s.data, "hi", 2);
	assert_true(z.has_udh);
	assert_false(z.concat.present);
	assert_false(o.concat.present);
	assert_int_equal(o.data_len, 1);
}

static void test_dcs_groups(void **state)
{
	static const struct {
		const char *hex;
		enum pdu_encoding enc;
		int cls;
		const char *text;
	} cases[] = {
		/* 0xF0: GSM 7-bit, class 0 (flash) */
		{ "00040B914306101122F200F01120821105050A056676788E06",
		  PDU_ENC_GSM7, 0, "flash" },
		/* 0xC0: message waiting, discard, default alphabet */
		{ "00040B914306101122F200C01120821105050A02F636", PDU_ENC_GSM7,
		  -1, "vm" },
		/* 0xE0: message waiting, store, UCS-2 */
		{ "00040B914306101122F200E01120821105050A040076006D",
		  PDU_ENC_UCS2, -1, "vm" },
		/* 0x48: automatic deletion group, UCS-2 */
		{ "00040B914306101122F200481120821105050A04006F006B",
		  PDU_ENC_UCS2, -1, "ok" },
		/* 0x51: automatic deletion group, GSM 7-bit, class 1 */
		{ "00040B914306101122F200511120821105050A02EF35", PDU_ENC_GSM7,
		  1, "ok" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(cases); i++) {
		struct pdu_sms s = decode_ok(cases[i].hex);

		assert_int_equal(s.encoding, cases[i].enc);
		assert_int_equal(s.msg_class, cases[i].cls);
		assert_string_equal(s.text, cases[i].text);
	}
}

static void test_time_zone_and_century(void **state)
{
	/* SMSC absent; 1999-12-31 23:59:59, zone octet 0x61 = +16 quarters. */
	struct pdu_sms s = decode_ok("00040B914306101122F20000992113329595610"
				     "2EF35");

	(void)state;
	assert_string_equal(s.smsc.text, "");
	assert_time(&s.scts, 1999, 12, 31, 23, 59, 59, 16);
}

/* ---- malformed input --------------------------------------------------------- */

static const struct bad {
	const char *hex;
	const char *why; /* substring of the error */
} bad_pdus[] = {
	{ "", "smsc: truncated" },
	{ "0", "odd number" },
	{ "0G", "bad digit" },
	{ "00", "first octet: truncated" },
	{ "0003", "reserved TP-MTI" },
	{ "0C91", "smsc: length 12" },
	{ "079144775810", "smsc: truncated" },
	{ "0004", "originator: truncated" },
	{ "000415", "originator: length 21" },
	{ "00040B9143061011", "originator: truncated" },
	{ "00040B914306F01122F2", "filler digit" },
	{ "00040B914306101122F200", "dcs: truncated" },
	{ "00040B914306101122F20000112082110505", "timestamp: truncated" },
	{ "00040B914306101122F200001A20821105050A00", "bad year" },
	{ "00040B914306101122F200001131821105050A00", "bad month" },
	{ "00040B914306101122F20000112082110505A000", "time zone" },
	{ "00040B914306101122F200001120824205050A00", "bad hour" },
	{ "00040B914306101122F200801120821105050A00", "reserved coding group" },
	{ "00040B914306101122F200201120821105050A00", "compressed" },
	{ "00040B914306101122F2000C1120821105050A00", "reserved alphabet" },
	{ "00040B914306101122F200001120821105050A", "udl: truncated" },
	{ "00040B914306101122F200001120821105050AA1", "UDL 161 exceeds 160" },
	{ "00040B914306101122F200081120821105050A8D", "UDL 141 exceeds 140" },
	{ "00040B914306101122F200041120821105050AFF", "UDL 255 exceeds 140" },
	{ "00040B914306101122F200001120821105050A0AE8329BFD4697D9EC",
	  "user data: truncated" },
	{ "00040B914306101122F200081120821105050A03004F00",
	  "odd UCS-2 octet count" },
	{ "00440B914306101122F200041120821105050A03050003",
	  "UDHL 5 runs past UDL 3" },
	{ "00440B914306101122F200041120821105050A0403000307",
	  "IE 0x00 length 3 runs past" },
	{ "00440B914306101122F200041120821105050A050400022A02",
	  "IE 0x00 length 2, expected 3" },
	{ "00440B914306101122F200041120821105050A0201AA", "truncated IE" },
	{ "00440B914306101122F200041120821105050A00", "UDHI set but user data is empty" },
	{ "00440B914306101122F200001120821105050A06050003040201",
	  "shorter than" },
	{ "00440B914306101122F200081120821105050A0705000304020100",
	  "odd UCS-2" },
	{ "0001000B914306101122F2", "pid: truncated" },
	{ "0011000B914306101122F20000", "validity: truncated" },
	{ "0019000B914306101122F20000AABBCC", "validity: truncated" },
	{ "00062A0B914306101122F21120821105050A1120821105050A",
	  "status: truncated" },
	{ "00062A0B914306101122F21120821105050A1120821105050A0004",
	  "udl: truncated" },
	{ "00062A0B914306101122F21120821105050A1120821105050A0080",
	  "pi: truncated" },
	{ "00062A0B914306101122F21120821105050A1120821105050A000680",
	  "reserved coding group" },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEM(bad_pdus); i++) {
		struct pdu_sms s, before;
		char err[PDU_ERR_MAX] = "";
		int rc;

		memset(&s, 0x5A, sizeof(s));
		before = s;
		rc = pdu_decode_hex(bad_pdus[i].hex, &s, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, bad_pdus[i].why))
			fail_msg("case %zu %s: rc %d err \"%s\", want \"%s\"",
				 i, bad_pdus[i].hex, rc, err, bad_pdus[i].why);
		/* out-parameter untouched on failure */
		assert_memory_equal(&s, &before, sizeof(s));
	}
}

static void test_malformed_raw(void **state)
{
	struct pdu_sms s;
	char err[PDU_ERR_MAX];
	char hex[PDU_HEX_MAX + 8];
	const uint8_t tpdu[] = { 0x04, 0x0B, 0x91 };

	(void)state;
	/* has_smsc=false starts at the first octet */
	assert_int_equal(pdu_decode(tpdu, sizeof(tpdu), false, &s, err,
				    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "originator: truncated"));
	assert_int_equal(pdu_decode(NULL, 0, false, &s, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pdu_decode_hex(NULL, &s, err, sizeof(err)), -EINVAL);
	/* over-long hex */
	memset(hex, '0', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0';
	assert_int_equal(pdu_decode_hex(hex, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	/* NULL err is allowed */
	assert_int_equal(pdu_decode_hex("00", &s, NULL, 0), -EINVAL);
}

/* Every prefix of valid PDUs is rejected (truncation never over-reads:
 * the sanitizer build checks the reads). */
static void test_truncations(void **state)
{
	static const char *const good[] = {
		"07914477581006500412D0C161B30882B2C36E3A00001120821105050A12"
		"5374DA4C07CDE961397D0E82D9743018",
		"0791447758100650440B914306101122F200081120821105050A1306080412"
		"340302004F006C00E10020D83DDE00",
		"06915155555555065A0B915155555555F51120821105050A1120821105"
		"050A00",
		"0011FF0B914306101122F20000AA05E8329BFD06",
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(good); i++) {
		size_t n = strlen(good[i]);
		char buf[PDU_HEX_MAX];
		struct pdu_sms s;

		decode_ok(good[i]);
		for (size_t k = 0; k < n; k += 2) {
			memcpy(buf, good[i], k);
			buf[k] = '\0';
			assert_int_equal(pdu_decode_hex(buf, &s, NULL, 0),
					 -EINVAL);
		}
	}
}

/* ---- encoding ------------------------------------------------------------------ */

static int submit(const char *text, const struct pdu_submit_opts *o)
{
	char err[PDU_ERR_MAX] = "";
	int n = pdu_encode_submit(text, o, parts, N_ELEM(parts), err,
				  sizeof(err));

	if (n <= 0)
		fail_msg("encode: %d %s", n, err);
	return n;
}

static void test_encode_hellohello(void **state)
{
	struct pdu_submit_opts o = { .to = "+34600111222", .msg_class = -1 };

	(void)state;
	assert_int_equal(submit("hellohello", &o), 1);
	assert_string_equal(parts[0].hex,
			    "0001000B914306101122F200000AE8329BFD4697D9EC37");
	assert_int_equal(parts[0].tpdu_len, 22);
	/* national number: TON/NPI 0x81 */
	o.to = "600111222";
	o.mr = 7;
	assert_int_equal(submit("hellohello", &o), 1);
	assert_string_equal(parts[0].hex,
			    "000107098106101122F200000AE8329BFD4697D9EC37");
}

static void test_encode_flags(void **state)
{
	struct pdu_submit_opts o = { .to = "+34600111222", .srr = true,
				     .validity_min = 1440, .msg_class = 0 };
	struct pdu_sms s;

	(void)state;
	assert_int_equal(submit("hello", &o), 1);
	/* first octet 0x31: SUBMIT + VPF relative + SRR; DCS 0x10: class 0;
	 * TP-VP 167 = 24 hours */
	assert_string_equal(parts[0].hex,
			    "0031000B914306101122F20010A705E8329BFD06");
	s = decode_ok(parts[0].hex);
	assert_true(s.srr);
	assert_int_equal(s.msg_class, 0);
	assert_int_equal(s.validity_min, 1440);
	/* UCS-2 with class 3: DCS 0x1B */
	o.msg_class = 3;
	o.validity_min = 0;
	o.srr = false;
	assert_int_equal(submit("\xE4\xBD\xA0", &o), 1);
	s = decode_ok(parts[0].hex);
	assert_int_equal(s.dcs, 0x1B);
	assert_int_equal(s.msg_class, 3);
	assert_int_equal(s.encoding, PDU_ENC_UCS2);
	assert_string_equal(s.text, "\xE4\xBD\xA0");
}

/* Minutes of relative TP-VP v, written independently of the codec. */
static unsigned vp_to_minutes(unsigned v)
{
	static const struct {
		unsigned last, base, step, off;
	} seg[] = {
		{ 143, 0, 5, 1 }, /* (v + 1) * 5 */
		{ 167, 720, 30, 0 },
		{ 196, 0, 1440, 0 },
		{ 255, 0, 10080, 0 },
	};

	if (v <= seg[0].last)
		return (v + 1) * 5;
	if (v <= seg[1].last)
		return seg[1].base + (v - 143) * seg[1].step;
	if (v <= seg[2].last)
		return (v - 166) * seg[2].step;
	return (v - 192) * seg[3].step;
}

/* The smallest representable period >= m. */
static unsigned vp_round_up(unsigned m)
{
	for (unsigned v = 0; v < 256; v++)
		if (vp_to_minutes(v) >= m)
			return vp_to_minutes(v);
	return 0;
}

static void check_validity(unsigned m)
{
	struct pdu_submit_opts o = { .to = "+1", .msg_class = -1,
				     .validity_min = m };
	struct pdu_sms s;

	submit("v", &o);
	s = decode_ok(parts[0].hex);
	if (s.validity_min != vp_round_up(m))
		fail_msg("validity %u -> %u, want %u", m, s.validity_min,
			 vp_round_up(m));
}

static void test_validity(void **state)
{
	static const unsigned edges[] = {
		1,	4,	5,	6,	715,	720,	721,	749,
		750,	751,	1439,	1440,	1441,	2880,	2881,	43199,
		43200,	43201,	50400,	50401,	635039, 635040,
	};
	struct pdu_submit_opts o = { .to = "+1", .msg_class = -1,
				     .validity_min = 635041 };
	char err[PDU_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < N_ELEM(edges); i++)
		check_validity(edges[i]);
	for (unsigned m = 1; m < 3000; m++)
		check_validity(m);
	for (unsigned m = 3000; m <= 635040; m += 997)
		check_validity(m);
	assert_int_equal(pdu_encode_submit("v", &o, parts, 1, err,
					   sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "validity"));
}

static void test_encode_errors(void **state)
{
	static const char *const bad_to[] = {
		"", "+", "12a4x", "+123456789012345678901", "++1", "1 2", NULL,
	};
	struct pdu_submit_opts o = { .msg_class = -1 };
	char err[PDU_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < N_ELEM(bad_to); i++) {
		o.to = bad_to[i];
		assert_int_equal(pdu_encode_submit("x", &o, parts, 1, err,
						   sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "recipient"));
	}
	o.to = "+12345678901234567890"; /* 20 digits is the maximum */
	assert_int_equal(submit("x", &o), 1);
	o.msg_class = 4;
	assert_int_equal(pdu_encode_submit("x", &o, parts, 1, err,
					   sizeof(err)),
			 -EINVAL);
	o.msg_class = -1;
	assert_int_equal(pdu_encode_submit("\xC3\x28", &o, parts, 1, err,
					   sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "UTF-8"));
	assert_int_equal(pdu_encode_submit(NULL, &o, parts, 1, err,
					   sizeof(err)),
			 -EINVAL);
	memset(text_buf, 'a', 161);
	text_buf[161] = '\0';
	assert_int_equal(pdu_encode_submit(text_buf, &o, parts, 1, err,
					   sizeof(err)),
			 -ENOSPC);
	assert_int_equal(pdu_encode_submit("x", NULL, parts, 1, err,
					   sizeof(err)),
			 -EINVAL);
}

static void test_too_many_parts(void **state)
{
	struct pdu_submit_opts o = { .to = "+1", .msg_class = -1 };
	struct pdu_plan p;
	char err[PDU_ERR_MAX];

	(void)state;
	memset(text_buf, 'a', 153 * 255);
	text_buf[153 * 255] = '\0';
	assert_int_equal(pdu_plan_text(text_buf, true, &p), 0);
	assert_int_equal(p.parts, 255);
	assert_int_equal(submit(text_buf, &o), 255);
	text_buf[153 * 255] = 'a';
	text_buf[153 * 255 + 1] = '\0';
	assert_int_equal(pdu_plan_text(text_buf, true, &p), -E2BIG);
	assert_int_equal(pdu_encode_submit(text_buf, &o, parts, N_ELEM(parts),
					   err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "255"));
}

/* ---- plan ------------------------------------------------------------------------ */

/* text_buf = prefix + unit x n + suffix. */
static const char *rep(const char *prefix, const char *unit, size_t n,
		       const char *suffix)
{
	size_t o = 0, u = strlen(unit);

	o += (size_t)snprintf(text_buf, sizeof(text_buf), "%s", prefix);
	for (size_t i = 0; i < n; i++, o += u)
		memcpy(text_buf + o, unit, u);
	snprintf(text_buf + o, sizeof(text_buf) - o, "%s", suffix);
	return text_buf;
}

static const struct plan_case {
	const char *prefix, *unit;
	size_t n;
	bool allow_shift;
	enum pdu_encoding enc;
	enum pdu_lang single, locking;
	unsigned parts, units;
} plan_cases[] = {
	{ "", "", 0, true, PDU_ENC_GSM7, 0, 0, 1, 0 },
	{ "", "a", 152, true, PDU_ENC_GSM7, 0, 0, 1, 152 },
	{ "", "a", 153, true, PDU_ENC_GSM7, 0, 0, 1, 153 },
	{ "", "a", 154, true, PDU_ENC_GSM7, 0, 0, 1, 154 },
	{ "", "a", 159, true, PDU_ENC_GSM7, 0, 0, 1, 159 },
	{ "", "a", 160, true, PDU_ENC_GSM7, 0, 0, 1, 160 },
	{ "", "a", 161, true, PDU_ENC_GSM7, 0, 0, 2, 161 },
	{ "", "a", 306, true, PDU_ENC_GSM7, 0, 0, 2, 306 },
	{ "", "a", 307, true, PDU_ENC_GSM7, 0, 0, 3, 307 },
	/* € costs two septets; 76 fit in a 153-septet part, never split */
	{ "", "\xE2\x82\xAC", 80, true, PDU_ENC_GSM7, 0, 0, 1, 160 },
	{ "", "\xE2\x82\xAC", 81, false, PDU_ENC_GSM7, 0, 0, 2, 162 },
	{ "", "\xE2\x82\xAC", 153, false, PDU_ENC_GSM7, 0, 0, 3, 306 },
	/* ... but the Portuguese locking table has € as one septet */
	{ "", "\xE2\x82\xAC", 81, true, PDU_ENC_GSM7, 0, 3, 1, 81 },
	{ "", "\xE2\x82\xAC", 153, true, PDU_ENC_GSM7, 0, 3, 1, 153 },
	{ "", "\xE2\x82\xAC", 156, true, PDU_ENC_GSM7, 0, 3, 2, 156 },
	{ "a", "[", 80, true, PDU_ENC_GSM7, 0, 0, 2, 161 },
	/* UCS-2: 70 units single, 67 per part */
	{ "", "\xE4\xBD\xA0", 66, true, PDU_ENC_UCS2, 0, 0, 1, 66 },
	{ "", "\xE4\xBD\xA0", 67, true, PDU_ENC_UCS2, 0, 0, 1, 67 },
	{ "", "\xE4\xBD\xA0", 68, true, PDU_ENC_UCS2, 0, 0, 1, 68 },
	{ "", "\xE4\xBD\xA0", 70, true, PDU_ENC_UCS2, 0, 0, 1, 70 },
	{ "", "\xE4\xBD\xA0", 71, true, PDU_ENC_UCS2, 0, 0, 2, 71 },
	{ "", "\xE4\xBD\xA0", 134, true, PDU_ENC_UCS2, 0, 0, 2, 134 },
	{ "", "\xE4\xBD\xA0", 135, true, PDU_ENC_UCS2, 0, 0, 3, 135 },
	/* emoji: surrogate pairs, 33 per 67-unit part */
	{ "", "\xF0\x9F\x98\x80", 35, true, PDU_ENC_UCS2, 0, 0, 1, 70 },
	{ "", "\xF0\x9F\x98\x80", 36, true, PDU_ENC_UCS2, 0, 0, 2, 72 },
	{ "", "\xF0\x9F\x98\x80", 67, true, PDU_ENC_UCS2, 0, 0, 3, 134 },
	{ "", "\xF0\x9F\x98\x80", 66, true, PDU_ENC_UCS2, 0, 0, 2, 132 },
	/* Spanish: á via the single shift table (one 3-octet IE) */
	{ "", "\xC3\xA1", 1, true, PDU_ENC_GSM7, 2, 0, 1, 2 },
	{ "", "\xC3\xA1", 1, false, PDU_ENC_UCS2, 0, 0, 1, 1 },
	/* the IE leaves 155 septets for one part, 149 per part (ñ keeps
	 * the Portuguese locking table, which has á, out) */
	{ "\xC3\xB1\xC3\xA1", "a", 152, true, PDU_ENC_GSM7, 2, 0, 1, 155 },
	{ "\xC3\xB1\xC3\xA1", "a", 153, true, PDU_ENC_GSM7, 2, 0, 2, 156 },
	{ "\xC3\xB1\xC3\xA1", "a", 295, true, PDU_ENC_GSM7, 2, 0, 2, 298 },
	{ "\xC3\xB1\xC3\xA1", "a", 296, true, PDU_ENC_GSM7, 2, 0, 3, 299 },
	{ "\xC3\xB1\xC3\xA1", "a", 152, false, PDU_ENC_UCS2, 0, 0, 3, 154 },
	/* without ñ, Portuguese locking makes á one septet */
	{ "\xC3\xA1", "a", 154, true, PDU_ENC_GSM7, 0, 3, 1, 155 },
	/* "Canción" words: ó and ñ (ñ is in the default table) */
	{ "", "Canci\xC3\xB3n \xC3\xB1", 20, true, PDU_ENC_GSM7, 2, 0, 2,
	  200 },
	/* Portuguese: ã costs 2 with the single shift, 1 with locking */
	{ "", "\xC3\xA3", 10, true, PDU_ENC_GSM7, 3, 0, 1, 20 },
	{ "", "\xC3\xA3", 100, true, PDU_ENC_GSM7, 0, 3, 1, 100 },
	{ "", "\xC3\xA3", 100, false, PDU_ENC_UCS2, 0, 0, 2, 100 },
	/* ¤ is not in the Portuguese locking table: single shift only */
	{ "\xC2\xA4", "\xC3\xA3", 100, true, PDU_ENC_GSM7, 3, 0, 2, 201 },
	/* ñ + ã: Portuguese single shift (2 parts) ties UCS-2: 7-bit wins */
	{ "", "\xC3\xB1\xC3\xA3", 60, true, PDU_ENC_GSM7, 3, 0, 2, 180 },
	/* an emoji forces UCS-2 whatever the tables */
	{ "\xC3\xA1\xC3\xA3", "a", 10, true, PDU_ENC_GSM7, 3, 0, 1, 14 },
	{ "\xF0\x9F\x98\x80", "\xC3\xA1", 10, true, PDU_ENC_UCS2, 0, 0, 1,
	  12 },
};

static void test_plan(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEM(plan_cases); i++) {
		const struct plan_case *c = &plan_cases[i];
		struct pdu_plan p;
		int rc = pdu_plan_text(rep(c->prefix, c->unit, c->n, ""),
				       c->allow_shift, &p);

		if (rc != 0 || p.encoding != c->enc ||
		    p.lang_single != c->single ||
		    p.lang_locking != c->locking || p.parts != c->parts ||
		    p.units != c->units)
			fail_msg("case %zu: rc %d enc %d single %d locking %d parts %u units %u",
				 i, rc, p.encoding, p.lang_single,
				 p.lang_locking, p.parts, p.units);
	}
}

static void test_plan_invalid(void **state)
{
	struct pdu_plan p;

	(void)state;
	assert_int_equal(pdu_plan_text("ok\xED\xA0\x80", true, &p), -EINVAL);
	assert_int_equal(pdu_plan_text("\xF0\x9F\x98", true, &p), -EINVAL);
	assert_int_equal(pdu_plan_text(NULL, true, &p), -EINVAL);
}

/* Decodes every part and returns their texts joined. */
static const char *join_parts(int n, const char *to, enum pdu_encoding enc)
{
	size_t o = 0;

	for (int i = 0; i < n; i++) {
		struct pdu_sms s = decode_ok(parts[i].hex);
		size_t l = strlen(s.text);

		assert_int_equal(parts[i].tpdu_len, strlen(parts[i].hex) / 2 - 1);
		assert_int_equal(s.type, PDU_SUBMIT);
		assert_string_equal(s.addr.text, to);
		assert_int_equal(s.encoding, enc);
		assert_int_equal(s.concat.present, n > 1);
		if (n > 1) {
			assert_int_equal(s.concat.total, n);
			assert_int_equal(s.concat.seq, i + 1);
		}
		memcpy(joined + o, s.text, l);
		o += l;
	}
	joined[o] = '\0';
	return joined;
}

static void test_split_boundaries(void **state)
{
	struct pdu_submit_opts o = { .to = "+34600111222", .msg_class = -1 };
	struct pdu_sms s;

	(void)state;
	/* (no shift tables: Portuguese locking would make € one septet)
	 * 152 a + € + 7 b (161 septets): the escape pair would straddle
	 * septets 153/154, so it moves whole to part 2 */
	assert_int_equal(submit(rep("", "a", 152, "\xE2\x82\xAC" "bbbbbbb"), &o),
			 2);
	s = decode_ok(parts[0].hex);
	assert_int_equal(strlen(s.text), 152);
	s = decode_ok(parts[1].hex);
	assert_string_equal(s.text, "\xE2\x82\xAC" "bbbbbbb");
	/* 66 a + 😀 in UCS-2: the pair would straddle units 67/68 */
	assert_int_equal(submit(rep("", "\xE4\xBD\xA0", 66, "\xF0\x9F\x98\x80"
					"xxx"),
				&o),
			 2);
	s = decode_ok(parts[0].hex);
	assert_int_equal(strlen(s.text), 66 * 3);
	s = decode_ok(parts[1].hex);
	assert_string_equal(s.text, "\xF0\x9F\x98\x80xxx");
	/* 16-bit reference: 152 septets per part, IE 08 04 */
	o.ref16 = true;
	o.ref = 0xBEEF;
	assert_int_equal(submit(rep("", "a", 305, ""), &o), 3);
	s = decode_ok(parts[2].hex);
	assert_true(s.concat.ref16);
	assert_int_equal(s.concat.ref, 0xBEEF);
	assert_int_equal(strlen(decode_ok(parts[0].hex).text), 152);
	o.ref16 = false;
	assert_int_equal(submit(rep("", "a", 305, ""), &o), 2);
	/* 8-bit reference uses the low octet */
	assert_int_equal(decode_ok(parts[1].hex).concat.ref, 0xEF);
	/* the shift IE repeats in every part, with the concatenation IE */
	o.allow_shift = true;
	assert_int_equal(submit(rep("\xC3\xB1\xC3\xA1", "a", 200, ""), &o), 2);
	for (int i = 0; i < 2; i++) {
		s = decode_ok(parts[i].hex);
		assert_int_equal(s.lang_single, PDU_LANG_SPANISH);
		assert_true(s.concat.present);
	}
	/* empty text: one part, UDL 0 */
	assert_int_equal(submit("", &o), 1);
	assert_string_equal(parts[0].hex, "0001000B914306101122F2000000");
}

/* ---- round trips ------------------------------------------------------------------- */

static const char *const alpha_plain[] = {
	"a", "b", "z", "A", "Q", "0", "9", " ", ".", ",", "!", "?", "@",
	"\xC2\xA3", "$", "\xC3\xA9", "\xC3\xB1", "\xC3\x9C", "\n", "\xCE\xA9",
};
static const char *const alpha_ext[] = {
	"a", "\xE2\x82\xAC", "[", "]", "{", "}", "~", "\\", "^", "|", "x",
};
static const char *const alpha_es[] = {
	"a", "e", " ", "\xC3\xA1", "\xC3\xAD", "\xC3\xB3", "\xC3\xBA",
	"\xC3\xA7", "\xC3\x81", "\xC3\xB1", "\xC2\xBF", "\xC2\xA1",
};
static const char *const alpha_pt[] = {
	"a", "o", " ", "\xC3\xA3", "\xC3\xB5", "\xC3\xA2", "\xC3\xAA",
	"\xC3\xB4", "\xC3\x83", "\xC3\xA7", "\xC3\xA0", "\xC3\xA1",
};
static const char *const alpha_emoji[] = {
	"\xF0\x9F\x98\x80", "\xF0\x9F\x8E\x89", "\xF0\x9F\x91\x8D", "a",
	"\xE4\xBD\xA0", " ",
};
static const char *const alpha_mixed[] = {
	"a", "\xE2\x82\xAC", "\xC3\xA1", "\xC3\xA3", "\xF0\x9F\x98\x80", "{",
	"\xC3\xB1", "Z", "\xCE\xA3", "\xE4\xBD\xA0",
};

static const struct alphabet {
	const char *const *chars;
	size_t n;
} alphabets[] = {
	{ alpha_plain, N_ELEM(alpha_plain) },
	{ alpha_ext, N_ELEM(alpha_ext) },
	{ alpha_es, N_ELEM(alpha_es) },
	{ alpha_pt, N_ELEM(alpha_pt) },
	{ alpha_emoji, N_ELEM(alpha_emoji) },
	{ alpha_mixed, N_ELEM(alpha_mixed) },
};

static const size_t lengths[] = {
	0,   1,	  66,  67,  68,	 69,  70,  71,	72,  133, 134, 135,
	152, 153, 154, 155, 159, 160, 161, 200, 305, 306, 307, 460, 1000,
};

static uint32_t rng = 1;

static uint32_t next_rand(void)
{
	rng = rng * 1103515245u + 12345u;
	return rng >> 16;
}

/* A random text of n characters from a. */
static const char *gen_text(const struct alphabet *a, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		const char *c = a->chars[next_rand() % a->n];
		size_t l = strlen(c);

		memcpy(text_buf + o, c, l);
		o += l;
	}
	text_buf[o] = '\0';
	return text_buf;
}

/* Feeds the parts (last first) to a reassembler and checks the result. */
static void check_reasm(int n, const char *text)
{
	struct reasm *r = reasm_new(60, 4, NULL);
	struct reasm_msg m = { .text = NULL };
	int rc = -1;

	assert_non_null(r);
	for (int i = n - 1; i >= 0; i--) {
		struct pdu_sms s = decode_ok(parts[i].hex);
		struct reasm_part p = {
			.sender = s.addr.text,
			.ref = s.concat.ref,
			.total = n > 1 ? s.concat.total : 1,
			.seq = n > 1 ? s.concat.seq : 1,
			.data = s.text,
			.len = strlen(s.text),
		};

		rc = reasm_add(r, &p, 100 + i, &m);
		assert_int_equal(rc, i == 0 ? REASM_COMPLETE : REASM_PENDING);
	}
	assert_true(m.complete);
	assert_string_equal(m.text, text);
	reasm_msg_clear(&m);
	reasm_free(r);
}

static void roundtrip(const char *text, bool allow_shift, bool ref16)
{
	struct pdu_submit_opts o = { .to = "+351912345678", .msg_class = -1,
				     .allow_shift = allow_shift,
				     .ref16 = ref16, .ref = 0x1A2B };
	struct pdu_plan p;
	int n = submit(text, &o);

	assert_int_equal(pdu_plan_text(text, allow_shift, &p), 0);
	if (!ref16)
		assert_int_equal((unsigned)n, p.parts);
	if (!allow_shift)
		assert_int_equal(decode_ok(parts[0].hex).has_udh, n > 1);
	assert_string_equal(join_parts(n, o.to, p.encoding), text);
	check_reasm(n, text);
}

static void test_roundtrip_generated(void **state)
{
	(void)state;
	for (size_t a = 0; a < N_ELEM(alphabets); a++) {
		for (size_t l = 0; l < N_ELEM(lengths); l++) {
			const char *t = gen_text(&alphabets[a], lengths[l]);

			roundtrip(t, true, false);
			roundtrip(t, false, false);
			roundtrip(t, true, true);
		}
	}
}

static void test_roundtrip_deliver(void **state)
{
	static const char *const froms[] = { "+34600111222", "600111222",
					     "ACME Plant", "Info{}",
					     "ABCDEFGHIJK" };
	struct pdu_deliver_opts o = {
		.smsc = "+447785016005",
		.scts = { 2024, 2, 29, 23, 59, 58, -14 },
		.allow_shift = true,
		.ref = 77,
		.msg_class = 1,
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(froms); i++) {
		const char *t = gen_text(&alphabets[5], 150);
		char err[PDU_ERR_MAX];
		int n;
		size_t off = 0;

		o.from = froms[i];
		n = pdu_encode_deliver(t, &o, parts, N_ELEM(parts), err,
				       sizeof(err));
		assert_true(n > 1);
		for (int k = 0; k < n; k++) {
			struct pdu_sms s = decode_ok(parts[k].hex);

			assert_int_equal(s.type, PDU_DELIVER);
			assert_string_equal(s.smsc.text, "+447785016005");
			assert_string_equal(s.addr.text, froms[i]);
			assert_int_equal(s.msg_class, 1);
			assert_int_equal(s.concat.ref, 77);
			assert_time(&s.scts, 2024, 2, 29, 23, 59, 58, -14);
			memcpy(joined + off, s.text, strlen(s.text));
			off += strlen(s.text);
		}
		joined[off] = '\0';
		assert_string_equal(joined, t);
	}
}

static void test_deliver_errors(void **state)
{
	struct pdu_deliver_opts o = { .from = "ABCDEFGHIJKL", /* 12 chars */
				      .scts = { 2024, 1, 1, 0, 0, 0, 0 },
				      .msg_class = -1 };
	char err[PDU_ERR_MAX];

	(void)state;
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "originator"));
	o.from = "Caf\xC3\xA1"; /* á is not in the default alphabet */
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	o.from = "ABCDEFGHIJ{"; /* { takes two septets: 12 */
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	o.from = "+1";
	o.scts.month = 13;
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "month"));
	o.scts.month = 1;
	o.scts.year = 2090;
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "year"));
	o.scts.year = 1990;
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 1);
	assert_int_equal(decode_ok(parts[0].hex).scts.year, 1990);
	o.scts.year = 2024;
	o.scts.tz_quarters = 80;
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	o.scts.tz_quarters = 0;
	o.smsc = "+12x";
	assert_int_equal(pdu_encode_deliver("x", &o, parts, 1, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "smsc"));
}

static void test_roundtrip_status_report(void **state)
{
	const struct pdu_time t1 = { 2025, 6, 1, 12, 0, 0, 8 };
	const struct pdu_time t2 = { 2025, 6, 1, 12, 0, 5, -79 };
	struct pdu_part p;
	struct pdu_sms s;
	char err[PDU_ERR_MAX];

	(void)state;
	assert_int_equal(pdu_encode_status_report(0x5A, "+15555555555", &t1,
						  &t2, 0x45, "+1555555555", &p,
						  err, sizeof(err)),
			 0);
	s = decode_ok(p.hex);
	assert_int_equal(s.type, PDU_STATUS_REPORT);
	assert_int_equal(s.mr, 0x5A);
	assert_int_equal(s.status, 0x45);
	assert_string_equal(s.addr.text, "+15555555555");
	assert_string_equal(s.smsc.text, "+1555555555");
	assert_time(&s.scts, 2025, 6, 1, 12, 0, 0, 8);
	assert_time(&s.discharge, 2025, 6, 1, 12, 0, 5, -79);
	assert_int_equal(p.tpdu_len, strlen(p.hex) / 2 - 7);
	/* the Android example, re-encoded byte for byte */
	assert_int_equal(pdu_encode_status_report(
				 0x5A, "+15555555555",
				 &(struct pdu_time){ 2011, 2, 28, 11, 50, 50, -20 },
				 &(struct pdu_time){ 2011, 2, 28, 11, 50, 50, -20 },
				 0, "+1555555555", &p, err, sizeof(err)),
			 0);
	assert_string_equal(p.hex, "06915155555555065A0B915155555555F51120"
				   "821105050A1120821105050A00");
	assert_int_equal(pdu_encode_status_report(1, "bad", &t1, &t2, 0, NULL,
						  &p, err, sizeof(err)),
			 -EINVAL);
}

/* ---- status ------------------------------------------------------------------------ */

static void test_status_codes(void **state)
{
	static const struct {
		uint8_t st;
		enum pdu_status_class cls;
		const char *text;
	} cases[] = {
		{ 0x00, PDU_ST_DELIVERED, "received by the SME" },
		{ 0x01, PDU_ST_DELIVERED,
		  "forwarded to the SME, delivery unconfirmed" },
		{ 0x02, PDU_ST_DELIVERED, "replaced by the SC" },
		{ 0x03, PDU_ST_DELIVERED, "reserved (transaction completed)" },
		{ 0x1F, PDU_ST_DELIVERED,
		  "SC-specific (transaction completed)" },
		{ 0x20, PDU_ST_PENDING, "congestion, still trying" },
		{ 0x25, PDU_ST_PENDING, "error in SME, still trying" },
		{ 0x30, PDU_ST_PENDING,
		  "SC-specific (temporary error, still trying)" },
		{ 0x40, PDU_ST_FAILED, "remote procedure error" },
		{ 0x49, PDU_ST_FAILED, "message does not exist" },
		{ 0x4A, PDU_ST_FAILED, "reserved (permanent error)" },
		{ 0x50, PDU_ST_FAILED, "SC-specific (permanent error)" },
		{ 0x60, PDU_ST_FAILED, "congestion, gave up" },
		{ 0x65, PDU_ST_FAILED, "error in SME, gave up" },
		{ 0x66, PDU_ST_FAILED, "reserved (temporary error, gave up)" },
		{ 0x7F, PDU_ST_FAILED,
		  "SC-specific (temporary error, gave up)" },
		{ 0x80, PDU_ST_FAILED, "reserved" },
		{ 0xFF, PDU_ST_FAILED, "reserved" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEM(cases); i++) {
		assert_int_equal(pdu_status_class(cases[i].st), cases[i].cls);
		assert_string_equal(pdu_status_text(cases[i].st),
				    cases[i].text);
	}
	for (unsigned st = 0; st < 256; st++)
		assert_non_null(pdu_status_text((uint8_t)st));
	assert_string_equal(pdu_encoding_name(PDU_ENC_GSM7), "gsm7");
	assert_string_equal(pdu_encoding_name(PDU_ENC_8BIT), "8bit");
	assert_string_equal(pdu_encoding_name(PDU_ENC_UCS2), "ucs2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deliver_international),
		cmocka_unit_test(test_deliver_alphanumeric),
		cmocka_unit_test(test_status_report),
		cmocka_unit_test(test_status_report_tail),
		cmocka_unit_test(test_concat_gsm7_fill),
		cmocka_unit_test(test_concat_ucs2_ref16),
		cmocka_unit_test(test_8bit_class1),
		cmocka_unit_test(test_submit_decode),
		cmocka_unit_test(test_shift_tables_decode),
		cmocka_unit_test(test_udh_unknown_ie),
		cmocka_unit_test(test_dcs_groups),
		cmocka_unit_test(test_time_zone_and_century),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_malformed_raw),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_encode_hellohello),
		cmocka_unit_test(test_encode_flags),
		cmocka_unit_test(test_validity),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_too_many_parts),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_plan_invalid),
		cmocka_unit_test(test_split_boundaries),
		cmocka_unit_test(test_roundtrip_generated),
		cmocka_unit_test(test_roundtrip_deliver),
		cmocka_unit_test(test_deliver_errors),
		cmocka_unit_test(test_roundtrip_status_report),
		cmocka_unit_test(test_status_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
