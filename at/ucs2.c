/* ucs2 — UTF-8 <-> UTF-16BE conversions. */
#include "at/ucs2.h"

#include <errno.h>
#include <stdbool.h>

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Lead byte -> sequence length and the smallest code point that length
 * may encode (anything below is an overlong form). */
static int lead_len(unsigned char c, uint32_t *cp, uint32_t *min)
{
	if (c < 0x80) {
		*cp = c;
		*min = 0;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		*cp = c & 0x1F;
		*min = 0x80;
		return 2;
	}
	if ((c & 0xF0) == 0xE0) {
		*cp = c & 0x0F;
		*min = 0x800;
		return 3;
	}
	if ((c & 0xF8) == 0xF0) {
		*cp = c & 0x07;
		*min = 0x10000;
		return 4;
	}
	return -EINVAL;
}

int ucs2_utf8_next(const char **s, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)*s;
	uint32_t v, min;
	int n;

	if (p[0] == '\0')
		return 0;
	n = lead_len(p[0], &v, &min);
	if (n < 0)
		return -EINVAL;
	/* A NUL is not a continuation byte, so this never reads past it. */
	for (int i = 1; i < n; i++) {
		if (!is_cont(p[i]))
			return -EINVAL;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return -EINVAL;
	*cp = v;
	*s += n;
	return 1;
}

int ucs2_utf8_validate(const char *s, size_t *count)
{
	size_t n = 0;
	uint32_t cp;
	int rc;

	while ((rc = ucs2_utf8_next(&s, &cp)) > 0)
		n++;
	if (rc < 0)
		return rc;
	if (count)
		*count = n;
	return 0;
}

size_t ucs2_utf8_put(uint32_t cp, char out[4])
{
	unsigned char *o = (unsigned char *)out;

	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

unsigned ucs2_units(uint32_t cp)
{
	return cp >= 0x10000 ? 2 : 1;
}

size_t ucs2_put(uint32_t cp, uint8_t out[4])
{
	if (cp < 0x10000) {
		out[0] = (uint8_t)(cp >> 8);
		out[1] = (uint8_t)cp;
		return 2;
	}
	cp -= 0x10000;
	out[0] = (uint8_t)(0xD8 | (cp >> 18));
	out[1] = (uint8_t)(cp >> 10);
	out[2] = (uint8_t)(0xDC | ((cp >> 8) & 0x03));
	out[3] = (uint8_t)cp;
	return 4;
}

/* Next code point of UTF-16BE at in[*i]; pairs joined, strays replaced. */
static uint32_t utf16_next(const uint8_t *in, size_t len, size_t *i)
{
	uint32_t hi = (uint32_t)in[*i] << 8 | in[*i + 1];
	uint32_t lo;

	*i += 2;
	if (hi == 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
		return UCS2_REPLACEMENT;
	if (hi < 0xD800 || hi > 0xDBFF)
		return hi;
	if (*i + 2 > len)
		return UCS2_REPLACEMENT;
	lo = (uint32_t)in[*i] << 8 | in[*i + 1];
	if (lo < 0xDC00 || lo > 0xDFFF)
		return UCS2_REPLACEMENT;
	*i += 2;
	return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

int ucs2_to_utf8(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t pos = 0, i = 0;

	if (len % 2)
		return -EINVAL;
	if (outlen == 0)
		return -ENOSPC;
	while (i < len) {
		char buf[4];
		size_t n = ucs2_utf8_put(utf16_next(in, len, &i), buf);

		if (pos + n >= outlen) {
			out[pos] = '\0';
			return -ENOSPC;
		}
		for (size_t k = 0; k < n; k++)
			out[pos++] = buf[k];
	}
	out[pos] = '\0';
	return (int)pos;
}
