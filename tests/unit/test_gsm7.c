/* Unit tests for at/gsm7: tables (TS 23.038 6.2.1, A.2.2, A.2.3, A.3.3) and
 * septet packing (6.1.2.1.1). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "at/gsm7.h"

/* Every (single, locking) pair we support, plus an unsupported language
 * (1, Turkish) that must behave as the default tables. */
static const unsigned langs_single[] = { 0, 1, 2, 3 };
static const unsigned langs_locking[] = { 0, 1, 2, 3 };

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_hellohello_pack(void **state)
{
	/* The classic: "hellohello" packs to E8 32 9B FD 46 97 D9 EC 37. */
	static const uint8_t want[] = { 0xE8, 0x32, 0x9B, 0xFD, 0x46,
					0x97, 0xD9, 0xEC, 0x37 };
	const char *s = "hellohello";
	uint8_t sept[10], out[16], back[10];

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(gsm7_encode_cp((uint8_t)s[i], 0, 0, &sept[i]),
				 1);
	assert_int_equal(gsm7_packed_len(10, 0), 9);
	assert_int_equal(gsm7_pack(sept, 10, 0, out), 9);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(gsm7_unpack(out, 9, 0, back, 10), 0);
	assert_memory_equal(back, sept, 10);
}

static void test_fill_bits(void **state)
{
	/* After a 6-octet UDH (48 bits) the first septet starts at bit 49:
	 * one fill bit, so 'A' (0x41) becomes 0x82 in the first octet. */
	uint8_t sept[] = { 0x41, 0x42 }, out[4], back[2];

	(void)state;
	assert_int_equal(gsm7_pack(sept, 2, 1, out), 2);
	assert_int_equal(out[0], 0x82);
	assert_int_equal(out[1], 0x42); /* B starts at bit 8 */
	assert_int_equal(gsm7_unpack(out, 2, 1, back, 2), 0);
	assert_memory_equal(back, sept, 2);
}

/* Pack/unpack round trip for every fill and lengths 0..160. */
static void test_pack_roundtrip(void **state)
{
	uint8_t sept[160], back[160], out[141];
	uint32_t x = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(sept); i++) {
		x = x * 1103515245u + 12345u;
		sept[i] = (uint8_t)((x >> 16) & 0x7F);
	}
	for (unsigned fill = 0; fill <= 6; fill++) {
		for (size_t n = 0; n <= 160 && gsm7_packed_len(n, fill) <= 141;
		     n++) {
			size_t len = gsm7_pack(sept, n, fill, out);

			assert_int_equal(len, (n * 7 + fill + 7) / 8);
			memset(back, 0xAA, sizeof(back));
			assert_int_equal(gsm7_unpack(out, len, fill, back, n),
					 0);
			assert_memory_equal(back, sept, n);
			if (len > 0)
				assert_int_equal(gsm7_unpack(out, len - 1, fill,
							     back, n),
						 -EINVAL);
		}
	}
}

/* Every one-septet character encodes back to its septet, under every
 * table combination. */
static void test_main_tables_both_ways(void **state)
{
	(void)state;
	for (size_t a = 0; a < N_ELEM(langs_single); a++) {
		for (size_t b = 0; b < N_ELEM(langs_locking); b++) {
			unsigned s = langs_single[a], l = langs_locking[b];

			for (uint8_t c = 0; c < 0x80; c++) {
				uint32_t cp = gsm7_main_cp(c, l);
				uint8_t out[2];

				if (c == GSM7_ESC) {
					assert_int_equal(cp, 0);
					continue;
				}
				assert_int_not_equal(cp, 0);
				assert_int_equal(gsm7_encode_cp(cp, s, l, out),
						 1);
				assert_int_equal(out[0], c);
			}
		}
	}
}

/* Every code point the encoder accepts decodes back to itself, and every
 * extension entry is reachable. */
