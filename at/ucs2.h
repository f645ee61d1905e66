/* ucs2 — UTF-8 <-> UTF-16BE for SMS user data (TS 23.038 6.2.3: UCS-2,
 * which phones read as UTF-16, so characters outside the BMP such as emoji
 * travel as surrogate pairs).
 *
 * Pure functions: no allocation, no globals. */
#ifndef SMSGW_UCS2_H
#define SMSGW_UCS2_H

#include <stddef.h>
#include <stdint.h>

#define UCS2_REPLACEMENT 0xFFFD

/* Reads one code point from the NUL-terminated UTF-8 string at *s and
 * advances *s. Returns 1, 0 at the terminating NUL (*s unchanged), or
 * -EINVAL for invalid UTF-8 (overlong forms, surrogates, > U+10FFFF,
 * stray or missing continuation bytes); *s is then unchanged. */
int ucs2_utf8_next(const char **s, uint32_t *cp);

/* Checks that the whole NUL-terminated string is valid UTF-8. Returns 0 or
 * -EINVAL, and the number of code points in *count when not NULL. */
int ucs2_utf8_validate(const char *s, size_t *count);

/* Writes cp (a Unicode scalar value) as UTF-8 to out; returns 1..4. */
size_t ucs2_utf8_put(uint32_t cp, char out[4]);

/* UTF-16 code units cp takes: 1, or 2 (a surrogate pair). */
unsigned ucs2_units(uint32_t cp);

/* Writes cp as UTF-16BE to out; returns the octets written (2 or 4). */
size_t ucs2_put(uint32_t cp, uint8_t out[4]);

/* Decodes len octets of UTF-16BE to NUL-terminated UTF-8 in out. Unpaired
 * surrogates and U+0000 read as U+FFFD. Returns the byte length, -EINVAL
 * for an odd len, or -ENOSPC when out is too small (out then holds a
 * truncated, still valid, string). */
int ucs2_to_utf8(const uint8_t *in, size_t len, char *out, size_t outlen);

#endif
