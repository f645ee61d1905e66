/* smsgw-pdu — decode and encode SMS PDUs from the command line.
 *
 *   smsgw-pdu decode HEX      one JSON object on stdout
 *   smsgw-pdu encode --to NUMBER --text TEXT [--srr] [--class N]
 *                    [--validity MINUTES] [--ref N] [--ref16] [--no-shift]
 *                    one "<tpdu_length> <pdu_hex>" line per part
 *
 * Exit status: 0 success, 1 the PDU or the message was refused (reason on
 * stderr), 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at/pdu.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define MAX_PARTS 255

static const char usage_text[] =
	"usage: smsgw-pdu decode HEX\n"
	"       smsgw-pdu encode --to NUMBER --text TEXT [--srr] [--class N]\n"
	"                        [--validity MINUTES] [--ref N] [--ref16] [--no-shift]\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "smsgw-pdu: %s\n", why);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* ---- decode ----------------------------------------------------------------- */

static const char *const type_names[] = {
	[PDU_DELIVER] = "deliver",
	[PDU_SUBMIT] = "submit",
	[PDU_STATUS_REPORT] = "status_report",
};

static json_t *addr_json(const struct pdu_addr *a)
{
	return a->text[0] ? json_string(a->text) : json_null();
}

/* ISO 8601 with the zone offset, e.g. "2011-02-28T11:50:50-05:00". */
static json_t *time_json(const struct pdu_time *t)
{
	int q = t->tz_quarters < 0 ? -t->tz_quarters : t->tz_quarters;
	char buf[40];

	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
		 t->year, t->month, t->day, t->hour, t->minute, t->second,
		 t->tz_quarters < 0 ? '-' : '+', q / 4, q % 4 * 15);
	return json_string(buf);
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
	char buf[2 * PDU_DATA_MAX + 1];

	for (size_t i = 0; i < n && i < PDU_DATA_MAX; i++)
		snprintf(buf + 2 * i, 3, "%02X", b[i]);
	buf[2 * (n < PDU_DATA_MAX ? n : PDU_DATA_MAX)] = '\0';
	return json_string(buf);
}

static json_t *udh_json(const struct pdu_concat *c)
{
	if (!c->present)
		return json_null();
	return json_pack("{s:i, s:i, s:i}", "ref", c->ref, "total", c->total,
			 "seq", c->seq);
}

/* Adds the keys that depend on the message body. */
static void body_json(json_t *o, const struct pdu_sms *s)
{
	bool is_data = s->has_ud && s->encoding == PDU_ENC_8BIT;
	bool is_text = s->has_ud && !is_data;

	json_object_set_new(o, "encoding",
			    s->has_ud ? json_string(pdu_encoding_name(
						s->encoding)) :
					json_null());
	json_object_set_new(o, "text",
			    is_text ? json_string(s->text) : json_null());
	json_object_set_new(o, "data_hex",
			    is_data ? hex_json(s->data, s->data_len) :
				      json_null());
	json_object_set_new(o, "udh", udh_json(&s->concat));
	json_object_set_new(o, "class", s->msg_class >= 0 ?
						json_integer(s->msg_class) :
						json_null());
}

static json_t *sms_json(const struct pdu_sms *s)
{
	bool report = s->type == PDU_STATUS_REPORT;
	bool deliver = s->type == PDU_DELIVER;
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string(type_names[s->type]));
	json_object_set_new(o, "smsc", addr_json(&s->smsc));
	json_object_set_new(o, "sender",
			    deliver ? addr_json(&s->addr) : json_null());
	json_object_set_new(o, "recipient",
			    deliver ? json_null() : addr_json(&s->addr));
	json_object_set_new(o, "timestamp", s->type == PDU_SUBMIT ?
						    json_null() :
						    time_json(&s->scts));
	json_object_set_new(o, "discharge_time",
			    report ? time_json(&s->discharge) : json_null());
	body_json(o, s);
	json_object_set_new(o, "mr", deliver ? json_null() :
					       json_integer(s->mr));
	json_object_set_new(o, "status",
			    report ? json_integer(s->status) : json_null());
	json_object_set_new(o, "status_text",
			    report ? json_string(pdu_status_text(s->status)) :
				     json_null());
	json_object_set_new(o, "srr", json_boolean(s->srr));
	return o;
}