static void test_reverse_consistent(void **state)
{
	(void)state;
	for (size_t a = 0; a < N_ELEM(langs_single); a++) {
		for (size_t b = 0; b < N_ELEM(langs_locking); b++) {
			unsigned s = langs_single[a], l = langs_locking[b];

			for (uint32_t cp = 0; cp < 0x2300; cp++) {
				uint8_t out[2];
				unsigned n = gsm7_encode_cp(cp, s, l, out);

				if (n == 1)
					assert_int_equal(gsm7_main_cp(out[0], l),
							 cp);
				if (n == 2) {
					assert_int_equal(out[0], GSM7_ESC);
					assert_int_not_equal(out[1], GSM7_ESC);
					assert_int_equal(
						gsm7_ext_cp(out[1], s, l), cp);
				}
			}
			for (uint8_t c = 0; c < 0x80; c++) {
				uint32_t cp = gsm7_ext_cp(c, s, l);
				uint8_t out[2];

				if (c != GSM7_ESC)
					assert_int_not_equal(
						gsm7_encode_cp(cp, s, l, out),
						0);
			}
		}
	}
}

struct spot {
	uint32_t cp;
	unsigned single, locking;
	unsigned n;
	uint8_t s0, s1;
};

/* Spot checks against the printed tables. */
static const struct spot spots[] = {
	{ '@', 0, 0, 1, 0x00, 0 },     { 0x00A3, 0, 0, 1, 0x01, 0 }, /* £ */
	{ '\n', 0, 0, 1, 0x0A, 0 },    { 0x00C7, 0, 0, 1, 0x09, 0 }, /* Ç */
	{ 0x0394, 0, 0, 1, 0x10, 0 },  { '_', 0, 0, 1, 0x11, 0 },
	{ 0x00A4, 0, 0, 1, 0x24, 0 },  { 0x00A1, 0, 0, 1, 0x40, 0 },
	{ 0x00A7, 0, 0, 1, 0x5F, 0 },  { 0x00BF, 0, 0, 1, 0x60, 0 },
	{ 0x00E0, 0, 0, 1, 0x7F, 0 },  { '$', 0, 0, 1, 0x02, 0 },
	{ 0x20AC, 0, 0, 2, 0x1B, 0x65 }, /* € */
	{ '[', 0, 0, 2, 0x1B, 0x3C },  { ']', 0, 0, 2, 0x1B, 0x3E },
	{ '{', 0, 0, 2, 0x1B, 0x28 },  { '}', 0, 0, 2, 0x1B, 0x29 },
	{ '~', 0, 0, 2, 0x1B, 0x3D },  { '\\', 0, 0, 2, 0x1B, 0x2F },
	{ '^', 0, 0, 2, 0x1B, 0x14 },  { '|', 0, 0, 2, 0x1B, 0x40 },
	{ 0x000C, 0, 0, 2, 0x1B, 0x0A }, /* form feed */
	{ 0x00E1, 0, 0, 0, 0, 0 },     /* á: not in the default tables */
	{ 0x00E7, 0, 0, 0, 0, 0 },     /* ç */
	{ '`', 0, 0, 0, 0, 0 },	       { 0x1F600, 0, 0, 0, 0, 0 },
	/* Spanish single shift (A.2.2) */
	{ 0x00E1, 2, 0, 2, 0x1B, 0x61 }, { 0x00ED, 2, 0, 2, 0x1B, 0x69 },
	{ 0x00F3, 2, 0, 2, 0x1B, 0x6F }, { 0x00FA, 2, 0, 2, 0x1B, 0x75 },
	{ 0x00E7, 2, 0, 2, 0x1B, 0x09 }, { 0x00C1, 2, 0, 2, 0x1B, 0x41 },
	{ 0x00DA, 2, 0, 2, 0x1B, 0x55 }, { 0x20AC, 2, 0, 2, 0x1B, 0x65 },
	{ 0x00F1, 2, 0, 1, 0x7D, 0 },  /* ñ stays in the default table */
	/* Portuguese single shift (A.2.3) */
	{ 0x00EA, 3, 0, 2, 0x1B, 0x05 }, { 0x00D4, 3, 0, 2, 0x1B, 0x0B },
	{ 0x00C0, 3, 0, 2, 0x1B, 0x41 }, { 0x00C2, 3, 0, 2, 0x1B, 0x61 },
	{ 0x00E3, 3, 0, 2, 0x1B, 0x7B }, { 0x00F5, 3, 0, 2, 0x1B, 0x7C },
	{ 0x00E2, 3, 0, 2, 0x1B, 0x7F }, { 0x00CA, 3, 0, 2, 0x1B, 0x1F },
	{ 0x03A6, 3, 0, 1, 0x12, 0 },  /* Φ still one septet (main table) */
	/* Portuguese locking shift (A.3.3) */
	{ 0x00EA, 0, 3, 1, 0x04, 0 },  { 0x00E7, 0, 3, 1, 0x09, 0 },
	{ 0x00AA, 0, 3, 1, 0x12, 0 },  { 0x221E, 0, 3, 1, 0x15, 0 },
	{ 0x20AC, 0, 3, 1, 0x18, 0 },  { '|', 0, 3, 1, 0x1A, 0 },
	{ 0x00BA, 0, 3, 1, 0x24, 0 },  { 0x00CD, 0, 3, 1, 0x40, 0 },
	{ 0x00C3, 0, 3, 1, 0x5B, 0 },  { '~', 0, 3, 1, 0x60, 0 },
	{ '`', 0, 3, 1, 0x7D, 0 },     { 0x00E3, 0, 3, 1, 0x7B, 0 },
	{ 0x00A4, 0, 3, 0, 0, 0 },     /* ¤ is gone under Portuguese */
	{ '{', 0, 3, 2, 0x1B, 0x28 },  /* default extension still there */
	/* Spanish locking is void: default main table */
	{ 0x00E8, 0, 2, 1, 0x04, 0 },
};

