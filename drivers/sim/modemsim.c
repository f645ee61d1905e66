/* smsgw-modemsim — a simulated GSM modem on a pseudo-terminal.
 *
 * Prints the pty's slave path ("/dev/pts/N", nothing else) as the first
 * line on stdout, and again on every replug; everything else on stdout
 * is the sent-SMS log (JSON lines) unless --sms-log names a file.
 * Single-threaded on libev; idle means no wake-ups at all (Huawei's
 * periodic ^RSSI aside). See simmodem.h for the AT dialect and the fault
 * model, simctl.h for the control socket, siminbound.h for --inbound.
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up error, 2 on a
 * usage error. The --link symlink and the --control socket are removed
 * on exit. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "drivers/sim/simctl.h"
#include "drivers/sim/siminbound.h"
#include "drivers/sim/simlog.h"
#include "drivers/sim/simmodem.h"
#include "drivers/sim/simpty.h"
#include "drivers/sim/simvendor.h"

#define NUMBERS_MAX 64

struct args {
	const char *link, *sms_log, *control, *inbound, *vendor;
	double replug_after;
	bool verbose, help;
	struct simmodem_opts o;
	const char *perm[NUMBERS_MAX];   /* --permanent-fail */
	size_t nperm;
	const char *undel[NUMBERS_MAX];  /* --undeliverable */
	size_t nundel;
};

enum argkind {
	ARG_STR,     /* const char * */
	ARG_SECONDS, /* double >= 0 */
	ARG_RATE,    /* double 0..1 */
	ARG_COUNT,   /* long >= 0 */
	ARG_SIZE,    /* unsigned 1..1000 */
	ARG_U64,     /* uint64_t */
	ARG_FLAG,    /* bool, no argument */
	ARG_PERM,    /* appended to perm[] */
	ARG_UNDEL,   /* appended to undel[] */
};

#define A(field) offsetof(struct args, field)

static const struct optdef {
	const char *name;
	enum argkind kind;
	size_t off;
	const char *metavar, *help;
} optdefs[] = {
	{ "link", ARG_STR, A(link), "PATH",
	  "stable symlink to the pty (replaced if stale, removed on exit)" },
	{ "name", ARG_STR, A(o.name), "NAME", "modem name in the SMS log [sim]" },
	{ "sms-log", ARG_STR, A(sms_log), "FILE",
	  "append sent SMS as JSON lines here [stdout]" },
	{ "control", ARG_STR, A(control), "PATH",
	  "control socket (JSON lines: inject, unplug, replug, hang, ...)" },
	{ "inbound", ARG_STR, A(inbound), "FILE",
	  "inbound SMS script: {\"at\": s, \"from\": .., \"text\": ..} lines" },
	{ "vendor", ARG_STR, A(vendor), "V",
	  "generic | simcom | quectel | huawei [generic]" },
	{ "pin", ARG_STR, A(o.pin), "PIN", "SIM wants this PIN after boot" },
	{ "puk", ARG_STR, A(o.puk), "PUK", "unblocks after 3 wrong PINs [12345678]" },
	{ "imsi", ARG_STR, A(o.imsi), "IMSI", "[001010123456789]" },
	{ "imei", ARG_STR, A(o.imei), "IMEI", "[490154203237518]" },
	{ "iccid", ARG_STR, A(o.iccid), "ICCID", "[8900101000000000017]" },
	{ "smsc", ARG_STR, A(o.smsc), "NUMBER", "the SIM's SMSC [+15550100000]" },
	{ "storage-size", ARG_SIZE, A(o.storage_size), "N",
	  "message slots [30]" },
	{ "boot-urcs", ARG_FLAG, A(o.boot_urcs), NULL,
	  "vendor's URC burst at power-on (RDY, +CPIN: READY, SMS Ready)" },
	{ "noise", ARG_FLAG, A(o.noise), NULL,
	  "vendor URCs between response lines, URCs not held" },
	{ "no-network", ARG_SECONDS, A(o.no_network), "S",
	  "not registered for S s after boot [0]" },
	{ "send-delay", ARG_SECONDS, A(o.faults.send_delay), "S",
	  "network round trip before +CMGS answers [0]" },
	{ "report-delay", ARG_SECONDS, A(o.faults.report_delay), "S",
	  "status report S s after +CMGS [0.5]" },
	{ "fail-rate", ARG_RATE, A(o.faults.fail_rate), "P",
	  "share of sends failing with +CMS ERROR: 332/38 [0]" },
	{ "seed", ARG_U64, A(o.seed), "N", "random seed for --fail-rate [1]" },
	{ "permanent-fail", ARG_PERM, 0, "NUMBER",
	  "+CMS ERROR: 21 for this recipient (repeatable)" },
	{ "undeliverable", ARG_UNDEL, 0, "NUMBER",
	  "status report 0x41 for this recipient (repeatable)" },
	{ "hang-after", ARG_COUNT, A(o.hang_after), "N",
	  "answer N command lines, then nothing (not even AT+CFUN)" },
	{ "unplug-after", ARG_COUNT, A(o.unplug_after), "N",
	  "answer N command lines, then close the pty, remove the link" },
	{ "replug-after", ARG_SECONDS, A(replug_after), "S",
	  "S s after an unplug, a new pty at the same --link" },
	{ "reset-time", ARG_SECONDS, A(o.reset_time), "S",
	  "silence after AT+CFUN=1,1 [0.5]" },
	{ "cnma-timeout", ARG_SECONDS, A(o.cnma_timeout), "S",
	  "wait for +CNMA after +CMT/+CDS [15]" },
	{ "rssi-interval", ARG_SECONDS, A(o.rssi_interval), "S",
	  "Huawei ^RSSI period, 0 off [5]" },
	{ "verbose", ARG_FLAG, A(verbose), NULL,
	  "log the AT traffic to stderr (PINs redacted)" },
	{ "help", ARG_FLAG, A(help), NULL, "this text" },
};

