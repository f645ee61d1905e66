/* Tests for daemon/secret: tokens, recovery codes, password policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/secret.h"

static void test_token_shape_and_hash(void **state)
{
	char tok[SECRET_TOKEN_MAX], h1[SECRET_HASH_HEX], h2[SECRET_HASH_HEX];
	unsigned char raw[64];
	size_t rawlen = 0;

	(void)state;
	assert_int_equal(secret_token_new(tok, h1), 0);
	assert_int_equal(strlen(tok), SECRET_TOKEN_LEN);
	assert_int_equal(strlen(h1), 64);
	assert_null(strpbrk(tok, "+/="));
	/* decodes back to 18 bytes (144 bits) as URL-safe base64 */
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), tok, strlen(tok),
					   NULL, &rawlen, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	assert_int_equal(rawlen, 18);
	/* the stored hash is the hash of what the person presents */
	assert_int_equal(secret_token_hash(tok, h2), 0);
	assert_string_equal(h1, h2);
	assert_true(secret_equal(h1, h2));
	/* and it is BLAKE2b-256 of the token text, not the token itself */
	unsigned char d[32];
	char hex[65];
	crypto_generichash(d, 32, (const unsigned char *)tok, strlen(tok),
			   NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), d, 32);
	assert_string_equal(h1, hex);
	assert_null(strstr(h1, tok));
}

static void test_token_unique(void **state)
{
	enum { N = 2000 };
	static char toks[N][SECRET_TOKEN_MAX];
	char h[SECRET_HASH_HEX];

	(void)state;
	for (int i = 0; i < N; i++)
		assert_int_equal(secret_token_new(toks[i], h), 0);
	qsort(toks, N, SECRET_TOKEN_MAX,
	      (int (*)(const void *, const void *))strcmp);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(toks[i - 1], toks[i]);
}

static void test_token_malformed(void **state)
{
	char h[SECRET_HASH_HEX];
	static const char *const bad[] = {
		"", "short", "AAAAAAAAAAAAAAAAAAAAAAA",    /* 23 */
		"AAAAAAAAAAAAAAAAAAAAAAAAA",               /* 25 */
		"AAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAA+AAAAAAAAAAAA",
		"AAAAAAAAAAA/AAAAAAAAAAAA", "AAAAAAAAAAA AAAAAAAAAAAA",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(secret_token_hash(bad[i], h), -EINVAL);
	assert_int_equal(secret_token_hash(NULL, h), -EINVAL);
	assert_int_equal(secret_token_hash("AAAAAAAAAAA-AAAAAAAAAAA_", h), 0);
}

static void test_equal(void **state)
{
	(void)state;
	assert_true(secret_equal("abc", "abc"));
	assert_false(secret_equal("abc", "abd"));
	assert_false(secret_equal("abc", "abcd"));
	assert_true(secret_equal("", ""));
}

static void test_code_new_and_display(void **state)
{
	char code[SECRET_CODE_LEN + 1], disp[SECRET_CODE_MAX];
	char back[SECRET_CODE_LEN + 1];
	unsigned seen[256] = { 0 };

	(void)state;
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(secret_code_new(code), 0);
		assert_int_equal(strlen(code), SECRET_CODE_LEN);
		for (int j = 0; j < SECRET_CODE_LEN; j++) {
			assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ",
					       code[j]));
			seen[(unsigned char)code[j]]++;
		}
		secret_code_display(code, disp);
		assert_int_equal(strlen(disp), 11);
		assert_int_equal(disp[5], '-');
		assert_int_equal(secret_code_normalize(disp, back), 0);
		assert_string_equal(back, code);
	}
	/* all 32 symbols occur, none of I L O U: 30000 draws, each symbol
	 * expected ~937 times; 700..1200 is far beyond 6 sigma */
	for (const char *p = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; *p; p++) {
		unsigned n = seen[(unsigned char)*p];
		if (n < 700 || n > 1200)
			fail_msg("symbol %c seen %u times", *p, n);
	}
	assert_int_equal(seen['I'] + seen['L'] + seen['O'] + seen['U'], 0);
}

