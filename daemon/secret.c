/* secret — see secret.h. */
#include "daemon/secret.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/phone.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int secret_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void secret_wipe(void *p, size_t n)
{
	if (p)
		sodium_memzero(p, n);
}

/* hex(BLAKE2b-256(text)) */
static void token_digest(const char *text, size_t len,
			 char hash_hex[SECRET_HASH_HEX])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)text, len,
			   NULL, 0);
	sodium_bin2hex(hash_hex, SECRET_HASH_HEX, h, sizeof(h));
}

int secret_token_new(char token[SECRET_TOKEN_MAX],
		     char hash_hex[SECRET_HASH_HEX])
{
	unsigned char raw[SECRET_TOKEN_BYTES];

	if (secret_init() < 0)
		return -EIO;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(token, SECRET_TOKEN_MAX, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_digest(token, SECRET_TOKEN_LEN, hash_hex);
	return 0;
}

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int secret_token_hash(const char *token, char hash_hex[SECRET_HASH_HEX])
{
	size_t i;

	if (!token)
		return -EINVAL;
	for (i = 0; i < SECRET_TOKEN_LEN; i++)
		if (!is_b64url(token[i]))
			return -EINVAL;
	if (token[i] != '\0')
		return -EINVAL;
	token_digest(token, SECRET_TOKEN_LEN, hash_hex);
	return 0;
}

bool secret_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (strlen(b) != n)
		return false;
	return sodium_memcmp(a, b, n) == 0;
}

int secret_code_new(char code[SECRET_CODE_LEN + 1])
{
	if (secret_init() < 0)
		return -EIO;
	for (size_t i = 0; i < SECRET_CODE_LEN; i++)
		code[i] = crockford[randombytes_uniform(32)];
	code[SECRET_CODE_LEN] = '\0';
	return 0;
}

void secret_code_display(const char *code, char out[SECRET_CODE_MAX])
{
	memcpy(out, code, 5);
	out[5] = '-';
	memcpy(out + 6, code + 5, 5);
	out[11] = '\0';
}

/* One typed character -> its canonical Crockford symbol, or 0. */
static char code_char(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c == 'I' || c == 'L')
		return '1';
	if (c == 'O')
		return '0';
	if (c != '\0' && strchr(crockford, c))
		return c;
	return 0;
}

int secret_code_normalize(const char *in, char out[SECRET_CODE_LEN + 1])
{
	char buf[SECRET_CODE_LEN + 1];
	size_t n = 0;

	if (!in)
		return -EINVAL;
	for (const char *p = in; *p; p++) {
		char c;

		if (*p == ' ' || *p == '-' || *p == '\t')
			continue;
		c = code_char(*p);
		if (!c || n == SECRET_CODE_LEN)
			goto bad;
		buf[n++] = c;
	}
	if (n != SECRET_CODE_LEN)
		goto bad;
	buf[n] = '\0';
	memcpy(out, buf, sizeof(buf));
	sodium_memzero(buf, sizeof(buf));
	return 0;
bad:
	sodium_memzero(buf, sizeof(buf));
	return -EINVAL;
}

/* --- password policy ------------------------------------------------------ */

/* The commonest passwords of 8 characters or more (shorter ones fail the
 * length rule anyway), lower case, sorted by strcmp() for bsearch(). Drawn
 * from the public top lists (breach corpora summaries), plus Spanish and
 * Portuguese favourites since the product ships those templates. */
