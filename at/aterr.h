/* aterr — modem errors as data (3GPP TS 27.007 9.2, TS 27.005 3.2.5).
 *
 * Every command completes with a `struct at_error`: the final result type
 * and, for +CME ERROR / +CMS ERROR, the numeric code. Codes map through
 * designated-initializer tables to a name and a retry class, which the
 * outbox uses to decide between "retry with backoff" and "fail the SMS".
 *
 * Pure functions, no allocation, no globals besides const tables. */
#ifndef SMSGW_ATERR_H
#define SMSGW_ATERR_H

#include <stdbool.h>
#include <stddef.h>

/* Final result types. OK and CONNECT are successes; TIMEOUT and IO are
 * made up by the chat (no final result arrived / the port failed). */
enum at_err_type {
	AT_ERR_OK = 0,
	AT_ERR_ERROR,       /* plain "ERROR" (or a vendor final mapped to it) */
	AT_ERR_CME,         /* "+CME ERROR: <n>" (27.007 9.2) */
	AT_ERR_CMS,         /* "+CMS ERROR: <n>" (27.005 3.2.5) */
	AT_ERR_TIMEOUT,     /* no final result within the command's timeout */
	AT_ERR_IO,          /* read/write error, EOF or hang-up on the port */
	AT_ERR_NO_CARRIER,
	AT_ERR_BUSY,
	AT_ERR_NO_ANSWER,
	AT_ERR_NO_DIALTONE,
	AT_ERR_CONNECT,     /* "CONNECT [<text>]": success, data mode follows */
	AT_ERR_TYPE_COUNT
};

/* What a caller should do about an error. */
enum at_err_class {
	AT_ERRC_OK = 0,     /* success */
	AT_ERRC_TRANSIENT,  /* may succeed later: retry with backoff */
	AT_ERRC_PERMANENT,  /* this request can never succeed: fail it */
	AT_ERRC_CONFIG,     /* modem/SIM setup is wrong (SMSC unknown, PIN
			       required, SIM missing): fails on this modem
			       until an operator fixes it */
	AT_ERRC_STORAGE,    /* message storage full: free storage, then retry */
};

struct at_error {
	enum at_err_type type;
	int code;           /* CME/CMS code; -1 when none or not known
			       (e.g. verbose text not in the table) */
};

#define AT_ERR_FMT_MAX 96   /* enough for any at_err_format() output */

/* Short English name: "OK", "ERROR", "timeout", "SMSC address unknown",
 * "unknown CMS error" ... Never NULL; static storage. */
const char *at_err_name(const struct at_error *err);

/* Retry class of err (see enum at_err_class). Codes not in the tables are
 * TRANSIENT (the outbox bounds its retries), as are TIMEOUT, IO, plain
 * ERROR and the call-related finals. */
enum at_err_class at_err_class(const struct at_error *err);

/* True when retrying later may succeed: TRANSIENT and STORAGE classes. */
bool at_err_is_transient(const struct at_error *err);

/* True for OK and CONNECT. */
bool at_err_is_ok(const struct at_error *err);

/* Formats err for humans: "+CMS ERROR: 330 (SMSC address unknown)",
 * "timeout", "OK". Always NUL-terminates when size > 0. Returns the
 * snprintf()-style length it wanted. */
int at_err_format(const struct at_error *err, char *buf, size_t size);

/* Code for a verbose error text (AT+CMEE=2), case-insensitive, e.g.
 * (AT_ERR_CME, "SIM PIN required") -> 11, (AT_ERR_CMS, "SMSC address
 * unknown") -> 330. Returns -1 when not found or type is not CME/CMS. */
int at_err_code_from_text(enum at_err_type type, const char *text);

/* Stable lower-case identifier of a type: "ok", "error", "cme", "cms",
 * "timeout", "io", "no_carrier", "busy", "no_answer", "no_dialtone",
 * "connect"; "invalid" otherwise. For logs, JSON and the store. */
const char *at_err_type_name(enum at_err_type type);

#endif