static void test_code_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "7K3M9-QXD2P", "7K3M9QXD2P" },
		{ "7k3m9qxd2p", "7K3M9QXD2P" },
		{ " 7k3m9 - qxd2p ", "7K3M9QXD2P" },
		{ "7K-3M-9Q-XD-2P", "7K3M9QXD2P" },
	};
	static const char *const bad[] = {
		"7K3M9-QXD2", "7K3M9-QXD2PP", "7K3M9-QXDUP", "7K3M9_QXD2P",
		"7K3M9.QXD2P", "", "----------", "7K3M9-QXD2P\xc3\xa9",
	};
	char out[SECRET_CODE_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(secret_code_normalize(good[i].in, out), 0);
		assert_string_equal(out, good[i].out);
	}
	/* Crockford look-alikes: I, L -> 1 and O -> 0, any case */
	assert_int_equal(secret_code_normalize("IL0Oo-ilLIi", out), 0);
	assert_string_equal(out, "1100011111");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(out, "untouched");
		assert_int_equal(secret_code_normalize(bad[i], out), -EINVAL);
		assert_string_equal(out, "untouched");
	}
	assert_int_equal(secret_code_normalize(NULL, out), -EINVAL);
}

static void expect_weak(const char *pw, const char *phone, const char *part)
{
	const char *why = NULL;

	if (secret_password_check(pw, phone, &why) != -EINVAL)
		fail_msg("'%s' accepted", pw);
	assert_non_null(why);
	if (!strstr(why, part))
		fail_msg("'%s': reason '%s' lacks '%s'", pw, why, part);
	/* a static reason (the same pointer each call), never built from pw */
	const char *again = NULL;
	secret_password_check(pw, phone, &again);
	assert_ptr_equal(why, again);
}

static void expect_ok(const char *pw, const char *phone)
{
	const char *why = "none";

	if (secret_password_check(pw, phone, &why) != 0)
		fail_msg("'%s' refused: %s", pw, why);
}

static void test_password_policy(void **state)
{
	const char *ph = "+34600111222";
	char longpw[300];

	(void)state;
	expect_ok("correct horse battery", ph);
	expect_ok("Tr0ub4dor&3x", ph);
	expect_ok("ñandú-pingüino", ph);
	expect_ok("hgfedcba", NULL);    /* 8 chars, not common */
	expect_weak("abcdefgh", NULL, "common");
	expect_weak("abcdefg", ph, "too short");
	/* 7 characters in 14 bytes is still too short: characters count */
	expect_weak("ñññññññ", ph, "too short");
	expect_ok("ññññññññ", ph);
	memset(longpw, 'x', 256);
	longpw[256] = '\0';
	expect_ok(longpw, ph);
	longpw[256] = 'x';
	longpw[257] = '\0';
	expect_weak(longpw, ph, "too long");
	expect_weak("abc\xff\xfe" "defgh", ph, "UTF-8");
	expect_weak("abc\xc0\xaf" "defgh", ph, "UTF-8");        /* overlong */
	expect_weak("abc\xed\xa0\x80" "defgh", ph, "UTF-8");    /* surrogate */
	/* the phone number in its usual spellings */
	expect_weak("+34600111222", ph, "phone number");
	expect_weak("34600111222", ph, "phone number");
	expect_weak("0034600111222", ph, "phone number");
	expect_weak("600111222", ph, "phone number");
	expect_weak("600 111 222", ph, "phone number");
	expect_weak("+34 600-111-222", ph, "phone number");
	expect_ok("600111223", ph);
	expect_ok("600111222", "+34600111333");
	expect_weak("0412345678", "+61412345678", "phone number");
	/* common passwords, any case; first, middle and last of the table */
	expect_weak("password", ph, "common");
	expect_weak("PassWord", ph, "common");
	expect_weak("00000000", ph, "common");
	expect_weak("zxcvbnm123", ph, "common");
	expect_weak("QWERTYUIOP", ph, "common");
	expect_weak("P@ssw0rd", ph, "common");
	expect_weak("Contraseña", ph, "common");
	expect_weak("iloveyou", ph, "common");
	expect_weak("12345678", ph, "common");
	expect_ok("password!x", ph);
	assert_int_equal(secret_password_check(NULL, ph, NULL), -EINVAL);
}

static void test_wipe(void **state)
{
	char buf[16] = "secret-material";

	(void)state;
	secret_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	secret_wipe(NULL, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_shape_and_hash),
		cmocka_unit_test(test_token_unique),
		cmocka_unit_test(test_token_malformed),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_code_new_and_display),
		cmocka_unit_test(test_code_normalize),
		cmocka_unit_test(test_password_policy),
		cmocka_unit_test(test_wipe),
	};
	if (secret_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
