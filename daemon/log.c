/* log — see log.h. */
#include "daemon/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static struct {
	const char *ident;
	enum log_level threshold;
	bool journal;  /* stderr is the journal: use <N> prefixes */
	FILE *stream;  /* NULL: stderr */
} log_state = { "smsgw", LOG_LVL_INFO, false, NULL };

static const struct {
	const char *name;
	enum log_level level;
} log_names[] = {
	{ "error", LOG_LVL_ERR },   { "err", LOG_LVL_ERR },
	{ "warning", LOG_LVL_WARN }, { "warn", LOG_LVL_WARN },
	{ "notice", LOG_LVL_NOTICE }, { "info", LOG_LVL_INFO },
	{ "debug", LOG_LVL_DEBUG },
};

void log_init(const char *ident, enum log_level threshold)
{
	const char *js = getenv("JOURNAL_STREAM");

	log_state.ident = ident ? ident : "smsgw";
	log_state.threshold = threshold;
	log_state.journal = js != NULL && js[0] != '\0';
}

void log_set_level(enum log_level threshold)
{
	log_state.threshold = threshold;
}

enum log_level log_get_level(void)
{
	return log_state.threshold;
}

bool log_enabled(enum log_level level)
{
	return level <= log_state.threshold;
}

void log_set_stream(FILE *stream)
{
	log_state.stream = stream;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(name, log_names[i].name) == 0) {
			*out = log_names[i].level;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (log_names[i].level == level)
			return log_names[i].name;
	return "unknown";
}

/* One fprintf per line so that concurrent writers (worker threads) never
 * interleave inside a line. */
void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	FILE *out = log_state.stream ? log_state.stream : stderr;
	char msg[1024];

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_state.journal) {
		fprintf(out, "<%d>%s\n", (int)level, msg);
	} else {
		char stamp[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(out, "%s.%03ld %s[%s]: %s\n", stamp, ts.tv_nsec / 1000000L,
			log_state.ident, log_level_name(level), msg);
	}
	fflush(out);
}

void log_write(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

const char *log_phone(enum log_level level, const char *phone,
		      char buf[LOG_PHONE_MAX])
{
	size_t len = phone ? strlen(phone) : 0;

	if (level >= LOG_LVL_DEBUG && len > 0 && len < LOG_PHONE_MAX) {
		memcpy(buf, phone, len + 1);
		return buf;
	}
	if (len < 7 || len >= LOG_PHONE_MAX) {
		snprintf(buf, LOG_PHONE_MAX, "*****");
		return buf;
	}
	snprintf(buf, LOG_PHONE_MAX, "%.3s*****%s", phone, phone + len - 3);
	return buf;
}
