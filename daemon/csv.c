/* csv — see csv.h.
 *
 * The record's bytes go into one growing buffer, each field NUL-terminated;
 * `starts` holds where each field begins, and the field pointers handed
 * out are rebuilt from it once the record is complete (the buffer may move
 * while it grows).
 */
#include "daemon/csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct csv_parser {
	const char *data;
	size_t len, pos;
	unsigned line;   /* current line, from 1 */
	char *buf;       /* the record being built */
	size_t blen, bcap;
	size_t starts[CSV_FIELDS_MAX];
	char *fields[CSV_FIELDS_MAX];
	size_t nfields;
	int error;       /* sticky */
	char err[CSV_ERR_MAX];
};

struct csv_parser *csv_parser_new(const char *data, size_t len)
{
	struct csv_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->data = data;
	p->len = len;
	p->line = 1;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		p->pos = 3;
	return p;
}

void csv_parser_free(struct csv_parser *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p);
}

const char *csv_error(const struct csv_parser *p)
{
	return p->err;
}

static int fail(struct csv_parser *p, int err, unsigned line,
		const char *why)
{
	p->error = err;
	snprintf(p->err, sizeof(p->err), "line %u: %s", line, why);
	return err;
}

/* Makes room for one more byte in the record buffer. */
static int grow(struct csv_parser *p)
{
	size_t cap;
	char *b;

	if (p->blen < p->bcap)
		return 0;
	cap = p->bcap ? p->bcap * 2 : 256;
	b = realloc(p->buf, cap);
	if (!b)
		return fail(p, -ENOMEM, p->line, "out of memory");
	p->buf = b;
	p->bcap = cap;
	return 0;
}

/* Appends one byte of field data. A NUL would silently cut the field
 * short for the caller (a phone number!), so it is an error. */
static int put(struct csv_parser *p, char ch)
{
	if (ch == '\0')
		return fail(p, -EBADMSG, p->line, "NUL byte in a field");
	if (grow(p) < 0)
		return p->error;
	p->buf[p->blen++] = ch;
	return 0;
}

/* Ends the current field (NUL) and checks its size. */
static int end_field(struct csv_parser *p)
{
	size_t start = p->starts[p->nfields];

	if (p->blen - start > CSV_FIELD_MAX)
		return fail(p, -E2BIG, p->line, "field too long");
	if (grow(p) < 0)
		return p->error;
	p->buf[p->blen++] = '\0';
	p->nfields++;
	return 0;
}

static int begin_field(struct csv_parser *p)
{
	if (p->nfields == CSV_FIELDS_MAX)
		return fail(p, -E2BIG, p->line, "too many fields");
	p->starts[p->nfields] = p->blen;
	return 0;
}

/* Consumes a line break at pos, if there is one. */
static bool eat_newline(struct csv_parser *p)
{
	if (p->pos >= p->len)
		return false;
	if (p->data[p->pos] == '\n') {
		p->pos++;
	} else if (p->data[p->pos] == '\r') {
		p->pos++;
		if (p->pos < p->len && p->data[p->pos] == '\n')
			p->pos++;
	} else {
		return false;
	}
	p->line++;
	return true;
}

/* A quoted field, from its opening quote; stops after the closing one. */
static int quoted_field(struct csv_parser *p)
{
	unsigned start = p->line;

	p->pos++;
	for (;;) {
		char ch;

		if (p->pos >= p->len)
			return fail(p, -EBADMSG, start,
				    "unterminated quoted field");
		ch = p->data[p->pos++];
		if (ch == '"' && p->pos < p->len && p->data[p->pos] == '"') {
			p->pos++;
		} else if (ch == '"') {
			break;
		} else if (ch == '\n' || (ch == '\r' && (p->pos >= p->len ||
							 p->data[p->pos] != '\n'))) {
			p->line++;
		}
		if (put(p, ch) < 0)
			return p->error;
	}
	if (p->pos < p->len && p->data[p->pos] != ',' &&
	    p->data[p->pos] != '\n' && p->data[p->pos] != '\r')
		return fail(p, -EBADMSG, p->line,
			    "unexpected character after a closing quote");
	return 0;
}

static int plain_field(struct csv_parser *p)
{
	while (p->pos < p->len) {
		char ch = p->data[p->pos];

		if (ch == ',' || ch == '\n' || ch == '\r')
			break;
		if (put(p, ch) < 0)
			return p->error;
		p->pos++;
	}
	return 0;
}

/* Reads one record's fields up to and including its line break. */
static int read_record(struct csv_parser *p)
{
	for (;;) {
		int r = begin_field(p);

		if (r == 0 && p->pos < p->len && p->data[p->pos] == '"')
			r = quoted_field(p);
		else if (r == 0)
			r = plain_field(p);
		if (r < 0 || (r = end_field(p)) < 0)
			return r;
		if (p->pos < p->len && p->data[p->pos] == ',') {
			p->pos++;
			continue;
		}
		eat_newline(p);
		return 0;
	}
}

int csv_next(struct csv_parser *p, struct csv_record *rec)
{
	unsigned line;
	int r;

	if (p->error)
		return p->error;
	while (eat_newline(p))
		; /* empty lines */
	if (p->pos >= p->len)
		return 0;
	p->blen = 0;
	p->nfields = 0;
	line = p->line;
	r = read_record(p);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->nfields; i++)
		p->fields[i] = p->buf + p->starts[i];
	rec->fields = p->fields;
	rec->n = p->nfields;
	rec->line = line;
	return 1;
}
