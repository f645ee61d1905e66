/* log — leveled logging to stderr, journald-aware.
 *
 * With JOURNAL_STREAM set (systemd connected stderr to the journal), every
 * line starts with an sd-daemon "<N>" priority prefix so journald keeps the
 * level; otherwise lines carry a timestamp and the level name.
 *
 * Never pass a secret (token, code, password, PIN) to these functions.
 * Phone numbers go through log_phone(), which masks them for lines at info
 * level and above. */
#ifndef SMSGW_LOG_H
#define SMSGW_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Values are the syslog priorities used by sd-daemon prefixes. */
enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

#define LOG_PHONE_MAX 48

/* Sets the program name and threshold, and reads JOURNAL_STREAM. */
void log_init(const char *ident, enum log_level threshold);
void log_set_level(enum log_level threshold);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* "error", "warning", "notice", "info", "debug" (and "warn", "err"). */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Redirects output (tests); NULL restores stderr. Not owned. */
void log_set_stream(FILE *stream);

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vwrite(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_err(...) log_write(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_write(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_write(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LVL_DEBUG, __VA_ARGS__)

/* Formats a phone number for a line logged at `level` into buf and returns
 * buf. At info and above "+34600111222" becomes "+34*****222" (the first
 * three and last three characters, a fixed five stars so the length does not
 * leak either); short or odd values become "*****". Debug lines see the
 * number as given. */
const char *log_phone(enum log_level level, const char *phone,
		      char buf[LOG_PHONE_MAX]);

#endif
