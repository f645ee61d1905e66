/* gsm7 — the GSM 7-bit alphabets of TS 23.038 and septet packing.
 *
 * Tables: the default alphabet (6.2.1) and its extension table (6.2.1.1),
 * the national language single shift tables for Spanish (A.2.2) and
 * Portuguese (A.2.3), and the Portuguese locking shift table (A.3.3).
 * TS 23.038 defines no Spanish locking shift table (A.3.2 is void), so a
 * Spanish locking shift means the default alphabet.
 *
 * A "locking" table replaces the 128 one-septet characters; a "single"
 * shift table replaces the extension table reached through the escape
 * septet 0x1B. Language identifiers are those of TS 23.038 6.2.1.2.4
 * (0 = default tables).
 *
 * Pure functions over const tables: no allocation, no globals. */
#ifndef SMSGW_GSM7_H
#define SMSGW_GSM7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GSM7_ESC 0x1B

enum gsm7_lang {
	GSM7_LANG_DEFAULT = 0,
	GSM7_LANG_SPANISH = 2,
	GSM7_LANG_PORTUGUESE = 3,
};

/* Whether this implementation has a single shift / locking shift table for
 * `lang` (the default language has both: the default tables). */
bool gsm7_has_single(unsigned lang);
bool gsm7_has_locking(unsigned lang);

/* Septets for code point `cp` with the given tables: writes 1 septet, or
 * 2 (GSM7_ESC + code) to out and returns that count; returns 0 when the
 * tables cannot represent cp. Unsupported languages mean the default
 * tables. */
unsigned gsm7_encode_cp(uint32_t cp, unsigned single, unsigned locking,
			uint8_t out[2]);

/* Code point of one-septet character c (0..0x7F) in the locking table;
 * 0 for the escape septet. */
uint32_t gsm7_main_cp(uint8_t c, unsigned locking);

/* Code point of escape sequence 0x1B c. Codes the single shift table does
 * not define read as the locking table's character (TS 23.038 6.2.1.1);
 * 0x1B 0x1B (reserved for a further extension) reads as a space. */
uint32_t gsm7_ext_cp(uint8_t c, unsigned single, unsigned locking);

/* Decodes n septets (values 0..0x7F) to NUL-terminated UTF-8 in out.
 * A dangling escape at the end is dropped. Returns the byte length
 * (without the NUL) or -ENOSPC when outlen is too small (out then holds
 * a truncated, still valid, string). */
int gsm7_to_utf8(const uint8_t *sept, size_t n, unsigned single,
		 unsigned locking, char *out, size_t outlen);

/* Octets that n septets take after `fill` fill bits (0..6). */
size_t gsm7_packed_len(size_t n, unsigned fill);

/* Packs n septets into out, starting `fill` bits into out[0] (the fill bits
 * that align septets after a user data header; they are written as 0).
 * out must hold gsm7_packed_len(n, fill) octets; they are overwritten.
 * Returns that length. */
size_t gsm7_pack(const uint8_t *sept, size_t n, unsigned fill, uint8_t *out);

/* Unpacks n septets from in (inlen octets) skipping `fill` bits.
 * Returns 0, or -EINVAL when in is shorter than gsm7_packed_len(n, fill). */
int gsm7_unpack(const uint8_t *in, size_t inlen, unsigned fill, uint8_t *sept,
		size_t n);

#endif
