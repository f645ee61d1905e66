/* result — a command's response (or a URC) and a field iterator over it.
 *
 * The chat hands a `const struct at_result *` to command callbacks and URC
 * handlers; everything in it is borrowed for the duration of the callback.
 * The iterator walks it without sscanf:
 *
 *	struct at_result_iter it;
 *	int rssi, ber;
 *	at_result_iter_init(&it, res);
 *	if (at_result_next(&it, "+CSQ:") && at_result_number(&it, &rssi) &&
 *	    at_result_number(&it, &ber))
 *		...
 *
 * Fields are separated by ',' (blanks around them ignored). A string is
 * either "quoted" (no escapes; a quote ends it) or bare up to ',' or ')'.
 * Each successful read moves past the field and its trailing ','; a read
 * that fails leaves the position unchanged so another reader can be tried.
 * Lists "(...)" nest (e.g. +COPS=? and +CPMS=?).
 *
 * Pure functions, no allocation, no I/O. */
#ifndef SMSGW_RESULT_H
#define SMSGW_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "at/aterr.h"

struct at_line {
	const char *text;   /* NUL-terminated, without the line end */
	size_t len;
	bool pdu;           /* a hex PDU line that followed a PDU header
			       (+CMGR:, +CMGL:, +CMT:, +CDS: ...) */
};

struct at_result {
	struct at_error err;         /* final result; AT_ERR_OK for URCs */
	const char *final;           /* the final line as received ("OK",
					"+CMS ERROR: 330"); "" for TIMEOUT,
					IO and URCs. Never NULL. */
	const struct at_line *lines; /* information lines in arrival order
					(URC: the header, then its PDU) */
	size_t n_lines;
	unsigned lost;               /* lines discarded as too long while
					the response was open */
};

struct at_result_iter {
	const struct at_result *res;
	size_t line;     /* index of the current line; SIZE_MAX before the
			    first at_result_next() */
	const char *pos; /* read position in the current line */
	const char *end; /* end of the current line */
};

void at_result_iter_init(struct at_result_iter *it,
			 const struct at_result *res);

/* Moves to the next line that starts with prefix (NULL or "": the next
 * line, PDU lines included) and positions after the prefix and blanks.
 * Returns false (iterator at the end) when there is none. */
bool at_result_next(struct at_result_iter *it, const char *prefix);

/* The current line (NULL before the first next() / at the end). */
const struct at_line *at_result_line(const struct at_result_iter *it);

/* If the line after the current one is a PDU line, moves to it and
 * returns its hex text; otherwise false and no move. */
bool at_result_pdu(struct at_result_iter *it, const char **hex,
		   size_t *len);

/* Next field as a decimal integer (optional sign). False for an empty
 * field, non-digits, or overflow of int. */
bool at_result_number(struct at_result_iter *it, int *out);

/* Next field as a number range "lo-hi" (a single number gives lo == hi),
 * as in +CMGL=? or +COPS=? lists: "(0-4)". */
bool at_result_range(struct at_result_iter *it, int *lo, int *hi);

/* Next field as a string, borrowed: *s points into the line (without the
 * quotes) and is NOT NUL-terminated; *len is its length. An empty field
 * gives len 0 and succeeds. */
bool at_result_string(struct at_result_iter *it, const char **s,
		      size_t *len);

/* Same, copied into buf with a NUL. False (no move) when it does not fit
 * (len + 1 > size). */
bool at_result_string_copy(struct at_result_iter *it, char *buf,
			   size_t size);

/* Next field (quoted or not) as hex digits decoded into out[0..cap).
 * False on odd length, a non-hex digit, or more than cap bytes. *n gets
 * the byte count. */
bool at_result_hex(struct at_result_iter *it, uint8_t *out, size_t cap,
		   size_t *n);

/* Enters a "(" list / leaves it (consuming the ')' and a trailing ','). */
bool at_result_open_list(struct at_result_iter *it);
bool at_result_close_list(struct at_result_iter *it);

/* Skips one field: a number, a string, an empty field, or a whole list.
 * False only at the end of the line or of the current list. */
bool at_result_skip(struct at_result_iter *it);

/* The unread rest of the current line (may be ""), borrowed. */
const char *at_result_rest(const struct at_result_iter *it, size_t *len);

#endif