static int cmd_decode(int argc, char **argv)
{
	struct pdu_sms sms;
	char err[PDU_ERR_MAX];
	json_t *o;
	int rc;

	if (argc != 2)
		return usage("decode takes exactly one HEX argument");
	if (pdu_decode_hex(argv[1], &sms, err, sizeof(err)) < 0) {
		fprintf(stderr, "smsgw-pdu: %s\n", err);
		return EXIT_REFUSED;
	}
	o = sms_json(&sms);
	rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (rc < 0 || putchar('\n') == EOF || fflush(stdout) == EOF) {
		perror("smsgw-pdu: stdout");
		return EXIT_REFUSED;
	}
	return 0;
}

/* ---- encode ----------------------------------------------------------------- */

/* Parses a decimal number in [min, max]; false on anything else. */
static bool parse_num(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	return *s && !*end && !errno && *v >= min && *v <= max;
}

enum { OPT_REF16 = 256, OPT_NO_SHIFT };

static const struct option encode_opts[] = {
	{ "to", required_argument, NULL, 't' },
	{ "text", required_argument, NULL, 'x' },
	{ "srr", no_argument, NULL, 's' },
	{ "class", required_argument, NULL, 'c' },
	{ "validity", required_argument, NULL, 'v' },
	{ "ref", required_argument, NULL, 'r' },
	{ "ref16", no_argument, NULL, OPT_REF16 },
	{ "no-shift", no_argument, NULL, OPT_NO_SHIFT },
	{ NULL, 0, NULL, 0 },
};

/* Applies one option to o; returns false on a bad value. */
static bool encode_opt(int c, const char *arg, struct pdu_submit_opts *o,
		       const char **text, long *ref)
{
	long v;

	switch (c) {
	case 't':
		o->to = arg;
		return true;
	case 'x':
		*text = arg;
		return true;
	case 's':
		o->srr = true;
		return true;
	case 'c':
		if (!parse_num(arg, 0, 3, &v))
			return false;
		o->msg_class = (int)v;
		return true;
	case 'v':
		if (!parse_num(arg, 1, UINT_MAX < LONG_MAX ? UINT_MAX : LONG_MAX,
			       &v))
			return false;
		o->validity_min = (unsigned)v;
		return true;
	case 'r':
		return parse_num(arg, 0, 65535, ref);
	case OPT_REF16:
		o->ref16 = true;
		return true;
	case OPT_NO_SHIFT:
		o->allow_shift = false;
		return true;
	}
	return false;
}

/* One "<tpdu_length> <pdu_hex>" line per part; 0 or EXIT_REFUSED. */
static int print_parts(const struct pdu_part *parts, int n)
{
	for (int i = 0; i < n; i++)
		printf("%u %s\n", parts[i].tpdu_len, parts[i].hex);
	if (fflush(stdout) == EOF) {
		perror("smsgw-pdu: stdout");
		return EXIT_REFUSED;
	}
	return 0;
}

static int cmd_encode(int argc, char **argv)
{
	struct pdu_submit_opts o = { .msg_class = -1, .allow_shift = true };
	const char *text = NULL;
	struct pdu_part *parts;
	char err[PDU_ERR_MAX];
	long ref = 0;
	int c, n, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", encode_opts, NULL)) != -1)
		if (!encode_opt(c, optarg, &o, &text, &ref))
			return usage("bad option or value");
	if (optind != argc || !o.to || !text)
		return usage("encode needs --to and --text");
	if (ref > 255 && !o.ref16)
		return usage("--ref above 255 needs --ref16");
	o.ref = (uint16_t)ref;
	parts = calloc(MAX_PARTS, sizeof(*parts));
	if (!parts) {
		perror("smsgw-pdu");
		return EXIT_REFUSED;
	}
	n = pdu_encode_submit(text, &o, parts, MAX_PARTS, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "smsgw-pdu: %s\n", err);
		rc = EXIT_REFUSED;
	} else {
		rc = print_parts(parts, n);
	}
	free(parts);
	return rc;
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "decode", cmd_decode },
	{ "encode", cmd_encode },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(NULL);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage("unknown command");
}