static void test_spot_checks(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEM(spots); i++) {
		const struct spot *t = &spots[i];
		uint8_t out[2] = { 0xFF, 0xFF };
		unsigned n = gsm7_encode_cp(t->cp, t->single, t->locking, out);

		if (n != t->n || (n >= 1 && out[0] != t->s0) ||
		    (n == 2 && out[1] != t->s1))
			fail_msg("U+%04X (single %u, locking %u): got %u septets %02X %02X",
				 (unsigned)t->cp, t->single, t->locking, n,
				 out[0], out[1]);
	}
}

static void test_languages(void **state)
{
	(void)state;
	assert_true(gsm7_has_single(0));
	assert_true(gsm7_has_single(2));
	assert_true(gsm7_has_single(3));
	assert_false(gsm7_has_single(1));
	assert_false(gsm7_has_single(200));
	assert_true(gsm7_has_locking(0));
	assert_false(gsm7_has_locking(2));
	assert_true(gsm7_has_locking(3));
	assert_false(gsm7_has_locking(13));
}

static void test_to_utf8(void **state)
{
	/* "€@" then ESC 'A' (undefined: reads as 'A'), ESC ESC (space), and a
	 * dangling escape that is dropped. */
	const uint8_t sept[] = { 0x1B, 0x65, 0x00, 0x1B, 0x41, 0x1B, 0x1B,
				 0x62, 0x1B };
	char out[32];

	(void)state;
	assert_int_equal(gsm7_to_utf8(sept, sizeof(sept), 0, 0, out,
				      sizeof(out)),
			 strlen("\xE2\x82\xAC@A b"));
	assert_string_equal(out, "\xE2\x82\xAC@A b");
	/* The same septets under Spanish: ESC 0x41 is Á. */
	assert_true(gsm7_to_utf8(sept, 5, 2, 0, out, sizeof(out)) > 0);
	assert_string_equal(out, "\xE2\x82\xAC@\xC3\x81");
	/* Under Portuguese locking, 0x00 is still @ and 0x04 is ê. */
	{
		const uint8_t pt[] = { 0x04, 0x7B, 0x1B, 0x0B };

		assert_true(gsm7_to_utf8(pt, 4, 3, 3, out, sizeof(out)) > 0);
		assert_string_equal(out, "\xC3\xAA\xC3\xA3\xC3\x94");
	}
	/* Too small: -ENOSPC with a valid, terminated prefix. */
	assert_int_equal(gsm7_to_utf8(sept, sizeof(sept), 0, 0, out, 4),
			 -ENOSPC);
	assert_string_equal(out, "\xE2\x82\xAC");
	assert_int_equal(gsm7_to_utf8(sept, sizeof(sept), 0, 0, out, 3),
			 -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(gsm7_to_utf8(sept + 2, 1, 0, 0, out, 1), -ENOSPC);
	assert_int_equal(gsm7_to_utf8(sept, 0, 0, 0, out, 0), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hellohello_pack),
		cmocka_unit_test(test_fill_bits),
		cmocka_unit_test(test_pack_roundtrip),
		cmocka_unit_test(test_main_tables_both_ways),
		cmocka_unit_test(test_reverse_consistent),
		cmocka_unit_test(test_spot_checks),
		cmocka_unit_test(test_languages),
		cmocka_unit_test(test_to_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