/* Short spellings: -v, -h. */
static const struct {
	char c;
	const char *name;
} shorts[] = { { 'v', "verbose" }, { 'h', "help" } };

static char short_of(const char *name)
{
	for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++)
		if (strcmp(shorts[i].name, name) == 0)
			return shorts[i].c;
	return 0;
}

#define NOPTS (sizeof(optdefs) / sizeof(optdefs[0]))

static void usage(FILE *f)
{
	char pre[8];

	fprintf(f, "usage: smsgw-modemsim [OPTIONS]\n"
		   "A simulated GSM modem on a pty; prints the pty path "
		   "first on stdout.\n\n");
	for (size_t i = 0; i < NOPTS; i++) {
		snprintf(pre, sizeof(pre), "    ");
		if (short_of(optdefs[i].name))
			snprintf(pre, sizeof(pre), "-%c, ",
				 short_of(optdefs[i].name));
		fprintf(f, "  %s--%s%s%s\n      %s\n", pre, optdefs[i].name,
			optdefs[i].metavar ? " " : "",
			optdefs[i].metavar ? optdefs[i].metavar : "",
			optdefs[i].help);
	}
}

static bool parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_ull(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

static bool push(const char **v, size_t *n, const char *s)
{
	if (*n >= NUMBERS_MAX)
		return false;
	v[(*n)++] = s;
	return true;
}

/* Stores one option value; false when it does not parse. */
static bool apply(struct args *a, const struct optdef *d, const char *val)
{
	char *p = (char *)a + d->off;
	unsigned long long u;

	switch (d->kind) {
	case ARG_STR:
		*(const char **)(void *)p = val;
		return true;
	case ARG_FLAG:
		*(bool *)(void *)p = true;
		return true;
	case ARG_SECONDS:
		return parse_double(val, 0, 86400, (double *)(void *)p);
	case ARG_RATE:
		return parse_double(val, 0, 1, (double *)(void *)p);
	case ARG_COUNT:
		if (!parse_ull(val, 1000000000, &u))
			return false;
		*(long *)(void *)p = (long)u;
		return true;
	case ARG_SIZE:
		if (!parse_ull(val, 1000, &u) || u == 0)
			return false;
		*(unsigned *)(void *)p = (unsigned)u;
		return true;
	case ARG_U64:
		if (!parse_ull(val, UINT64_MAX, &u))
			return false;
		*(uint64_t *)(void *)p = u;
		return true;
	case ARG_PERM:
		return push(a->perm, &a->nperm, val);
	case ARG_UNDEL:
		return push(a->undel, &a->nundel, val);
	}
	return false;
}

static void defaults(struct args *a)
{
	*a = (struct args){
		.vendor = "generic",
		.o = {
			.name = "sim", .puk = "12345678",
			.imsi = "001010123456789", .imei = "490154203237518",
			.iccid = "8900101000000000017",
			.smsc = "+15550100000", .storage_size = 30,
			.reset_time = 0.5, .cnma_timeout = 15,
			.rssi_interval = 5, .seed = 1,
			.hang_after = -1, .unplug_after = -1,
			.faults = { .report_delay = 0.5 },
		},
	};
}

/* Returns 0, or 2 after printing the usage problem. */
static int parse_args(int argc, char **argv, struct args *a)
{
	struct option lo[NOPTS + 1];
	int c, idx;

	defaults(a);
	memset(lo, 0, sizeof(lo));
	for (size_t i = 0; i < NOPTS; i++)
		lo[i] = (struct option){ optdefs[i].name,
					 optdefs[i].kind == ARG_FLAG
						 ? no_argument
						 : required_argument,
					 NULL, 256 + (int)i };
	while ((c = getopt_long(argc, argv, "vh", lo, &idx)) != -1) {
		for (size_t i = 0; i < NOPTS && c < 256; i++)
			if (short_of(optdefs[i].name) == c)
				c = 256 + (int)i;
		if (c < 256) {
			usage(stderr);
			return 2;
		}
		if (!apply(a, &optdefs[c - 256], optarg)) {
			fprintf(stderr, "smsgw-modemsim: --%s: bad value '%s'\n",
				optdefs[c - 256].name, optarg);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smsgw-modemsim: unexpected '%s'\n",
			argv[optind]);
		return 2;
	}
	a->o.vendor = simvendor_find(a->vendor);
	if (!a->o.vendor) {
		fprintf(stderr, "smsgw-modemsim: --vendor: one of %s\n",
			simvendor_names());
		return 2;
	}
	return 0;
}

/* --- wiring ---------------------------------------------------------------- */

struct sim_main {
	struct ev_loop *loop;
	struct args *args;
	struct simpty *pty;
	struct simmodem *modem;
	struct simctl *ctl;
	struct siminbound *inbound;
	struct simlog *log;
	ev_timer replug;
	ev_signal sigint, sigterm;
};

static void announce_pty(struct sim_main *s)
{
	printf("%s\n", simpty_path(s->pty));
	fflush(stdout);
}

static void on_pty_read(void *user, const char *buf, size_t len)
{
	struct sim_main *s = user;

	simmodem_input(s->modem, buf, len);
}

static void on_modem_write(void *user, const char *buf, size_t len)
{
	struct sim_main *s = user;

	simpty_write(s->pty, buf, len);
}

static int do_unplug(void *user)
{
	struct sim_main *s = user;

	if (!simpty_is_open(s->pty))
		return -EALREADY;
	log_info("unplugged %s", simpty_path(s->pty));
	simpty_close(s->pty);
	simmodem_power_off(s->modem);
	if (s->args->replug_after > 0) {
		ev_timer_set(&s->replug, s->args->replug_after, 0.);
		ev_timer_start(s->loop, &s->replug);
	}
	return 0;
}

static int do_replug(void *user)
{
	struct sim_main *s = user;
	int rc;

	ev_timer_stop(s->loop, &s->replug);
	rc = simpty_open(s->pty);
	if (rc < 0)
		return rc;
	log_info("replugged at %s", simpty_path(s->pty));
	announce_pty(s);
	simmodem_power_on(s->modem);
	return 0;
}

static const char *pty_path(void *user)
{
	struct sim_main *s = user;

	return simpty_path(s->pty);
}

static void on_modem_unplug(void *user)
{
	do_unplug(user);
}

static void on_replug(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim_main *s = w->data;
	int rc;

	(void)loop;
	(void)revents;
	rc = do_replug(s);
	if (rc < 0 && rc != -EALREADY)
		log_err("replug: %s", strerror(-rc));
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int setup_modem(struct sim_main *s)
{
	struct args *a = s->args;
	const struct simmodem_events ev = {
		.user = s, .write = on_modem_write, .unplug = on_modem_unplug,
	};

	s->log = simlog_open(a->sms_log);
	if (!s->log) {
		log_err("--sms-log %s: %s", a->sms_log, strerror(errno));
		return -1;
	}
	a->o.log = s->log;
	s->modem = simmodem_new(s->loop, &a->o, &ev);
	if (!s->modem) {
		log_err("out of memory");
		return -1;
	}
	for (size_t i = 0; i < a->nperm; i++)
		simmodem_add_number(s->modem, SIMMODEM_PERMANENT_FAIL,
				    a->perm[i]);
	for (size_t i = 0; i < a->nundel; i++)
		simmodem_add_number(s->modem, SIMMODEM_UNDELIVERABLE,
				    a->undel[i]);
	return 0;
}

static int setup_io(struct sim_main *s)
{
	struct args *a = s->args;
	const struct simctl_hooks hooks = {
		.user = s, .unplug = do_unplug, .replug = do_replug,
		.pty_path = pty_path,
	};
	char err[256];
	int rc = -ENOMEM;

	s->pty = simpty_new(s->loop, a->link, on_pty_read, s);
	if (!s->pty || (rc = simpty_open(s->pty)) < 0) {
		log_err("cannot create the pty%s%s: %s",
			a->link ? " or link " : "", a->link ? a->link : "",
			s->pty ? strerror(-rc) : "out of memory");
		return -1;
	}
	if (a->control &&
	    !(s->ctl = simctl_new(s->loop, a->control, s->modem, &hooks, err,
				  sizeof(err)))) {
		log_err("--control: %s", err);
		return -1;
	}
	if (a->inbound &&
	    !(s->inbound = siminbound_load(s->loop, a->inbound, s->modem, err,
					   sizeof(err)))) {
		log_err("--inbound: %s", err);
		return -1;
	}
	return 0;
}

static void teardown(struct sim_main *s)
{
	siminbound_free(s->inbound);
	simctl_free(s->ctl);
	simpty_free(s->pty);
	simmodem_free(s->modem);
	simlog_free(s->log);
}

int main(int argc, char **argv)
{
	struct args a;
	struct sim_main s = { .args = &a };
	int rc = parse_args(argc, argv, &a);

	if (rc)
		return rc;
	if (a.help) {
		usage(stdout);
		return 0;
	}
	log_init("smsgw-modemsim", a.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);
	s.loop = EV_DEFAULT;
	ev_init(&s.replug, on_replug);
	s.replug.data = &s;
	if (setup_modem(&s) < 0 || setup_io(&s) < 0) {
		teardown(&s);
		return 1;
	}
	announce_pty(&s);
	simmodem_power_on(s.modem);
	ev_signal_init(&s.sigint, on_signal, SIGINT);
	ev_signal_init(&s.sigterm, on_signal, SIGTERM);
	ev_signal_start(s.loop, &s.sigint);
	ev_signal_start(s.loop, &s.sigterm);
	ev_run(s.loop, 0);
	ev_timer_stop(s.loop, &s.replug);
	ev_signal_stop(s.loop, &s.sigint);
	ev_signal_stop(s.loop, &s.sigterm);
	teardown(&s);
	return 0;
}
