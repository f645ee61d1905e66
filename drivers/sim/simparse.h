/* simparse — splits an AT command line into commands, and a command's
 * parameter string into fields (ITU-T V.250 5.2 / 5.4).
 *
 * Pure functions on caller buffers: no I/O, no allocation, no globals.
 *
 *   "E0V1"                      -> E "0", V "1"          (basic)
 *   "+CMGF=0;+CNMI=2,1,0,1,0"   -> +CMGF set "0", +CNMI set "2,1,0,1,0"
 *   "+CPIN?"  "+CNMI=?"  "&F"   -> query, test, basic
 *   "S0=1"  "S3?"               -> S set "0=1", S query "3"
 *
 * Spaces outside quoted strings are ignored, as V.250 says; names are
 * upper-cased; parameters keep their case. */
#ifndef SMSGW_SIMPARSE_H
#define SMSGW_SIMPARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SIMPARSE_NAME_MAX 16  /* "+CMGS", "^CURC", "&F" + NUL */
#define SIMPARSE_ARGS_MAX 256 /* one command's parameter string + NUL */
#define SIMPARSE_FIELDS_MAX 16

enum simparse_kind {
	SIMPARSE_EXEC,  /* "+CNMA", "E0", "I" */
	SIMPARSE_SET,   /* "+CMGF=0" */
	SIMPARSE_QUERY, /* "+CPIN?" */
	SIMPARSE_TEST,  /* "+CNMI=?" */
};

struct simparse_cmd {
	char name[SIMPARSE_NAME_MAX]; /* upper case; basic: "E", "&F", "S" */
	enum simparse_kind kind;
	char args[SIMPARSE_ARGS_MAX]; /* after '=' (set), the digits of a
					 basic command, "" when none */
};

/* Splits `body` (the command line after "AT", without the CR) into at
 * most `max` commands. Returns how many (0 for a bare "AT"), or -EINVAL
 * for a syntax error (unknown character, unbalanced quote, a name or a
 * parameter string too long, more than `max` commands). */
int simparse_line(const char *body, struct simparse_cmd *cmds, size_t max);

/* The fields of one parameter string: `2,1,,"SM"` -> "2" "1" "" "SM". */
struct simparse_fields {
	unsigned n;                        /* 0 for "" */
	const char *v[SIMPARSE_FIELDS_MAX];/* into buf, NUL-terminated */
	bool quoted[SIMPARSE_FIELDS_MAX];  /* was a "string" */
	char buf[SIMPARSE_ARGS_MAX + SIMPARSE_FIELDS_MAX];
};

/* Returns 0, or -EINVAL (unbalanced quote, text after a closing quote,
 * too many fields). */
int simparse_fields(const char *args, struct simparse_fields *out);

/* True when field i exists and is not empty. */
bool simparse_has(const struct simparse_fields *f, unsigned i);

/* Field i as a decimal integer in [min, max]. An absent or empty field
 * yields `dflt`. Returns false for a quoted, non-numeric or out-of-range
 * value (out untouched). */
bool simparse_int(const struct simparse_fields *f, unsigned i, long min,
		  long max, long dflt, long *out);

#endif