static const char *const common_passwords[] = {
	"00000000", "0123456789", "11111111", "1111111111", "11223344",
	"12121212", "123123123", "12341234", "1234512345", "12345678",
	"123456789", "1234567890", "1234567891", "12345678910", "123456789a",
	"123456abc", "1234qwer", "123qweasd", "1q2w3e4r", "1q2w3e4r5t",
	"1q2w3e4r5t6y", "1qaz2wsx", "1qazxsw2", "22222222", "55555555",
	"654321654321", "66666666", "77777777", "87654321", "88888888",
	"987654321", "99999999", "a1234567", "a12345678", "aa123456",
	"abc12345", "abc123456", "abcd1234", "abcdefgh", "admin123",
	"administrador", "asdf1234", "asdfasdf", "asdfghjk", "asdfghjkl",
	"azerty123", "azertyui", "barcelona", "baseball", "baseball1",
	"basketball", "benfica1", "blink182", "changeme", "charlie1",
	"chocolate", "computer", "computer1", "contrasena", "contraseña",
	"corinthians", "dragon123", "estrellita", "flamengo", "football",
	"football1", "hello123", "iloveyou", "iloveyou1", "iloveyou2",
	"internet", "jennifer", "jordan23", "letmein1", "liverpool",
	"loveyou1", "madrid123", "master123", "michael1", "michelle",
	"monkey123", "mustang1", "p@ssw0rd", "palmeiras", "passw0rd",
	"password", "password1", "password12", "password123", "password2",
	"pokemon1", "princesa", "princess", "princess1", "q1w2e3r4",
	"q1w2e3r4t5", "qazwsxedc", "qwe12345", "qwer1234", "qwerty12",
	"qwerty123", "qwerty1234", "qwertyui", "qwertyuiop", "realmadrid",
	"samsung1", "senha123", "shadow12", "soccer12", "starwars",
	"sunshine", "sunshine1", "superman", "superman1", "teamo123",
	"test1234", "trustno1", "trustno11", "welcome1", "welcome12",
	"welcome123", "whatever", "whatever1", "zaq12wsx", "zxcvbnm1",
	"zxcvbnm123",
};

#define COMMON_COUNT (sizeof(common_passwords) / sizeof(common_passwords[0]))

static int common_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

/* Lower-cases ASCII letters of pw into buf; false when pw is longer than
 * any list entry. */
static bool ascii_lower(const char *pw, char *buf, size_t cap)
{
	size_t n = strlen(pw);

	if (n >= cap)
		return false;
	for (size_t i = 0; i <= n; i++)
		buf[i] = (pw[i] >= 'A' && pw[i] <= 'Z') ? (char)(pw[i] + 32)
							: pw[i];
	return true;
}

static bool is_common(const char *pw)
{
	char buf[32];
	bool found;

	if (!ascii_lower(pw, buf, sizeof(buf)))
		return false;
	found = bsearch(buf, common_passwords, COMMON_COUNT,
			sizeof(common_passwords[0]), common_cmp) != NULL;
	sodium_memzero(buf, sizeof(buf));
	return found;
}

/* Counts the code points of valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF); -1 when invalid. */
static long utf8_chars(const unsigned char *s)
{
	long n = 0;

	while (*s) {
		unsigned c = *s, len, cp;

		if (c < 0x80) {
			s++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return -1;
		for (unsigned i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		s += len;
		n++;
	}
	return n;
}

/* True when pw, read as a phone number (digits with separators and an
 * optional '+'), is the account's own number in a usual spelling. */
static bool is_own_phone(const char *pw, const char *e164)
{
	char d[40];
	const char *digits, *national;
	size_t n = 0, cc;
	bool hit = false;

	if (!e164 || !phone_is_e164(e164))
		return false;
	for (const char *p = pw; *p; p++) {
		if (strchr(" -.()/+", *p))
			continue;
		if (*p < '0' || *p > '9' || n + 1 >= sizeof(d))
			return false;
		d[n++] = *p;
	}
	d[n] = '\0';
	digits = e164 + 1;
	cc = phone_cc_len(e164);
	national = digits + cc;
	if (strcmp(d, digits) == 0 || strcmp(d, national) == 0)
		hit = true;
	else if (d[0] == '0' && strcmp(d + 1, national) == 0)
		hit = true;   /* national with trunk 0 */
	else if (d[0] == '0' && d[1] == '0' && strcmp(d + 2, digits) == 0)
		hit = true;   /* 00 international prefix */
	sodium_memzero(d, sizeof(d));
	return hit;
}

int secret_password_check(const char *password, const char *e164,
			  const char **why)
{
	const char *reason = NULL;
	long chars;

	chars = password ? utf8_chars((const unsigned char *)password) : -1;
	if (chars < 0)
		reason = "the password is not valid UTF-8 text";
	else if (chars < SECRET_PASSWORD_MIN)
		reason = "too short: use at least 8 characters";
	else if (chars > SECRET_PASSWORD_MAX)
		reason = "too long: use at most 256 characters";
	else if (is_own_phone(password, e164))
		reason = "the password is the account's phone number";
	else if (is_common(password))
		reason = "the password is one of the most common passwords";
	if (!reason)
		return 0;
	if (why)
		*why = reason;
	return -EINVAL;
}
