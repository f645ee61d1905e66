/* siminbound — see siminbound.h. */
#include "drivers/sim/siminbound.h"

#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "drivers/sim/simmodem.h"

struct inbound_sms {
	double at;
	size_t seq;       /* file order: ties keep it (qsort is unstable) */
	char *from, *text;
	bool shift;
	int msg_class;
};

struct siminbound {
	struct ev_loop *loop;
	struct simmodem *m;
	ev_tstamp start;
	struct inbound_sms *v;
	size_t n, next;
	ev_timer timer;
};

static int by_time(const void *a, const void *b)
{
	const struct inbound_sms *x = a, *y = b;

	if (x->at != y->at)
		return (x->at > y->at) - (x->at < y->at);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Parses one line into in->v[in->n]. Returns 0, 1 (nothing: blank or
 * comment), or -1 with the reason in err. */
static int parse_line(struct siminbound *in, const char *line, char *err,
		      size_t errlen)
{
	json_t *j, *at, *cls;
	const char *from, *text;
	struct inbound_sms *s;
	int rc = -1;

	line += strspn(line, " \t");
	if (line[0] == '\0' || line[0] == '\n' || line[0] == '#')
		return 1;
	j = json_loads(line, 0, NULL);
	at = json_object_get(j, "at");
	cls = json_object_get(j, "class");
	from = json_string_value(json_object_get(j, "from"));
	text = json_string_value(json_object_get(j, "text"));
	if (!json_is_number(at) || json_number_value(at) < 0 || !from ||
	    !text || (cls && !json_is_integer(cls))) {
		snprintf(err, errlen, "want {\"at\": seconds, \"from\": ..., "
				      "\"text\": ...}");
		goto free_json;
	}
	s = &in->v[in->n];
	s->at = json_number_value(at);
	s->seq = in->n;
	s->from = strdup(from);
	s->text = strdup(text);
	s->shift = json_is_true(json_object_get(j, "shift"));
	s->msg_class = cls ? (int)json_integer_value(cls) : -1;
	if (!s->from || !s->text) {
		free(s->from);
		free(s->text);
		snprintf(err, errlen, "out of memory");
		goto free_json;
	}
	in->n++;
	rc = 0;
free_json:
	json_decref(j);
	return rc;
}

static int read_file(struct siminbound *in, const char *path, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, why[160];
	size_t cap = 0, lineno = 0, alloc = 0;
	struct inbound_sms *v;
	int rc = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		lineno++;
		if (in->n == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			v = realloc(in->v, alloc * sizeof(*v));
			if (!v) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			in->v = v;
		}
		if (parse_line(in, line, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			rc = -1;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static void arm(struct siminbound *in)
{
	double due;

	if (in->next >= in->n)
		return;
	due = in->start + in->v[in->next].at - ev_now(in->loop);
	ev_timer_set(&in->timer, due > 0 ? due : 0., 0.);
	ev_timer_start(in->loop, &in->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct siminbound *in = w->data;
	struct inbound_sms *s;
	char err[256];

	(void)loop;
	(void)revents;
	while (in->next < in->n &&
	       in->start + in->v[in->next].at <= ev_now(in->loop) + 1e-3) {
		s = &in->v[in->next++];
		if (simmodem_inject(in->m, s->from, s->text, s->shift,
				    s->msg_class, -1, 0, err, sizeof(err)) < 0)
			log_warn("inbound SMS #%zu not injected: %s", in->next,
				 err);
	}
	arm(in);
}

struct siminbound *siminbound_load(struct ev_loop *loop, const char *path,
				   struct simmodem *m, char *err,
				   size_t errlen)
{
	struct siminbound *in = calloc(1, sizeof(*in));

	if (!in) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->loop = loop;
	in->m = m;
	in->start = ev_now(loop);
	ev_init(&in->timer, on_timer);
	in->timer.data = in;
	if (read_file(in, path, err, errlen) < 0) {
		siminbound_free(in);
		return NULL;
	}
	qsort(in->v, in->n, sizeof(*in->v), by_time);
	arm(in);
	return in;
}

void siminbound_free(struct siminbound *in)
{
	if (!in)
		return;
	ev_timer_stop(in->loop, &in->timer);
	for (size_t i = 0; i < in->n; i++) {
		free(in->v[i].from);
		free(in->v[i].text);
	}
	free(in->v);
	free(in);
}
