/* csv — an RFC 4180-ish record reader over a memory buffer.
 *
 * Fields are separated by commas; records end with LF, CRLF or a lone CR,
 * or at the end of the input. A field that starts with a double quote runs
 * to the matching quote, may hold commas and line breaks, and writes a
 * quote as "". A quote inside an unquoted field is kept as is (lenient);
 * after a closing quote only a comma or the end of the record may follow.
 * A UTF-8 byte order mark at the start is skipped, and so are empty lines;
 * a NUL byte is an error (it would cut a C string short).
 * Nothing is trimmed: that is the caller's business.
 *
 * Pure: no I/O, no globals. The buffer must outlive the parser.
 */
#ifndef SMSGW_CSV_H
#define SMSGW_CSV_H

#include <stddef.h>

#define CSV_FIELD_MAX (64u * 1024) /* bytes of one field */
#define CSV_FIELDS_MAX 256         /* fields of one record */
#define CSV_ERR_MAX 128

struct csv_parser;

/* One record; fields are NUL-terminated and valid until the next call. */
struct csv_record {
	char **fields;
	size_t n;
	unsigned line; /* line number where the record starts, from 1 */
};

/* NULL on allocation failure. */
struct csv_parser *csv_parser_new(const char *data, size_t len);
void csv_parser_free(struct csv_parser *p);

/* Reads the next record: 1 with *rec filled, 0 at the end of the input,
 * -EBADMSG for malformed input or -E2BIG past the limits above (then
 * csv_error() says where and why, e.g. "line 7: unterminated quoted
 * field"), -ENOMEM. After an error every call returns the same error. */
int csv_next(struct csv_parser *p, struct csv_record *rec);

const char *csv_error(const struct csv_parser *p);

#endif
