/* phone — what a person types as a mobile number, normalized to E.164.
 *
 * Accepted: the country code is required, written with '+', with "00"
 * (international prefix), or as bare digits ("34600111222" is Spain).
 * Spaces, dashes, dots, slashes and parentheses are ignored; a literal
 * "(0)" after the country code (the British "+44 (0)20 ..." habit) is
 * dropped. The result is '+' and 8..15 digits (ITU-T E.164 allows 15 with
 * the country code; shorter than 8 is refused as a typo), and its country
 * code must be one ITU-T has assigned (the table in phone.c).
 *
 * Known limit: bare digits are read as carrying a country code, so a
 * national number typed without its trunk 0 (Spanish "600111222") reads as
 * +60 (Malaysia). A national number WITH a trunk prefix ("0600111222") is
 * refused ("no country code"). Pure functions, no allocation, no globals. */
#ifndef SMSGW_PHONE_H
#define SMSGW_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#define PHONE_E164_MAX 17   /* '+' + 15 digits + NUL */
#define PHONE_MIN_DIGITS 8
#define PHONE_MAX_DIGITS 15

/* Normalizes `in` into out ("+34600111222"). Returns 0, or -EINVAL with
 * *why set to a static English reason ("no country code", "too short",
 * "too long", "letters", "unknown country calling code", ...); out is left
 * untouched on failure. `why` may be NULL. */
int phone_normalize(const char *in, char out[PHONE_E164_MAX], const char **why);

/* Length (1..3) of the country calling code of a normalized E.164 number
 * ("+34..." -> 2), or 0 when it has none assigned. */
size_t phone_cc_len(const char *e164);

/* Region or service name of the country calling code ("Spain",
 * "NANP (US, Canada, Caribbean)"), or NULL. */
const char *phone_cc_name(const char *e164);

/* True when s is a normalized number: '+', 8..15 digits, assigned code. */
bool phone_is_e164(const char *s);

#endif
