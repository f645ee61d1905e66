/* simlog — see simlog.h. */
#include "drivers/sim/simlog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct simlog {
	FILE *f;
	bool own; /* fclose it in simlog_free (not stdout) */
};

struct simlog *simlog_open(const char *path)
{
	struct simlog *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (!path || strcmp(path, "-") == 0) {
		l->f = stdout;
		return l;
	}
	l->f = fopen(path, "ae"); /* O_APPEND | O_CLOEXEC */
	if (!l->f) {
		int e = errno;

		free(l);
		errno = e;
		return NULL;
	}
	l->own = true;
	return l;
}

void simlog_free(struct simlog *l)
{
	if (!l)
		return;
	if (l->own)
		fclose(l->f);
	else
		fflush(l->f);
	free(l);
}

/* "2024-05-01T12:00:00.123Z" */
static void iso_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* A JSON string, or "" when the text is not valid UTF-8 (the codec
 * promises UTF-8; this keeps one bad part from losing the whole line). */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_string("");
}

static json_t *udh_json(const struct pdu_sms *sms)
{
	if (!sms->concat.present)
		return json_null();
	return json_pack("{s:i, s:i, s:i}", "ref", (int)sms->concat.ref,
			 "total", (int)sms->concat.total, "seq",
			 (int)sms->concat.seq);
}

static json_t *data_hex(const struct pdu_sms *sms)
{
	char hex[2 * PDU_DATA_MAX + 1];

	for (size_t i = 0; i < sms->data_len && i < PDU_DATA_MAX; i++)
		snprintf(hex + 2 * i, 3, "%02X", sms->data[i]);
	hex[2 * (sms->data_len < PDU_DATA_MAX ? sms->data_len
					      : PDU_DATA_MAX)] = '\0';
	return json_string(hex);
}

int simlog_sent(struct simlog *l, const char *modem, unsigned mr,
		const char *hex, const struct pdu_sms *sms)
{
	char now[40];
	json_t *o;
	char *s;
	int rc = 0;

	iso_now(now, sizeof(now));
	o = json_pack("{s:s, s:o, s:o, s:i, s:o, s:o, s:s, s:b, s:i, s:s}",
		      "time", now, "modem", jstr(modem), "to",
		      jstr(sms->addr.text), "mr", (int)mr, "text",
		      jstr(sms->text), "udh", udh_json(sms), "encoding",
		      pdu_encoding_name(sms->encoding), "srr", (int)sms->srr,
		      "class", sms->msg_class, "pdu", hex);
	if (!o)
		return -ENOMEM;
	if (sms->encoding == PDU_ENC_8BIT)
		json_object_set_new(o, "data", data_hex(sms));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	if (fprintf(l->f, "%s\n", s) < 0 || fflush(l->f) != 0)
		rc = -EIO;
	free(s);
	return rc;
}
