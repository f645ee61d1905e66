/* simparse — see simparse.h. */
#include "drivers/sim/simparse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 1024

/* Characters that start an extended command name (V.250 5.4.1 uses '+';
 * vendors use the others: Huawei "^CURC", some "$", "%", "#", "*"). */
static bool is_sigil(char c)
{
	return c != '\0' && strchr("+^$%#*!", c) != NULL;
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!%-./:_", c));
}

/* Copies `in` without the spaces outside quotes. Returns -EINVAL when
 * it does not fit or a quote is left open. */
static int strip_spaces(const char *in, char *out, size_t outlen)
{
	bool quoted = false;
	size_t n = 0;

	for (; *in; in++) {
		if (*in == '"')
			quoted = !quoted;
		else if (*in == ' ' && !quoted)
			continue;
		if (n + 1 >= outlen)
			return -EINVAL;
		out[n++] = *in;
	}
	out[n] = '\0';
	return quoted ? -EINVAL : 0;
}

/* Copies [p, end) into dst (size SIMPARSE_ARGS_MAX). */
static int copy_args(char *dst, const char *p, size_t len)
{
	if (len >= SIMPARSE_ARGS_MAX)
		return -EINVAL;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* Parses one extended command at *pp ("+CMGS=23", "+CPIN?"), advancing
 * *pp past it and a following ';'. */
static int parse_extended(const char **pp, struct simparse_cmd *c)
{
	const char *p = *pp;
	size_t n = 0;
	bool quoted = false;
	const char *start;

	c->name[n++] = *p++;
	while (is_name_char(*p)) {
		if (n + 1 >= SIMPARSE_NAME_MAX)
			return -EINVAL;
		c->name[n++] = (char)toupper((unsigned char)*p++);
	}
	c->name[n] = '\0';
	if (n == 1)
		return -EINVAL;
	c->kind = SIMPARSE_EXEC;
	if (p[0] == '=' && p[1] == '?') {
		c->kind = SIMPARSE_TEST;
		p += 2;
	} else if (p[0] == '?') {
		c->kind = SIMPARSE_QUERY;
		p++;
	} else if (p[0] == '=') {
		c->kind = SIMPARSE_SET;
		start = ++p;
		for (; *p && (quoted || *p != ';'); p++)
			if (*p == '"')
				quoted = !quoted;
		if (copy_args(c->args, start, (size_t)(p - start)) < 0)
			return -EINVAL;
	}
	if (*p == ';')
		p++;
	else if (*p != '\0')
		return -EINVAL;
	*pp = p;
	return 0;
}

/* Parses one basic command at *pp: a letter or '&' + letter, then
 * digits; "S<n>=<v>" and "S<n>?" for S-registers. */
static int parse_basic(const char **pp, struct simparse_cmd *c)
{
	const char *p = *pp;
	const char *start;
	size_t n = 0;

	if (*p == '&')
		c->name[n++] = *p++;
	if (!isalpha((unsigned char)*p))
		return -EINVAL;
	c->name[n++] = (char)toupper((unsigned char)*p++);
	c->name[n] = '\0';
	c->kind = SIMPARSE_EXEC;
	start = p;
	while (isdigit((unsigned char)*p))
		p++;
	if (strcmp(c->name, "S") == 0 && p > start) {
		if (*p == '?') {
			c->kind = SIMPARSE_QUERY;
		} else if (*p == '=') {
			c->kind = SIMPARSE_SET;
			for (p++; isdigit((unsigned char)*p); p++)
				;
		}
		if (copy_args(c->args, start, (size_t)(p - start)) < 0)
			return -EINVAL;
		if (*p == '?')
			p++;
	} else if (copy_args(c->args, start, (size_t)(p - start)) < 0) {
		return -EINVAL;
	}
	if (*p == ';')
		p++;
	*pp = p;
	return 0;
}

int simparse_line(const char *body, struct simparse_cmd *cmds, size_t max)
{
	char line[LINE_MAX_LEN];
	const char *p = line;
	size_t n = 0;
	int rc;

	if (strip_spaces(body, line, sizeof(line)) < 0)
		return -EINVAL;
	while (*p) {
		if (*p == ';') {
			p++;
			continue;
		}
		if (n >= max)
			return -EINVAL;
		memset(&cmds[n], 0, sizeof(cmds[n]));
		rc = is_sigil(*p) ? parse_extended(&p, &cmds[n])
				  : parse_basic(&p, &cmds[n]);
		if (rc < 0)
			return rc;
		n++;
	}
	return (int)n;
}

int simparse_fields(const char *args, struct simparse_fields *out)
{
	char *w = out->buf;
	const char *p = args;

	memset(out, 0, sizeof(*out));
	if (*p == '\0')
		return 0;
	for (;;) {
		if (out->n >= SIMPARSE_FIELDS_MAX)
			return -EINVAL;
		out->v[out->n] = w;
		if (*p == '"') {
			out->quoted[out->n] = true;
			for (p++; *p && *p != '"'; p++)
				*w++ = *p;
			if (*p++ != '"' || (*p != ',' && *p != '\0'))
				return -EINVAL;
		} else {
			for (; *p && *p != ','; p++)
				*w++ = *p;
		}
		*w++ = '\0';
		out->n++;
		if (*p == '\0')
			return 0;
		p++; /* ',' */
	}
}

bool simparse_has(const struct simparse_fields *f, unsigned i)
{
	return i < f->n && f->v[i][0] != '\0';
}

bool simparse_int(const struct simparse_fields *f, unsigned i, long min,
		  long max, long dflt, long *out)
{
	char *end;
	long v;

	if (!simparse_has(f, i)) {
		if (i < f->n && f->quoted[i])
			return false;
		*out = dflt;
		return true;
	}
	if (f->quoted[i] || !isdigit((unsigned char)f->v[i][0]))
		return false;
	errno = 0;
	v = strtol(f->v[i], &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}
