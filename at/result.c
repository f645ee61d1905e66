/* result — field iterator over response lines (see result.h). */
#include "at/result.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* After a field ending at p: skips blanks and one ','. */
static void finish_field(struct at_result_iter *it, const char *p)
{
	p = skip_blanks(p, it->end);
	if (p < it->end && *p == ',')
		p = skip_blanks(p + 1, it->end);
	it->pos = p;
}

/* True when p is at the end of a field (blanks, then ',' ')' or EOL). */
static bool at_field_end(const struct at_result_iter *it, const char *p)
{
	p = skip_blanks(p, it->end);
	return p == it->end || *p == ',' || *p == ')';
}

static bool have_field(const struct at_result_iter *it)
{
	return it->pos && it->pos < it->end && *it->pos != ')';
}

void at_result_iter_init(struct at_result_iter *it,
			 const struct at_result *res)
{
	it->res = res;
	it->line = SIZE_MAX;
	it->pos = NULL;
	it->end = NULL;
}

static void set_line(struct at_result_iter *it, size_t i, size_t skip)
{
	const struct at_line *l = &it->res->lines[i];

	it->line = i;
	it->end = l->text + l->len;
	it->pos = skip_blanks(l->text + skip, it->end);
}

bool at_result_next(struct at_result_iter *it, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t i = it->line == SIZE_MAX ? 0 : it->line + 1;

	for (; i < it->res->n_lines; i++) {
		const struct at_line *l = &it->res->lines[i];

		if (plen == 0 ||
		    (l->len >= plen && memcmp(l->text, prefix, plen) == 0)) {
			set_line(it, i, plen);
			return true;
		}
	}
	it->line = it->res->n_lines;
	it->pos = it->end = NULL;
	return false;
}

const struct at_line *at_result_line(const struct at_result_iter *it)
{
	if (it->line >= it->res->n_lines)
		return NULL;
	return &it->res->lines[it->line];
}

bool at_result_pdu(struct at_result_iter *it, const char **hex, size_t *len)
{
	size_t next;
	const struct at_line *l;

	if (it->line >= it->res->n_lines)
		return false;
	next = it->line + 1;
	if (next >= it->res->n_lines || !it->res->lines[next].pdu)
		return false;
	l = &it->res->lines[next];
	set_line(it, next, l->len);
	*hex = l->text;
	*len = l->len;
	return true;
}

/* Parses an optionally signed decimal at *pp; false on no digits or int
 * overflow. Moves *pp past it. */
static bool parse_int(const char **pp, const char *end, int *out)
{
	const char *p = *pp;
	bool neg = false;
	long long v = 0;

	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	if (p == end || *p < '0' || *p > '9')
		return false;
	while (p < end && *p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		if (v > (long long)INT_MAX + 1)
			return false;
	}
	if (neg)
		v = -v;
	if (v > INT_MAX || v < INT_MIN)
		return false;
	*out = (int)v;
	*pp = p;
	return true;
}

/* Some firmwares quote numbers (Huawei +CPMS). */
static const char *open_quote(const char *p, const char *end, bool *quoted)
{
	*quoted = p < end && *p == '"';
	return *quoted ? p + 1 : p;
}

static bool close_quote(const char **pp, const char *end, bool quoted)
{
	if (!quoted)
		return true;
	if (*pp == end || **pp != '"')
		return false;
	(*pp)++;
	return true;
}

bool at_result_number(struct at_result_iter *it, int *out)
{
	const char *p;
	bool q;
	int v;

	if (!have_field(it))
		return false;
	p = open_quote(it->pos, it->end, &q);
	if (!parse_int(&p, it->end, &v) || !close_quote(&p, it->end, q) ||
	    !at_field_end(it, p))
		return false;
	*out = v;
	finish_field(it, p);
	return true;
}

bool at_result_range(struct at_result_iter *it, int *lo, int *hi)
{
	const char *p;
	int a, b;

	if (!have_field(it))
		return false;
	p = it->pos;
	if (!parse_int(&p, it->end, &a))
		return false;
	b = a;
	if (p < it->end && *p == '-') {
		p++;
		if (!parse_int(&p, it->end, &b))
			return false;
	}
	if (!at_field_end(it, p))
		return false;
	*lo = a;
	*hi = b;
	finish_field(it, p);
	return true;
}

/* Finds the string field at it->pos without moving; *next is where the
 * field ends (before the separator). */
static bool peek_string(const struct at_result_iter *it, const char **s,
			size_t *len, const char **next)
{
	const char *p = it->pos, *q;

	if (!it->pos || p == it->end || *p == ')')
		return false;
	if (*p == '"') {
		q = memchr(p + 1, '"', (size_t)(it->end - p - 1));
		if (!q || !at_field_end(it, q + 1))
			return false;
		*s = p + 1;
		*len = (size_t)(q - p - 1);
		*next = q + 1;
		return true;
	}
	q = p;
	while (q < it->end && *q != ',' && *q != ')')
		q++;
	*next = q;
	while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	*s = p;
	*len = (size_t)(q - p);
	return true;
}

bool at_result_string(struct at_result_iter *it, const char **s, size_t *len)
{
	const char *next;

	if (!peek_string(it, s, len, &next))
		return false;
	finish_field(it, next);
	return true;
}

bool at_result_string_copy(struct at_result_iter *it, char *buf,
			   size_t size)
{
	const char *s, *next;
	size_t len;

	if (!peek_string(it, &s, &len, &next) || len + 1 > size)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	finish_field(it, next);
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool at_result_hex(struct at_result_iter *it, uint8_t *out, size_t cap,
		   size_t *n)
{
	const char *s, *next;
	size_t len;

	if (!peek_string(it, &s, &len, &next) || len % 2 || len / 2 > cap)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hexval(s[i]) < 0)
			return false;
	for (size_t i = 0; i < len / 2; i++)
		out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
	*n = len / 2;
	finish_field(it, next);
	return true;
}

bool at_result_open_list(struct at_result_iter *it)
{
	if (!it->pos || it->pos == it->end || *it->pos != '(')
		return false;
	it->pos = skip_blanks(it->pos + 1, it->end);
	return true;
}

bool at_result_close_list(struct at_result_iter *it)
{
	const char *p;

	if (!it->pos)
		return false;
	p = skip_blanks(it->pos, it->end);
	if (p == it->end || *p != ')')
		return false;
	finish_field(it, p + 1);
	return true;
}

/* Skips a parenthesised list starting at p, nested lists and quoted
 * strings included. Returns the byte after its ')' or NULL. */
static const char *skip_list(const char *p, const char *end)
{
	unsigned depth = 0;
	bool quoted = false;

	for (; p < end; p++) {
		if (quoted) {
			quoted = *p != '"';
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && --depth == 0) {
			return p + 1;
		}
	}
	return NULL;
}

bool at_result_skip(struct at_result_iter *it)
{
	const char *s, *next;
	size_t len;

	if (!have_field(it))
		return false;
	if (*it->pos == '(') {
		next = skip_list(it->pos, it->end);
		if (!next)
			return false;
	} else if (!peek_string(it, &s, &len, &next)) {
		/* junk after a closing quote: skip to the separator */
		next = it->pos + 1;
		while (next < it->end && *next != ',' && *next != ')')
			next++;
	}
	finish_field(it, next);
	return true;
}

const char *at_result_rest(const struct at_result_iter *it, size_t *len)
{
	if (!it->pos) {
		*len = 0;
		return "";
	}
	*len = (size_t)(it->end - it->pos);
	return it->pos;
}
